"""SRDTrans (METHODS.md §4.3): "adjacent orthogonal training pairs" on half-resolution sub-stacks, a stack of
``patch_t`` frames in and out, served keeping the middle of each stack.

In every 2x2 cell of every frame one of eight triplets is drawn: a pixel and its horizontal and vertical
neighbours (the reference's ``generate_mask_pair``, drawn independently per sample, frame and cell). The first
pixels form the input sub-stack, the second and third the two target sub-stacks; the loss is
``0.5 * loss(f(sub1), sub2) + 0.5 * loss(f(sub1), sub3)``. The three pixels of a triplet are distinct and a
target is compared only with the output of its own frame, so no input pixel is ever a target pixel (a test
checks it).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from livedenoise.models.catalogue.spatial_sampling import SRDTransConfig
from livedenoise.models.losses import get_loss
from livedenoise.models.networks.adapters import VolumeAdapter, WindowOutput
from livedenoise.models.recipes.base import Recipe, StepOutput, TrainingWindow
from livedenoise.models.sampling.neighbour_pairs import subsample

__all__ = ["SRDTransRecipe", "TRIPLETS", "draw_triplets", "orthogonal_substacks"]

#: The eight triplets of a 2x2 cell (flat indices 0 1 / 2 3): a pixel, then its two 4-neighbours (the
#: reference's ``idx_pair``; which neighbour comes second varies, the loss weighs both targets equally).
TRIPLETS = torch.tensor(
    [[0, 1, 2], [0, 2, 1], [1, 0, 3], [1, 3, 0], [2, 0, 3], [2, 3, 0], [3, 2, 1], [3, 1, 2]], dtype=torch.long
)


def draw_triplets(b: int, t: int, h: int, w: int, generator: torch.Generator) -> Tensor:
    """Cell-local indices ``[3, b, t, h // 2, w // 2]`` of each cell's input pixel and its two neighbours, drawn
    independently for every sample, frame and cell."""
    choice = torch.randint(0, len(TRIPLETS), (b, t, h // 2, w // 2), generator=generator, device=generator.device)
    return TRIPLETS.to(choice.device)[choice].permute(4, 0, 1, 2, 3)


def orthogonal_substacks(stacks: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor, Tensor]:
    """``(sub1, sub2, sub3)``, each ``[B, T, H/2, W/2]``, from ``stacks`` ``[B, T, H, W]`` (H, W even)."""
    b, t, h, w = stacks.shape
    index = draw_triplets(b, t, h, w, generator)
    # One frame at a time: subsample() takes one index per cell for all its channels.
    frames = stacks.reshape(b * t, 1, h, w)
    subs = [subsample(frames, index[k].reshape(b * t, h // 2, w // 2)).reshape(b, t, h // 2, w // 2) for k in range(3)]
    return subs[0], subs[1], subs[2]


class SRDTransRecipe(Recipe):
    """Samples of ``patch_t`` consecutive frames inside the movie (never shortened: the network takes exactly
    ``patch_t``); served on ``patch_t``-frame windows keeping the middle ``out_frames``."""

    config: SRDTransConfig

    def __init__(self, config: SRDTransConfig) -> None:
        super().__init__(config)
        self._loss = get_loss(config.loss)

    def network(self) -> tuple[str, dict[str, Any]]:
        c = self.config
        return "srdtrans", {
            "patch_t": c.patch_t,
            "base_channels": c.base_channels,
            "levels": c.levels,
            "embed_dim": c.embed_dim,
            "heads": c.heads,
            "mlp_dim": c.mlp_dim,
            "window_size": c.window_size,
            "attn_dropout": c.attn_dropout,
        }

    def build_model(self) -> nn.Module:
        return VolumeAdapter(super().build_model())

    def training_window(self) -> TrainingWindow:
        # No mirrored fallback for short movies: a frame mirrored into a stack twice gets two independent triplet
        # draws, so one copy's input pixel could be the other copy's target (the network mixes frames).
        c = self.config
        return TrainingWindow(
            frames=c.patch_t,
            size=c.patch_xy,
            spatial_multiple=2 * c.window_size,
            frames_multiple=c.patch_t,
            min_frames=c.patch_t,
        )

    def training_step(self, model: nn.Module, patches: Tensor, generator: torch.Generator) -> StepOutput:
        sub1, sub2, sub3 = orthogonal_substacks(patches, generator)
        out = model(sub1)
        first, second = self._loss(out, sub2, None), self._loss(out, sub3, None)
        return StepOutput(
            0.5 * first + 0.5 * second, {"target2": float(first.detach()), "target3": float(second.detach())}
        )

    def export_module(self, model: nn.Module) -> nn.Module:
        w = self.window()
        return WindowOutput(model, w.before, w.out_frames)
