"""SN2N (METHODS.md §4.2): self-inspired Noise2Noise on single frames, served with no temporal window.

A sample is one crop of one frame. A share of the crops first gets a half-size square from another crop of the
batch (Patch2Patch). Each crop then gives two views built from disjoint pixels, ``A = (UL + DR) / 2`` and ``B = (UR
+ DL) / 2`` of every 2x2 cell, Fourier up-sampled back to the crop's size
(:mod:`livedenoise.models.sampling.diagonal`); the network maps each view to the other, and its two outputs to each
other: ``(L(f(A), B) + L(f(B), A) + λ L(f(B), f(A))) / (2 + λ)``. The served graph is the network on the frame.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from livedenoise.models.catalogue.spatial_sampling import SN2NConfig
from livedenoise.models.losses import get_loss
from livedenoise.models.recipes.base import Recipe, StepOutput, TrainingWindow
from livedenoise.models.sampling.diagonal import diagonal_pair, fourier_upsample2

__all__ = ["SN2NRecipe", "exchange_patches"]


def _even(n: int) -> int:
    return n // 2 * 2


def _draw(low: int, high: int, generator: torch.Generator) -> int:
    """A uniform integer in ``[low, high)``."""
    return int(torch.randint(low, high, (), generator=generator, device=generator.device))


def exchange_patches(x: Tensor, share: float, generator: torch.Generator) -> Tensor:
    """Patch2Patch on crops ``[B, C, h, w]``: each crop, with probability ``share``, gets a square of half its
    size (even) from another crop of the batch, taken and placed at random even offsets; with one crop, two such
    squares of the crop trade places. Every 2x2 cell keeps the four pixels of one source, so the diagonal views of
    an exchanged crop are still two disjoint halves of the same pixels. Returns a new tensor."""
    b, _, h, w = x.shape
    size = _even(min(h, w) // 2)
    out = x.clone()
    if size < 2 or share <= 0:
        return out
    chosen = torch.rand(b, generator=generator, device=generator.device) < share
    for i in torch.nonzero(chosen).flatten().tolist():
        # Even offsets of the square in the donor (y0, x0) and in the crop (y1, x1).
        y0, x0, y1, x1 = (2 * _draw(0, (n - size) // 2 + 1, generator) for n in (h, w, h, w))
        if b > 1:
            donor = (i + _draw(1, b, generator)) % b
            out[i, :, y1 : y1 + size, x1 : x1 + size] = x[donor, :, y0 : y0 + size, x0 : x0 + size]
        else:
            out[i, :, y1 : y1 + size, x1 : x1 + size] = x[i, :, y0 : y0 + size, x0 : x0 + size]
            out[i, :, y0 : y0 + size, x0 : x0 + size] = x[i, :, y1 : y1 + size, x1 : x1 + size]
    return out


class SN2NRecipe(Recipe):
    """Single-frame crops; the symmetric self-constrained loss on the up-sampled diagonal views (reference)."""

    config: SN2NConfig

    def network(self) -> tuple[str, dict[str, Any]]:
        c = self.config
        return "sn2n_unet", {"in_channels": 1, "out_channels": 1, "base": c.base_channels, "levels": c.levels}

    def training_window(self) -> TrainingWindow:
        c = self.config
        return TrainingWindow(frames=1, size=c.patch_xy, spatial_multiple=c.size_multiple)

    def views(self, patches: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """The two up-sampled views ``(A, B)``, each ``[B, 1, h, w]``, of the crops ``[B, 1, h, w]`` (after the
        patch exchange)."""
        crops = exchange_patches(patches, self.config.patch_exchange, generator)
        a, b = diagonal_pair(crops)
        return fourier_upsample2(a), fourier_upsample2(b)

    def training_step(self, model: nn.Module, patches: Tensor, generator: torch.Generator) -> StepOutput:
        c = self.config
        loss_fn = get_loss(c.loss)
        view_a, view_b = self.views(patches, generator)
        # Two passes, as the reference: each view's batch norm statistics are its own.
        pred_a, pred_b = model(view_a), model(view_b)
        a_to_b = loss_fn(pred_a, view_b, None)
        b_to_a = loss_fn(pred_b, view_a, None)
        constraint = loss_fn(pred_b, pred_a, None)
        lam = c.constraint_weight
        loss = (a_to_b + b_to_a + lam * constraint) / (2.0 + lam)
        return StepOutput(
            loss,
            {"pair": float((a_to_b + b_to_a).detach()) / 2.0, "constraint": float(constraint.detach())},
        )

    def export_module(self, model: nn.Module) -> nn.Module:
        # The window is the frame itself ([B, 1, H, W]): the network is the served graph.
        return model
