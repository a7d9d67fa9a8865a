"""One U-Net class for 2-D (frames as channels) and 3-D (volumetric, time as depth) inputs."""

from __future__ import annotations

from typing import Literal

from torch import Tensor, nn

from livedenoise.models.networks.blocks import DoubleConv, Down, Up, conv

__all__ = ["UNet", "UNetStyle"]

UNetStyle = Literal["standard", "deepcad"]
_STYLES: tuple[str, ...] = ("standard", "deepcad")


class UNet(nn.Module):
    """A U-Net with ``levels`` resolutions and channel widths ``base * 2**i``.

    Parameters
    ----------
    dims : 2 (input ``[B, C, H, W]``) or 3 (input ``[B, C, T, H, W]``, pooled by 2 in every axis).
    in_channels, out_channels : channel counts of input and output.
    base : channels at the first level (DeepCAD-RT uses 16).
    levels : number of resolutions (``levels - 1`` poolings); every pooled axis must be a multiple of
        :attr:`size_multiple` = ``2**(levels-1)``.
    norm, act : see :func:`livedenoise.models.networks.blocks.make_norm` / ``make_act``.
    style : ``standard`` (every conv of a level has the level's width) or ``deepcad``, the encoder of
        pytorch-3dunet's ``UNet3D`` that DeepCAD and DeepCAD-RT use: the first conv of each encoder block
        outputs ``max(width // 2, in)`` channels. The decoder is the same in both. With 4 levels,
        ``deepcad`` has 16,315,585 parameters at ``base=64`` (DeepCAD) and 1,020,337 at ``base=16``
        (DeepCAD-RT), as the references; ``standard`` has 23,339,521 and 1,459,585.
    """

    def __init__(
        self,
        dims: int,
        in_channels: int,
        out_channels: int,
        base: int = 16,
        levels: int = 3,
        *,
        norm: str | None = None,
        act: str = "relu",
        style: UNetStyle = "standard",
    ) -> None:
        super().__init__()
        if style not in _STYLES:
            raise ValueError(f"unknown U-Net style {style!r}; expected one of {', '.join(_STYLES)}")
        if dims not in (2, 3):
            raise ValueError(f"dims must be 2 or 3, got {dims!r}")
        if levels < 1:
            raise ValueError(f"levels must be >= 1, got {levels}")
        if base < 1 or in_channels < 1 or out_channels < 1:
            raise ValueError(
                f"base, in_channels and out_channels must be >= 1, got {base}, {in_channels}, {out_channels}"
            )
        self.dims = dims
        self.levels = levels
        self.style = style
        widths = [base * 2**i for i in range(levels)]
        ins = [in_channels, *widths[:-1]]
        mids: list[int | None] = (
            [max(w // 2, c) for w, c in zip(widths, ins)] if style == "deepcad" else [None] * levels
        )
        self.inc = DoubleConv(dims, in_channels, widths[0], norm=norm, act=act, mid_ch=mids[0])
        self.downs = nn.ModuleList(
            Down(dims, widths[i], widths[i + 1], norm=norm, act=act, mid_ch=mids[i + 1]) for i in range(levels - 1)
        )
        self.ups = nn.ModuleList(
            Up(dims, widths[i + 1], widths[i], widths[i], norm=norm, act=act) for i in reversed(range(levels - 1))
        )
        self.head = conv(dims, widths[0], out_channels, kernel=1)

    @property
    def size_multiple(self) -> int:
        """Every pooled axis (H, W, and T for 3-D) must be a multiple of this."""
        return int(2 ** (self.levels - 1))

    def forward(self, x: Tensor) -> Tensor:
        skips = [self.inc(x)]
        for down in self.downs:
            skips.append(down(skips[-1]))
        y = skips.pop()
        for up in self.ups:
            y = up(y, skips.pop())
        return self.head(y)
