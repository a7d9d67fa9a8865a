"""Blind pixels (Noise2Void-style masking) of DeepVID and DeepVID v2.

A fraction of the centre frame's pixels is replaced, either by the value of another pixel of the same frame
(``replace``, the references' default) or by zero (``zeros``, the normalised mean); the loss counts only those
pixels, so the network learns to predict a pixel without its own noisy value.

Training draws the pixels at random (:func:`random_blind_pixels`, explicit generator). The references keep
injecting blind pixels at inference; :class:`FixedBlindPixels` does so with a pattern that is a pure function
of the pixel coordinates, so that the served graph is deterministic and a streamed series equals the offline
result.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

__all__ = ["BlindMethod", "random_blind_pixels", "FixedBlindPixels", "blind_pixel_count"]

BlindMethod = Literal["replace", "zeros"]

# The fixed pattern hashes (y, x) into [0, _HASH_MOD); a pixel is blind where the hash falls below ratio * mod.
_HASH_MOD = 65521  # prime


def blind_pixel_count(ratio: float, pixels: int) -> int:
    """Blind pixels per frame: ``ratio * pixels`` rounded, at least one."""
    return max(1, round(ratio * pixels))


def random_blind_pixels(
    frames: Tensor, ratio: float, method: BlindMethod, generator: torch.Generator
) -> tuple[Tensor, Tensor]:
    """Blind ``ratio`` of the pixels of each frame of ``frames`` ``[B, H, W]``.

    Returns the modified frames and the float mask (1 at blind pixels), both ``[B, H, W]``. Blind positions
    are drawn without repetition; each ``replace`` source is drawn uniformly over the *other* pixels of the
    frame, so no blind pixel ever holds its own value (the references allow it with probability 1/(H*W)).
    """
    b, h, w = frames.shape
    n = blind_pixel_count(ratio, h * w)
    dev = generator.device
    targets = torch.rand(b, h * w, generator=generator, device=dev).topk(n, dim=1).indices.to(frames.device)
    flat = frames.reshape(b, h * w)
    if method == "replace":
        if h * w < 2:
            raise ValueError("blind pixels need frames of at least 2 pixels")
        shift = torch.randint(1, h * w, (b, n), generator=generator, device=dev).to(frames.device)
        values = flat.gather(1, (targets + shift) % (h * w))
    elif method == "zeros":
        values = torch.zeros(b, n, dtype=frames.dtype, device=frames.device)
    else:
        raise ValueError(f"unknown blind-pixel method {method!r}; expected 'replace' or 'zeros'")
    modified = flat.scatter(1, targets, values).view(b, h, w)
    mask = torch.zeros_like(flat).scatter(1, targets, 1.0).view(b, h, w)
    return modified, mask


def fixed_blind_mask(h: int, w: int, ratio: float, device: torch.device | None = None) -> Tensor:
    """Boolean ``[H, W]`` mask of about ``ratio`` of the pixels, a fixed function of the coordinates."""
    y = torch.arange(h, device=device).view(-1, 1)
    x = torch.arange(w, device=device).view(1, -1)
    # A small integer hash (no overflow in int64 for frames up to 65535 pixels on a side) spread enough that
    # neighbouring blind pixels are rare; the product term breaks the lattice a linear hash would make.
    code = (y * 7919 + x * 104729 + (y * x % 9973) * 31337) % _HASH_MOD
    return code < int(round(ratio * _HASH_MOD))


class FixedBlindPixels(nn.Module):
    """Served-graph input construction: blind the pixels of :func:`fixed_blind_mask` in window slot ``slot``.

    ``replace`` takes each blind pixel's value from the point-mirrored pixel ``(H-1-y, W-1-x)`` of the same
    frame (a distant pixel, as the references' random source); ``zeros`` writes 0.
    """

    def __init__(self, slot: int, ratio: float, method: BlindMethod) -> None:
        super().__init__()
        if not 0.0 < ratio < 1.0:
            raise ValueError(f"blind-pixel ratio must be in (0, 1), got {ratio}")
        if method not in ("replace", "zeros"):
            raise ValueError(f"unknown blind-pixel method {method!r}; expected 'replace' or 'zeros'")
        self.slot, self.ratio, self.method = int(slot), float(ratio), method

    def forward(self, window: Tensor) -> Tensor:
        centre = window[:, self.slot : self.slot + 1]
        mask = fixed_blind_mask(window.shape[-2], window.shape[-1], self.ratio, window.device)
        source = centre.flip(-1).flip(-2) if self.method == "replace" else torch.zeros_like(centre)
        blinded = torch.where(mask, source, centre)
        return torch.cat([window[:, : self.slot], blinded, window[:, self.slot + 1 :]], dim=1)
