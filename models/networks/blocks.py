"""Parametrised convolution blocks shared by every network, 2-D or 3-D by one ``dims`` argument."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["conv", "make_norm", "make_act", "upsample_nearest2x", "NearestUp2x", "DoubleConv", "Down", "Up"]

_NORMS = ("none", "batch", "instance", "group")
_ACTS = ("relu", "leaky_relu", "gelu")


def _check_dims(dims: int) -> int:
    if dims not in (2, 3):
        raise ValueError(f"dims must be 2 or 3, got {dims!r}")
    return dims


def conv(dims: int, in_ch: int, out_ch: int, kernel: int = 3, *, bias: bool = True) -> nn.Module:
    """A 'same'-padded convolution in ``dims`` dimensions."""
    cls = nn.Conv3d if _check_dims(dims) == 3 else nn.Conv2d
    return cls(in_ch, out_ch, kernel_size=kernel, padding=kernel // 2, bias=bias)


def make_norm(kind: str | None, dims: int, channels: int) -> nn.Module:
    """Normalisation layer by name: ``none``/None, ``batch``, ``instance`` or ``group`` (8 groups at most)."""
    kind = kind or "none"
    if kind == "none":
        return nn.Identity()
    if kind == "batch":
        return (nn.BatchNorm3d if dims == 3 else nn.BatchNorm2d)(channels)
    if kind == "instance":
        return (nn.InstanceNorm3d if dims == 3 else nn.InstanceNorm2d)(channels, affine=True)
    if kind == "group":
        groups = max(g for g in (8, 4, 2, 1) if channels % g == 0)
        return nn.GroupNorm(groups, channels)
    raise ValueError(f"unknown norm {kind!r}; expected one of {', '.join(_NORMS)}")


def make_act(kind: str) -> nn.Module:
    """Activation by name: ``relu``, ``leaky_relu`` or ``gelu``."""
    if kind == "relu":
        return nn.ReLU(inplace=True)
    if kind == "leaky_relu":
        return nn.LeakyReLU(0.1, inplace=True)
    if kind == "gelu":
        return nn.GELU()
    raise ValueError(f"unknown activation {kind!r}; expected one of {', '.join(_ACTS)}")


def upsample_nearest2x(x: Tensor) -> Tensor:
    """Nearest upsampling by 2 along every spatial (and, for ``[B, C, T, H, W]``, the temporal) axis.

    A 2-D input goes through ``interpolate`` (an ONNX ``Resize`` that ONNX Runtime runs in its blocked layout).
    A 3-D input is upsampled as 2-D planes (``[B, C*T, H, W]``) and then each frame is repeated: the same values,
    but a 4-D ``Resize`` and a ``Concat`` in the graph instead of a 5-D ``Resize``, which ONNX Runtime's CPU
    provider runs element by element (a third of the DeepCAD-RT graph's time at 128²). A broadcast-and-reshape
    form is faster still in ONNX Runtime but 7x slower in OpenVINO; this one is close to the best in both
    (benchmarks/NOTES.md).
    """
    if x.dim() != 5:
        return F.interpolate(x, scale_factor=2.0, mode="nearest")
    b, c, t, h, w = x.shape
    planes = F.interpolate(x.reshape(b, c * t, h, w), scale_factor=2.0, mode="nearest").reshape(
        b, c, t, 1, 2 * h, 2 * w
    )
    return torch.cat([planes, planes], dim=3).reshape(b, c, 2 * t, 2 * h, 2 * w)


class NearestUp2x(nn.Module):
    """:func:`upsample_nearest2x` as a module."""

    def forward(self, x: Tensor) -> Tensor:
        return upsample_nearest2x(x)


class DoubleConv(nn.Sequential):
    """(conv 3 -> norm? -> act) twice; the first conv outputs ``mid_ch`` channels (default ``out_ch``)."""

    def __init__(
        self,
        dims: int,
        in_ch: int,
        out_ch: int,
        *,
        norm: str | None = None,
        act: str = "relu",
        mid_ch: int | None = None,
    ) -> None:
        has_norm = (norm or "none") != "none"
        mid = out_ch if mid_ch is None else mid_ch
        if mid < 1:
            raise ValueError(f"mid_ch must be >= 1, got {mid_ch}")
        super().__init__(
            conv(dims, in_ch, mid, bias=not has_norm),
            make_norm(norm, dims, mid),
            make_act(act),
            conv(dims, mid, out_ch, bias=not has_norm),
            make_norm(norm, dims, out_ch),
            make_act(act),
        )


class Down(nn.Sequential):
    """Max-pool by 2 in every axis, then :class:`DoubleConv` (``mid_ch`` as there)."""

    def __init__(
        self,
        dims: int,
        in_ch: int,
        out_ch: int,
        *,
        norm: str | None = None,
        act: str = "relu",
        mid_ch: int | None = None,
    ) -> None:
        pool = nn.MaxPool3d(2) if _check_dims(dims) == 3 else nn.MaxPool2d(2)
        super().__init__(pool, DoubleConv(dims, in_ch, out_ch, norm=norm, act=act, mid_ch=mid_ch))


class Up(nn.Module):
    """Nearest upsampling by 2 in every axis, concatenation with the skip, then :class:`DoubleConv`.

    Nearest upsampling (as in pytorch-3dunet, DeepCAD's backbone) is a pure copy that every runtime executes
    exactly (:func:`upsample_nearest2x`).
    """

    def __init__(
        self, dims: int, in_ch: int, skip_ch: int, out_ch: int, *, norm: str | None = None, act: str = "relu"
    ) -> None:
        super().__init__()
        self.up = NearestUp2x()
        self.conv = DoubleConv(_check_dims(dims), in_ch + skip_ch, out_ch, norm=norm, act=act)

    def forward(self, x: Tensor, skip: Tensor) -> Tensor:
        return self.conv(torch.cat([skip, self.up(x)], dim=1))
