"""The built-in network builders (thin variants of the shared classes, as torchvision's ``resnet18``)."""

from __future__ import annotations

# The method-specific networks (``deepinterpolation_unet``, ``support_net``) register themselves when their
# modules are imported; the registry imports this module, so importing them here makes them known.
from livedenoise.models.networks import (  # noqa: F401
    deepinterpolation,
    deepsemi,
    deepvid,
    fast,
    sn2n,
    srdtrans,
    support,
)
from livedenoise.models.networks.registry import register_network
from livedenoise.models.networks.unet import UNet, UNetStyle

__all__ = ["unet3d", "unet2d"]


@register_network("unet3d")
def unet3d(
    in_channels: int = 1,
    out_channels: int = 1,
    base: int = 16,
    levels: int = 3,
    norm: str | None = None,
    act: str = "relu",
    style: UNetStyle = "standard",
) -> UNet:
    """3-D U-Net over ``[B, C, T, H, W]`` (DeepCAD family); T, H and W must be multiples of ``2**(levels-1)``.

    ``style="deepcad"`` with ``levels=4`` is the published structure (pytorch-3dunet encoder blocks):
    ``base=64`` for DeepCAD, ``base=16`` for DeepCAD-RT; see :class:`UNet`.
    """
    return UNet(3, in_channels, out_channels, base=base, levels=levels, norm=norm, act=act, style=style)


@register_network("unet2d")
def unet2d(
    in_channels: int = 1,
    out_channels: int = 1,
    base: int = 16,
    levels: int = 3,
    norm: str | None = None,
    act: str = "relu",
) -> UNet:
    """2-D U-Net over ``[B, C, H, W]`` (frames as channels); H and W must be multiples of ``2**(levels-1)``."""
    return UNet(2, in_channels, out_channels, base=base, levels=levels, norm=norm, act=act)
