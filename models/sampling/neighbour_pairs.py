"""Neighbor2Neighbor pair sub-sampling (Huang et al., CVPR 2021), as FAST uses it.

Each 2x2 cell of a frame gives one ordered pair of 4-neighbouring pixels, drawn from the eight such pairs: the
first pixels form the half-resolution sub-image ``G1``, the second ones ``G2``. The two pixels of a pair are
different, so the noise of ``G1`` and ``G2`` is independent wherever the camera's noise is independent between
pixels.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["PAIRS", "draw_pairs", "subsample"]

#: The eight ordered pairs of 4-neighbours in a 2x2 cell, as flat indices (0 1 / 2 3).
PAIRS = torch.tensor([[0, 1], [0, 2], [1, 3], [2, 3], [1, 0], [2, 0], [3, 1], [3, 2]], dtype=torch.long)


def draw_pairs(b: int, h: int, w: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """Cell-local indices ``[b, h // 2, w // 2]`` of the first and the second pixel of each cell's pair."""
    choice = torch.randint(0, len(PAIRS), (b, h // 2, w // 2), generator=generator, device=generator.device)
    pairs = PAIRS.to(choice.device)[choice]
    return pairs[..., 0], pairs[..., 1]


def subsample(x: Tensor, index: Tensor) -> Tensor:
    """``[B, C, H, W]`` (H, W even) -> ``[B, C, H/2, W/2]``: in each 2x2 cell the pixel at ``index`` (``[B, H/2,
    W/2]``, 0..3 row-major), the same pixel for every channel."""
    b, c, h, w = x.shape
    cells = x.reshape(b, c, h // 2, 2, w // 2, 2).permute(0, 1, 2, 4, 3, 5).reshape(b, c, h // 2, w // 2, 4)
    idx = index.to(x.device)[:, None, :, :, None].expand(b, c, h // 2, w // 2, 1)
    return cells.gather(-1, idx).squeeze(-1)
