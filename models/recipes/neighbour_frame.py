"""DeepCAD and DeepCAD-RT: a 3-D U-Net trained to predict the odd frames of a stack from its even frames."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from livedenoise.models.catalogue.neighbour_frame import StackConfig
from livedenoise.models.losses import get_loss
from livedenoise.models.networks.adapters import ParityWindowOutput, VolumeAdapter, WindowOutput
from livedenoise.models.recipes.base import Recipe, StepOutput, TrainingWindow
from livedenoise.models.sampling.neighbour_frame import OddEvenSplit

__all__ = ["OddEvenStackRecipe"]


class OddEvenStackRecipe(Recipe):
    """Train on ``2 * patch_t`` consecutive frames split into even (input) and odd (target) frames, swapped
    with p = 0.5; serve the middle ``out_frames`` of each window, from its even and odd frames as two stacks
    (``inference="parity"``, the spacing trained at) or from all its frames as one stack (``"consecutive"``)."""

    config: StackConfig

    def __init__(self, config: StackConfig) -> None:
        super().__init__(config)
        self._split = OddEvenSplit(swap_p=0.5)
        self._loss = get_loss(config.loss)

    def network(self) -> tuple[str, dict[str, Any]]:
        c = self.config
        return "unet3d", {
            "in_channels": 1,
            "out_channels": 1,
            "base": c.base_channels,
            "levels": c.levels,
            "norm": None,
            "act": "relu",
            "style": c.network_style,
        }

    def build_model(self) -> nn.Module:
        return VolumeAdapter(super().build_model())

    def training_window(self) -> TrainingWindow:
        m = self.config.size_multiple
        return TrainingWindow(
            frames=self._split.raw_frames(self.config.patch_t),
            size=self.config.patch_xy,
            spatial_multiple=m,
            frames_multiple=2 * m,
            min_frames=2 * m,
        )

    def training_step(self, model: nn.Module, patches: Tensor, generator: torch.Generator) -> StepOutput:
        pair = self._split(patches, generator)
        return StepOutput(self._loss(model(pair.input), pair.target, None))

    def export_module(self, model: nn.Module) -> nn.Module:
        w = self.window()
        if self.config.inference == "parity":
            return ParityWindowOutput(
                model, w.before, w.out_frames, planes=w.input_planes, crop=self.config.crop_served_frames
            )
        return self._one_stack(model)

    def resolved(self, best_filter: str | None) -> StackConfig:
        """``inference="auto"`` decided: parity for slow signals (see ``StackConfig.resolve_inference``)."""
        return self.config.resolve_inference(best_filter)

    def heldout_module(self, model: nn.Module) -> nn.Module:
        """One stack: the held-out frames are already two apart, the spacing each parity stack has when served
        at the full frame rate (split again, they would be four apart and score the model below what it serves)."""
        return self._one_stack(model)

    def _one_stack(self, model: nn.Module) -> nn.Module:
        w = self.window()
        planes = w.input_planes if self.config.crop_served_frames else None
        return WindowOutput(model, w.before, w.out_frames, planes=planes)
