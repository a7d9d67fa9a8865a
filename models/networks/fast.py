"""FAST's light 2-D U-Net (Wang et al., Nat Commun 2025), written from METHODS.md §4.1.

``C`` consecutive frames are the channels in and out. Every 3x3 convolution is grouped so that the narrower side
has two channels per group (``groups = min(in, out) // 2``), followed by batch norm and ReLU: with 64 channels at
each of three levels the whole network has 13,572 parameters, which is what makes FAST fast. Two max-poolings,
nearest upsampling; the deepest decoder has no skip connection, the next one concatenates ``[skip, upsampled]``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from livedenoise.models.networks.registry import register_network

__all__ = ["FastUNetLite", "fast_unet_lite"]


def _conv_bn_relu(in_ch: int, out_ch: int) -> nn.Sequential:
    groups = max(1, min(in_ch, out_ch) // 2)
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch, 3, padding=1, bias=False, groups=groups),
        nn.BatchNorm2d(out_ch),
        nn.ReLU(inplace=True),
    )


def _encoder_pair(in_ch: int, out_ch: int) -> nn.Sequential:
    # The reference's encoder DoubleConv: the first conv goes to half the width (but never below its input).
    mid = max(out_ch // 2, in_ch)
    return nn.Sequential(_conv_bn_relu(in_ch, mid), _conv_bn_relu(mid, out_ch))


def _decoder_pair(in_ch: int, out_ch: int) -> nn.Sequential:
    return nn.Sequential(_conv_bn_relu(in_ch, out_ch), _conv_bn_relu(out_ch, out_ch))


class FastUNetLite(nn.Module):
    """``[B, C, H, W] -> [B, C, H, W]``; H and W multiples of ``2 ** (levels - 1)``.

    Parameters
    ----------
    frames : int
        ``C``, the frames (channels) in and out (published 4). Must be even for the grouped first convolution.
    features : int
        Channels at every level (published 64), even.
    levels : int
        U-Net levels (published 3, i.e. two poolings).
    """

    def __init__(self, frames: int = 4, features: int = 64, levels: int = 3) -> None:
        super().__init__()
        if frames < 2 or frames % 2 or features < 2 or features % 2 or levels < 2:
            raise ValueError(
                f"FAST needs even frames >= 2, even features >= 2 and levels >= 2; got {frames}, {features}, {levels}"
            )
        f = features
        self.levels = levels
        self.encoders = nn.ModuleList([_encoder_pair(frames, f)] + [_encoder_pair(f, f) for _ in range(levels - 1)])
        # Deepest decoder: upsampled features only; the others: [skip, upsampled].
        self.decoders = nn.ModuleList([_decoder_pair(f, f)] + [_decoder_pair(2 * f, f) for _ in range(levels - 2)])
        self.head = nn.Conv2d(f, frames, 1)

    @property
    def size_multiple(self) -> int:
        return int(2 ** (self.levels - 1))

    def forward(self, x: Tensor) -> Tensor:
        skips: list[Tensor] = []
        for i, encoder in enumerate(self.encoders):
            x = encoder(F.max_pool2d(x, 2) if i else x)
            skips.append(x)
        skips.pop()  # the deepest features are x itself
        for i, decoder in enumerate(self.decoders):
            skip = skips.pop()
            up = F.interpolate(x, scale_factor=2.0, mode="nearest")
            x = decoder(up if i == 0 else torch.cat([skip, up], dim=1))
        out: Tensor = self.head(x)
        return out


@register_network("fast_unet_lite")
def fast_unet_lite(frames: int = 4, features: int = 64, levels: int = 3) -> FastUNetLite:
    """FAST's ``Unet_Lite`` (``f_maps`` = ``levels`` x ``features``): 13,572 parameters at the published 4, 64, 3."""
    return FastUNetLite(frames=frames, features=features, levels=levels)
