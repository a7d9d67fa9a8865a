"""One U-Net class for 2-D (frames as channels) and 3-D (volumetric, time as depth) inputs."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from livedenoise.models.networks.blocks import DoubleConv, Down, Up, conv, upsample_nearest2x

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
        self.norm = norm or "none"

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

    def crops_frames(self, frames: int, start: int, count: int) -> bool:
        """Whether :meth:`forward_frames` computes the last level only for the kept frames (else it slices the
        whole output): a 3-D net with an upsampling level, pointwise normalisation (none or batch: instance and
        group norms take statistics over every frame), and fewer kept frames than the stack has."""
        if self.dims != 3 or not self.ups or self.norm not in ("none", "batch"):
            return False
        return 0 <= start and count >= 1 and start + count <= frames and count < frames

    def _last_margin(self) -> int:
        last: Up = self.ups[-1]  # type: ignore[assignment]
        return sum(m.kernel_size[0] // 2 for m in last.conv if isinstance(m, nn.Conv3d))

    def forward_frames(self, x: Tensor, start: int, count: int) -> Tensor:
        """``forward(x)[:, :, start : start + count]``, computed with less work where :meth:`crops_frames`.

        The last decoder level (the full-resolution double convolution, about half of a DeepCAD-RT U-Net's
        multiply-accumulates) and the head run only on the kept frames and the few frames their temporal
        kernels reach: the convolutions there pad time only at the ends of the stack, so every kept value is the
        same as in the whole stack, and nothing is computed for frames that would be thrown away.
        """
        frames = x.shape[2]
        if not self.crops_frames(frames, start, count):
            return self.forward(x)[:, :, start : start + count]
        skips = [self.inc(x)]
        for down in self.downs:
            skips.append(down(skips[-1]))
        y = skips.pop()
        for up in list(self.ups)[:-1]:
            y = up(y, skips.pop())
        margin = self._last_margin()
        lo, hi = max(start - margin, 0), min(start + count + margin, frames)
        low = lo // 2  # upsample only the coarse frames the kept range comes from
        coarse = upsample_nearest2x(y[:, :, low : (hi + 1) // 2])
        z = torch.cat([skips.pop()[:, :, lo:hi], coarse[:, :, lo - 2 * low : hi - 2 * low]], dim=1)
        last: Up = self.ups[-1]  # type: ignore[assignment]
        for m in last.conv:
            if isinstance(m, nn.Conv3d):
                pt = int(m.padding[0])
                # Zero-pad time only where the range reaches an end of the stack, as the whole-stack
                # convolution does there; elsewhere the neighbouring frames are real.
                left, right = (pt if lo == 0 else 0), (pt if hi == frames else 0)
                if left or right:
                    z = F.pad(z, (0, 0, 0, 0, left, right))
                z = F.conv3d(
                    z, m.weight, m.bias, m.stride, (0, int(m.padding[1]), int(m.padding[2])), m.dilation, m.groups
                )
                lo, hi = lo - left + pt, hi + right - pt
            else:
                z = m(z)
        return self.head(z)[:, :, start - lo : start - lo + count]
