"""DeepInterpolation's 2-D U-Net with one convolution per level (Lecoq et al., Nat Methods 2021).

The trunk, :class:`SingleConvUNet`, is also SUPPORT's temporal branch (:mod:`.support`), with narrower widths.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from livedenoise.models.networks.blocks import conv, make_act
from livedenoise.models.networks.registry import register_network

__all__ = ["SingleConvUNet", "DeepInterpolationUNet", "deepinterpolation_unet"]


class SingleConvUNet(nn.Module):
    """2-D U-Net trunk: one 3x3 conv + activation per level, max-pool 2, nearest upsampling 2.

    Each decoder level concatenates ``[upsampled, skip]`` (the order of both references) and applies one
    3x3 conv + activation. There is no output head: the result has ``widths[0]`` channels.

    Parameters
    ----------
    in_channels : int
        Input channels.
    widths : Sequence[int]
        Channels per level, finest first; ``len(widths) - 1`` poolings.
    act : str
        Activation name (see :func:`livedenoise.models.networks.blocks.make_act`).
    """

    def __init__(self, in_channels: int, widths: Sequence[int], *, act: str = "relu") -> None:
        super().__init__()
        widths = [int(w) for w in widths]
        if not widths or min(widths) < 1 or in_channels < 1:
            raise ValueError(f"in_channels and every width must be >= 1 (widths non-empty): {in_channels}, {widths}")
        self.widths = tuple(widths)
        ins = [in_channels, *widths[:-1]]
        self.encoders = nn.ModuleList(nn.Sequential(conv(2, c, w), make_act(act)) for c, w in zip(ins, widths))
        self.decoders = nn.ModuleList(
            nn.Sequential(conv(2, widths[i + 1] + widths[i], widths[i]), make_act(act))
            for i in reversed(range(len(widths) - 1))
        )
        self.pool = nn.MaxPool2d(2)
        self.up = nn.Upsample(scale_factor=2, mode="nearest")

    @property
    def out_channels(self) -> int:
        """Channels of the output features (``widths[0]``)."""
        return self.widths[0]

    @property
    def size_multiple(self) -> int:
        """H and W must be multiples of this (``2**(len(widths) - 1)``)."""
        return int(2 ** (len(self.widths) - 1))

    def forward(self, x: Tensor) -> Tensor:
        skips: list[Tensor] = []
        for i, enc in enumerate(self.encoders):
            x = enc(x)
            if i < len(self.encoders) - 1:
                skips.append(x)
                x = self.pool(x)
        for dec in self.decoders:
            x = dec(torch.cat([self.up(x), skips.pop()], dim=1))
        return x


class DeepInterpolationUNet(nn.Module):
    """DeepInterpolation ``unet_single_1024``: :class:`SingleConvUNet` plus a 1x1 conv to the output.

    Input ``[B, in_channels, H, W]``: the neighbouring frames as channels (30 before then 30 after, the
    centre frame left out); output ``[B, out_channels, H, W]``, the interpolated centre frame. H and W
    must be multiples of :attr:`size_multiple` (16 with the default 5 levels).

    Parameters
    ----------
    in_channels, out_channels : int
        Channel counts of input and output.
    base : int
        Channels at the first level; level ``i`` has ``base * 2**i``.
    levels : int
        Number of resolutions (``levels - 1`` poolings).
    """

    def __init__(self, in_channels: int = 60, out_channels: int = 1, base: int = 64, levels: int = 5) -> None:
        super().__init__()
        if levels < 1 or base < 1 or out_channels < 1:
            raise ValueError(f"levels, base and out_channels must be >= 1, got {levels}, {base}, {out_channels}")
        self.unet = SingleConvUNet(in_channels, [base * 2**i for i in range(levels)])
        self.head = conv(2, base, out_channels, kernel=1)

    @property
    def size_multiple(self) -> int:
        """H and W must be multiples of this (``2**(levels - 1)``)."""
        return self.unet.size_multiple

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.unet(x))


@register_network("deepinterpolation_unet")
def deepinterpolation_unet(
    in_channels: int = 60, out_channels: int = 1, base: int = 64, levels: int = 5
) -> DeepInterpolationUNet:
    """DeepInterpolation's U-Net over ``[B, in_channels, H, W]`` (defaults: 60 frames, 64..1024, ~15.7 M parameters)."""
    return DeepInterpolationUNet(in_channels, out_channels, base=base, levels=levels)
