"""DeepSeMi: consecutive frames in, the blind-spot network's fused output and T-branch outputs scored against the
noisy frames themselves (no output voxel sees its own input voxel, so copying the noise cannot help)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from livedenoise.models.catalogue.deepsemi import DeepSeMiConfig
from livedenoise.models.losses import get_loss
from livedenoise.models.networks.deepsemi import DeepSeMiNet, DeepSeMiViews
from livedenoise.models.recipes.base import Recipe, StepOutput, TrainingWindow

__all__ = ["DeepSeMiModel", "DeepSeMiRecipe"]


class DeepSeMiModel(nn.Module):
    """``[B, block + in_c - 1, H, W]`` consecutive frames -> (fused ``[B, block, H, W]``, T-branch outputs)."""

    def __init__(self, net: DeepSeMiNet) -> None:
        super().__init__()
        self.net = net
        self.views = DeepSeMiViews(net.in_c)

    def forward(self, frames: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, list[Tensor]]:
        fused, t_outs = self.net(*self.views(frames), generator=generator)
        return fused.squeeze(1), [t.squeeze(1) for t in t_outs]


class _KeepMiddle(nn.Module):
    """The served graph: the fused output's frames ``context .. context + out_frames - 1``."""

    def __init__(self, model: nn.Module, context: int, out_frames: int) -> None:
        super().__init__()
        self.model = model
        self.context, self.out_frames = int(context), int(out_frames)

    def forward(self, frames: Tensor) -> Tensor:
        fused, _ = self.model(frames)
        out: Tensor = fused[:, self.context : self.context + self.out_frames]
        return out


class DeepSeMiRecipe(Recipe):
    """Train on blocks of consecutive frames; loss on the fused output plus each T-branch output (reference)."""

    config: DeepSeMiConfig

    def __init__(self, config: DeepSeMiConfig) -> None:
        super().__init__(config)
        self._loss = get_loss(config.loss)

    def network(self) -> tuple[str, dict[str, Any]]:
        c = self.config
        return "deepsemi_net", {"in_c": c.in_c, "features": c.features, "pattern": c.shift_pattern}

    def build_model(self) -> nn.Module:
        net = super().build_model()
        if not isinstance(net, DeepSeMiNet):
            raise TypeError(f"deepsemi_net built a {type(net).__name__}")
        return DeepSeMiModel(net)

    def training_window(self) -> TrainingWindow:
        # Consecutive frames inside the movie, never mirrored: a mirrored block holds copies of frames it also
        # predicts, and the T branch learns to copy them (measured: the held-out score fell from +10.5 to +4 dB
        # while the training loss kept falling). Only a movie shorter than the smallest block trains mirrored.
        c = self.config
        frames = c.block_frames + c.in_c - 1
        return TrainingWindow(
            frames=frames,
            size=c.patch_xy,
            spatial_multiple=c.size_multiple,
            frames_multiple=c.size_multiple,
            min_frames=c.size_multiple + c.in_c - 1,
            short_movie_centre=frames // 2,
        )

    def training_step(self, model: nn.Module, patches: Tensor, generator: torch.Generator) -> StepOutput:
        n = self.config.in_c // 2
        fused, t_outs = model(patches, generator)
        target = patches[:, n : n + fused.shape[1]]
        fused_loss = self._loss(fused, target, None)
        t_loss = sum((self._loss(t, target, None) for t in t_outs), torch.zeros((), device=patches.device))
        return StepOutput(
            fused_loss + t_loss, {"fused": float(fused_loss.detach()), "t_branch": float(t_loss.detach())}
        )

    def export_module(self, model: nn.Module) -> nn.Module:
        return _KeepMiddle(model, self.config.context, self.config.out_frames)
