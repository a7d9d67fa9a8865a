"""SN2N's 2-D U-Net (Qu et al., Nat Methods 2024), written from METHODS.md §4.2 and the reference's structure.

Five resolutions of 64-128-256-512-512 channels: each level is (3x3 conv with bias, batch norm, LeakyReLU 0.02)
twice; max-pooling down; bilinear upsampling (``align_corners=True``) up, concatenated ``[skip, upsampled]``, and a
decoder whose first convolution halves the concatenated width. The deepest level keeps the width of the one above
it, so every upsampled tensor matches its skip. A 1x1 convolution gives the output: 17,266,241 parameters at the
published settings, the reference's count (METHODS.md: 17.27 M).

The reference ends with a sigmoid, because its data are min-max scaled to [0, 1] patch by patch; here frames are
z-scored over the movie (docs/decisions.md, "SN2N's normalisation"), so the head is linear unless ``sigmoid``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from livedenoise.models.networks.registry import register_network

__all__ = ["SN2NUNet", "sn2n_unet"]

#: The reference's LeakyReLU slope.
_SLOPE = 0.02


def _double_conv(in_ch: int, out_ch: int, mid_ch: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_ch, mid_ch, 3, padding=1),
        nn.BatchNorm2d(mid_ch),
        nn.LeakyReLU(_SLOPE, inplace=True),
        nn.Conv2d(mid_ch, out_ch, 3, padding=1),
        nn.BatchNorm2d(out_ch),
        nn.LeakyReLU(_SLOPE, inplace=True),
    )


class SN2NUNet(nn.Module):
    """``[B, in_channels, H, W] -> [B, out_channels, H, W]``; H and W multiples of ``2 ** (levels - 1)``.

    Parameters
    ----------
    in_channels, out_channels : int
        Channels in and out (1 and 1: a single frame).
    base : int
        Channels at the first level (published 64); level ``i`` has ``base * 2**i``, the deepest as the one above.
    levels : int
        Resolutions, ``levels - 1`` poolings (published 5).
    sigmoid : bool
        End with the reference's sigmoid (for data in [0, 1]); off for z-scored frames.
    """

    def __init__(
        self, in_channels: int = 1, out_channels: int = 1, base: int = 64, levels: int = 5, *, sigmoid: bool = False
    ) -> None:
        super().__init__()
        if min(in_channels, out_channels, base) < 1 or levels < 2:
            raise ValueError(
                f"SN2N's U-Net needs in_channels, out_channels and base >= 1 and levels >= 2; got {in_channels}, "
                f"{out_channels}, {base}, {levels}"
            )
        widths = [base * 2**i for i in range(levels - 1)]
        widths.append(widths[-1])  # the deepest level keeps the width above it (the reference's 1024 // 2)
        self.levels = levels
        self.sigmoid = sigmoid
        ins = [in_channels, *widths[:-1]]
        self.encoders = nn.ModuleList(_double_conv(c, w, w) for c, w in zip(ins, widths))
        # Decoder i (finest first) sees [skip i, upsampled] = 2 * widths[i] channels and gives the width of the
        # level above it (base at the top); its first convolution halves the concatenated width.
        self.decoders = nn.ModuleList(
            _double_conv(2 * widths[i], widths[i - 1] if i else base, widths[i]) for i in range(levels - 1)
        )
        self.head = nn.Conv2d(base, out_channels, 1)

    @property
    def size_multiple(self) -> int:
        """H and W must be multiples of this (``2 ** (levels - 1)``)."""
        return int(2 ** (self.levels - 1))

    def forward(self, x: Tensor) -> Tensor:
        skips: list[Tensor] = []
        for i, encoder in enumerate(self.encoders):
            x = encoder(F.max_pool2d(x, 2) if i else x)
            skips.append(x)
        skips.pop()  # the deepest features are x itself
        for decoder in reversed(self.decoders):
            up = F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=True)
            x = decoder(torch.cat([skips.pop(), up], dim=1))
        out: Tensor = self.head(x)
        return torch.sigmoid(out) if self.sigmoid else out


@register_network("sn2n_unet")
def sn2n_unet(
    in_channels: int = 1, out_channels: int = 1, base: int = 64, levels: int = 5, sigmoid: bool = False
) -> SN2NUNet:
    """SN2N's ``Unet_2d`` (bilinear): 17,266,241 parameters at the published 1, 1, 64, 5 (METHODS.md §4.2)."""
    return SN2NUNet(in_channels, out_channels, base=base, levels=levels, sigmoid=sigmoid)
