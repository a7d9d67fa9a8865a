"""The 8 dihedral transforms (rotations by 90 degrees and flips) of patch batches, explicit rng."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["random_dihedral", "dihedral"]


def dihedral(x: Tensor, k: int) -> Tensor:
    """Transform ``k`` in 0..7 of the last two axes: rotate ``k % 4`` quarter turns, then flip W if ``k >= 4``."""
    if not 0 <= k < 8:
        raise ValueError(f"dihedral transform index must be in 0..7, got {k}")
    y = torch.rot90(x, k % 4, dims=(-2, -1))
    return torch.flip(y, dims=(-1,)) if k >= 4 else y


def random_dihedral(x: Tensor, generator: torch.Generator) -> Tensor:
    """Apply one random dihedral transform per sample of ``x`` ``[B, ..., H, W]``.

    Non-square patches only get the 4 transforms that keep their shape (flips and half turn).
    """
    square = x.shape[-1] == x.shape[-2]
    choices = torch.randint(0, 8 if square else 4, (x.shape[0],), generator=generator, device=generator.device)
    out = []
    for i, c in enumerate(choices.tolist()):
        k = c if square else (0, 2, 4, 6)[c]
        out.append(dihedral(x[i], k))
    return torch.stack(out)
