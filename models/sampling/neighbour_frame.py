"""Neighbouring-frame samplers (DeepCAD / DeepCAD-RT family)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from livedenoise.models.sampling.base import TrainingPair

__all__ = ["OddEvenSplit"]


@dataclass(frozen=True)
class OddEvenSplit:
    """Split ``2 * patch_t`` consecutive frames into even frames (input) and odd frames (target).

    Adjacent frames share the signal but not the shot noise, so predicting one from the other is a
    Noise2Noise pair (Li et al., Nat Methods 2021; Nat Biotech 2023). Each sample's input and target
    are swapped with probability ``swap_p`` (0.5 in DeepCAD-RT's ``train_collection``).
    """

    swap_p: float = 0.5
    name: str = "odd_even_split"

    def __post_init__(self) -> None:
        if not 0.0 <= self.swap_p <= 1.0:
            raise ValueError(f"swap_p must be in [0, 1], got {self.swap_p}")

    def raw_frames(self, patch_t: int) -> int:
        return 2 * patch_t

    def __call__(self, patch: Tensor, generator: torch.Generator) -> TrainingPair:
        if patch.ndim != 4 or patch.shape[1] < 2 or patch.shape[1] % 2:
            raise ValueError(
                f"OddEvenSplit needs [B, 2*patch_t, H, W] patches with an even frame count, got {tuple(patch.shape)}"
            )
        even, odd = patch[:, 0::2], patch[:, 1::2]
        swap = torch.rand(patch.shape[0], generator=generator, device=generator.device) < self.swap_p
        swap = swap.to(patch.device).view(-1, 1, 1, 1)
        return TrainingPair(input=torch.where(swap, odd, even), target=torch.where(swap, even, odd), mask=None)
