"""DeepInterpolation and SUPPORT: one output frame from a window of ``2N + 1`` frames, blind to its own noise.

Both train on windows centred on every movie frame (mirrored at the ends, as served) with the raw
centre frame as the target; neither network can see the value it is trained to predict, so the
Noise2Noise-style loss is minimised by the signal, not by copying the noise.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from livedenoise.models.catalogue.blind_spot import DeepInterpolationConfig, SupportConfig
from livedenoise.models.losses import get_loss
from livedenoise.models.recipes.base import Recipe, StepOutput, TrainingWindow

__all__ = ["DeepInterpolationRecipe", "SupportRecipe", "OmitCentre"]


class OmitCentre(nn.Module):
    """``[B, 2N + 1, H, W]`` window -> the network on its frames without the centre ``2k + 1`` -> ``[B, 1, H, W]``.

    The omission is inside the served graph, so the engine hands every method the same full window.
    """

    def __init__(self, net: nn.Module, pre_post_frame: int, omission: int) -> None:
        super().__init__()
        self.net = net
        n, k = int(pre_post_frame), int(omission)
        keep = [i for i in range(2 * n + 1) if abs(i - n) > k]
        self.register_buffer("keep", torch.tensor(keep, dtype=torch.long), persistent=False)

    def forward(self, window: Tensor) -> Tensor:
        keep: Tensor = self.keep  # type: ignore[assignment]  # a registered buffer
        out: Tensor = self.net(window.index_select(1, keep))
        return out


class _CentreTargetRecipe(Recipe):
    """Shared by both: centred training windows, target = the raw centre frame, loss from the config."""

    config: DeepInterpolationConfig | SupportConfig

    def __init__(self, config: DeepInterpolationConfig | SupportConfig) -> None:
        super().__init__(config)
        self._loss = get_loss(config.loss)

    def training_window(self) -> TrainingWindow:
        n = self.config.pre_post_frame
        return TrainingWindow(
            frames=2 * n + 1,
            size=self.config.patch_xy,
            spatial_multiple=self.config.size_multiple,
            centre=n,
        )

    def training_step(self, model: nn.Module, patches: Tensor, generator: torch.Generator) -> StepOutput:
        n = self.config.pre_post_frame
        return StepOutput(self._loss(model(patches), patches[:, n : n + 1], None))

    def export_module(self, model: nn.Module) -> nn.Module:
        return model


class DeepInterpolationRecipe(_CentreTargetRecipe):
    """The trainable model is :class:`OmitCentre` around the U-Net, so training and serving see the same graph."""

    config: DeepInterpolationConfig

    def network(self) -> tuple[str, dict[str, Any]]:
        c = self.config
        return "deepinterpolation_unet", {
            "in_channels": c.input_frames,
            "out_channels": 1,
            "base": c.base_channels,
            "levels": c.levels,
        }

    def build_model(self) -> nn.Module:
        return OmitCentre(super().build_model(), self.config.pre_post_frame, self.config.pre_post_omission)


class SupportRecipe(_CentreTargetRecipe):
    """SUPPORT's network takes the whole window and keeps the centre frame in its blind-spot branch."""

    config: SupportConfig

    def network(self) -> tuple[str, dict[str, Any]]:
        c = self.config
        return "support_net", {
            "frames": 2 * c.pre_post_frame + 1,
            "unet_channels": tuple(c.unet_channels),
            "bs_size": c.bs_size,
            "depth": c.depth,
            "blind_channels": c.blind_channels,
        }
