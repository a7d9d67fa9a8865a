"""SN2N's diagonal resampling and Fourier up-sampling (Qu et al., Nat Methods 2024; METHODS.md §4.2).

Each 2x2 cell of a frame (``UL UR / DL DR``) gives two half-resolution views: ``A = (UL + DR) / 2`` and
``B = (UR + DL) / 2``. They are built from disjoint pixels, so their noise is independent wherever the camera's
noise is independent between pixels, and both average two pixels whose centres are at the cell's centre, so they
see the same signal. Both are brought back to the frame's size by Fourier interpolation, the pair on which the
network is trained (Noise2Noise).

The up-sampling interpolates the mirrored view (period ``2n``, so no wrap-around edge) with its band-limited
trigonometric series (a DCT-II spectrum zero-padded to twice the length) and samples it at the centres of the
full-resolution pixels: half-resolution coordinates ``-1/4, 1/4, 3/4, ...``. It keeps the mean of every row and
column and is exact for every cosine the view can hold.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["diagonal_pair", "fourier_upsample2"]


def diagonal_pair(x: Tensor) -> tuple[Tensor, Tensor]:
    """``[..., H, W]`` (H, W even) -> ``(A, B)``, each ``[..., H/2, W/2]``: ``A = (UL + DR) / 2``, ``B = (UR + DL) / 2``
    of every 2x2 cell.

    Raises
    ------
    ValueError
        H or W is odd.
    """
    h, w = x.shape[-2:]
    if h % 2 or w % 2:
        raise ValueError(f"diagonal resampling needs even height and width, got {h}x{w}; crop one row or column")
    ul, ur = x[..., 0::2, 0::2], x[..., 0::2, 1::2]
    dl, dr = x[..., 1::2, 0::2], x[..., 1::2, 1::2]
    return (ul + dr) / 2, (ur + dl) / 2


def _upsample_last(x: Tensor) -> Tensor:
    """Fourier up-sampling x2 of the last axis: ``n`` samples at ``0..n-1`` -> ``2n`` at ``-1/4 + k/2``."""
    n = x.shape[-1]
    mirrored = torch.cat([x, x.flip(-1)], dim=-1)  # half-sample symmetric: period 2n, no jump at the edges
    spectrum = torch.fft.rfft(mirrored, dim=-1)  # bins 0..n; bin n is zero for a mirrored signal
    k = torch.arange(n + 1, device=x.device, dtype=x.dtype)
    # Sampling at t = m/2 - 1/4 instead of m/2: a shift of -1/4 sample, a phase of -2*pi*k*(1/4)/(2n).
    shift = torch.polar(torch.ones_like(k), -math.pi * k / (4 * n))
    shifted = spectrum * shift
    shifted[..., n] = 0
    # irfft zero-pads the spectrum to 4n bins: samples every half input sample; its 1/(4n) needs a factor 2.
    return torch.fft.irfft(shifted, n=4 * n, dim=-1)[..., : 2 * n] * 2


def fourier_upsample2(x: Tensor) -> Tensor:
    """``[..., h, w]`` -> ``[..., 2h, 2w]`` by Fourier interpolation of the mirrored image (separable), sampled at
    the full-resolution pixel centres (``-1/4, 1/4, ...`` in input pixels). Float tensors only."""
    if not x.is_floating_point():
        raise TypeError(f"Fourier up-sampling needs a floating-point tensor, got {x.dtype}")
    return _upsample_last(_upsample_last(x).transpose(-1, -2)).transpose(-1, -2)
