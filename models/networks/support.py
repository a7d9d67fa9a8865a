"""SUPPORT (Eom et al., Nat Methods 2023): a temporal U-Net plus a blind-spot branch on the centre frame.

The centre frame reaches the output only through :class:`HoleConv2d` layers whose centre tap is zero,
stacked with dilations ``b**d`` (``b`` = 2 for 3x3 kernels, 3 for 5x5). After ``d`` layers every offset
component seen so far is at most ``b**d - 1`` in size, so the next layer's non-zero taps (multiples of
``b**d``) can never land back on offset 0: the output at a pixel never sees that pixel of the centre frame.
Adding ``bs_size // 2`` to the last layer's dilation widens that hole to ``bs_size x bs_size``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from livedenoise.models.networks.blocks import conv, make_act
from livedenoise.models.networks.deepinterpolation import SingleConvUNet
from livedenoise.models.networks.registry import register_network

__all__ = ["HoleConv2d", "BlindTower", "SupportNet", "support_net"]


class HoleConv2d(nn.Conv2d):
    """A 'same'-padded 2-D convolution whose centre tap is fixed at zero (SUPPORT's ``ConvHole2D``).

    Parameters
    ----------
    in_ch, out_ch : int
        Channel counts.
    kernel : int
        Odd kernel size.
    dilation : int
        Dilation; the padding is ``dilation * (kernel // 2)``.
    """

    hole: Tensor

    def __init__(self, in_ch: int, out_ch: int, kernel: int, dilation: int = 1) -> None:
        if kernel < 3 or kernel % 2 == 0:
            raise ValueError(f"kernel must be odd and >= 3, got {kernel}")
        super().__init__(in_ch, out_ch, kernel, padding=dilation * (kernel // 2), dilation=dilation)
        mask = torch.ones(1, 1, kernel, kernel)
        mask[..., kernel // 2, kernel // 2] = 0.0
        # A constant mask applied in forward keeps the tap at zero whatever the optimiser does to the
        # stored weight (its gradient is zero; weight decay cannot revive it), and the exporter folds
        # ``weight * hole`` into one plain Conv initializer. Not persistent: the state dict holds only
        # weight and bias.
        self.register_buffer("hole", mask, persistent=False)
        with torch.no_grad():
            self.weight.mul_(mask)

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.weight * self.hole, self.bias, self.stride, self.padding, self.dilation)


class BlindTower(nn.Module):
    """One tower of SUPPORT's blind-spot branch: ``depth`` :class:`HoleConv2d` layers on the centre frame.

    Layer ``d`` has dilation ``base**d`` (the last one ``base**(depth-1) + bs_size // 2``); before every
    layer after the first, the raw centre frame is added back, scaled by learned scalars (one shared
    scalar before layer 1, one per channel after, as in the reference, so its weights map one to one).
    The context features (from the U-Net branch, which never sees the centre frame) pass through one
    ordinary conv + ReLU and are added to the first layer's output.

    Parameters
    ----------
    kernel : int
        Kernel size of every layer (3 or 5 in SUPPORT).
    base : int
        Dilation base (2 for 3x3, 3 for 5x5).
    depth : int
        Number of blind-spot layers (>= 1).
    channels : int
        Channels of every layer.
    context_channels : int
        Channels of the context features.
    bs_size : int
        Odd blind-spot side.
    """

    def __init__(self, kernel: int, base: int, depth: int, channels: int, context_channels: int, bs_size: int) -> None:
        super().__init__()
        if depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth}")
        self.keep_all = bs_size == 1
        self.context = nn.Sequential(conv(2, context_channels, channels, kernel=kernel), make_act("relu"))
        self.layers = nn.ModuleList(
            HoleConv2d(1 if d == 0 else channels, channels, kernel, base**d + (bs_size // 2 if d == depth - 1 else 0))
            for d in range(depth)
        )
        self.scales = nn.ParameterList(nn.Parameter(torch.ones(1 if d == 1 else channels)) for d in range(1, depth))
        self.act = make_act("relu")

    def forward(self, x: Tensor, context: Tensor) -> list[Tensor]:
        """Features of ``x`` (``[B, 1, H, W]``) blind to its own pixel, with ``context`` added after layer 0.

        Returns every layer's output when ``bs_size == 1``; otherwise only the last layer's, because the
        earlier ones see the centre frame's ``bs_size x bs_size`` neighbourhood.
        """
        h = self.act(self.layers[0](x)) + self.context(context)
        outs = [h]
        for layer, scale in zip(self.layers[1:], self.scales):
            h = self.act(layer(h + scale.view(1, -1, 1, 1) * x))
            outs.append(h)
        return outs if self.keep_all else outs[-1:]


def _one_by_one(in_ch: int, widths: Sequence[int]) -> nn.Sequential:
    """1x1 conv + ReLU per width."""
    layers: list[nn.Module] = []
    for w in widths:
        layers += [conv(2, in_ch, w, kernel=1), make_act("relu")]
        in_ch = w
    return nn.Sequential(*layers)


class SupportNet(nn.Module):
    """SUPPORT's network: ``[B, frames, H, W] -> [B, 1, H, W]``, the denoised centre frame.

    Channel ``frames // 2`` of the input is the centre frame; it feeds the blind-spot branch only. The
    other ``frames - 1`` channels (in window order, centre left out) feed a :class:`SingleConvUNet` whose
    features pass 1x1 convs ``one_by_one_channels``. The blind-spot branch has two :class:`BlindTower`\\ s
    (3x3, dilation ``2**d``, ``depth`` layers; 5x5, dilation ``3**d``, ``depth - 2`` layers) of
    ``blind_channels`` each, followed by its own 1x1 convs ``one_by_one_channels``. Both branches are
    concatenated and fused by 1x1 convs ``fusion_channels`` (ReLU) and a last 1x1 conv to one channel.

    The output at ``(y, x)`` does not depend on the centre frame's ``bs_size x bs_size`` neighbourhood of
    ``(y, x)``. H and W must be multiples of :attr:`size_multiple` (16 by default).

    Parameters
    ----------
    frames : int
        Window length ``2N + 1`` (odd, >= 3).
    unet_channels : Sequence[int]
        U-Net widths, finest first (at least two levels).
    bs_size : int
        Odd blind-spot side (>= 1). 1 concatenates every tower layer into the branch's 1x1 convs; larger
        sizes widen the last layer's dilation by ``bs_size // 2`` and use only the last layers.
    depth : int
        Layers of the 3x3 tower (>= 3; the 5x5 tower has ``depth - 2``).
    blind_channels : int
        Channels of the blind-spot layers.
    one_by_one_channels : Sequence[int]
        1x1 convs after each branch.
    fusion_channels : Sequence[int]
        1x1 fusion convs before the output conv.
    """

    def __init__(
        self,
        frames: int = 61,
        unet_channels: Sequence[int] = (16, 32, 64, 128, 256),
        *,
        bs_size: int = 3,
        depth: int = 5,
        blind_channels: int = 64,
        one_by_one_channels: Sequence[int] = (32, 16),
        fusion_channels: Sequence[int] = (64, 32, 16),
    ) -> None:
        super().__init__()
        if frames < 3 or frames % 2 == 0:
            raise ValueError(f"frames must be odd and >= 3 (a window of 2N+1 frames), got {frames}")
        if len(unet_channels) < 2:
            raise ValueError(f"unet_channels needs at least two levels, got {tuple(unet_channels)}")
        if bs_size < 1 or bs_size % 2 == 0:
            raise ValueError(f"bs_size must be odd and >= 1, got {bs_size}")
        if depth < 3:
            raise ValueError(f"depth must be >= 3 (the 5x5 tower has depth - 2 layers), got {depth}")
        if blind_channels < 1 or not one_by_one_channels or min(one_by_one_channels) < 1:
            raise ValueError(
                "blind_channels and one_by_one_channels must be >= 1 (one_by_one_channels non-empty), "
                f"got {blind_channels}, {tuple(one_by_one_channels)}"
            )
        if not fusion_channels or min(fusion_channels) < 1:
            raise ValueError(f"fusion_channels must be non-empty and >= 1, got {tuple(fusion_channels)}")
        self.frames = frames
        self.centre = frames // 2
        self.bs_size = bs_size
        self.unet = SingleConvUNet(frames - 1, unet_channels)
        self.unet_head = _one_by_one(self.unet.out_channels, one_by_one_channels)
        feat = one_by_one_channels[-1]
        self.towers = nn.ModuleList(
            [
                BlindTower(3, 2, depth, blind_channels, feat, bs_size),
                BlindTower(5, 3, depth - 2, blind_channels, feat, bs_size),
            ]
        )
        tower_outputs = (2 * depth - 2) if bs_size == 1 else 2
        self.blind_head = _one_by_one(blind_channels * tower_outputs, one_by_one_channels)
        self.fusion = nn.Sequential(_one_by_one(2 * feat, fusion_channels), conv(2, fusion_channels[-1], 1, kernel=1))

    @property
    def size_multiple(self) -> int:
        """H and W must be multiples of this (``2**(len(unet_channels) - 1)``)."""
        return self.unet.size_multiple

    def forward(self, x: Tensor) -> Tensor:
        c = self.centre
        neighbours = torch.cat([x[:, :c], x[:, c + 1 :]], dim=1)
        centre = x[:, c : c + 1]
        context = self.unet_head(self.unet(neighbours))
        blind = torch.cat([h for tower in self.towers for h in tower(centre, context)], dim=1)
        return self.fusion(torch.cat([context, self.blind_head(blind)], dim=1))


@register_network("support_net")
def support_net(
    frames: int = 61,
    unet_channels: tuple[int, ...] = (16, 32, 64, 128, 256),
    bs_size: int = 3,
    depth: int = 5,
    blind_channels: int = 64,
    one_by_one_channels: tuple[int, ...] = (32, 16),
    fusion_channels: tuple[int, ...] = (64, 32, 16),
) -> SupportNet:
    """SUPPORT over ``[B, frames, H, W]`` (centre frame at ``frames // 2``) -> ``[B, 1, H, W]``; ~1.40 M parameters."""
    return SupportNet(
        frames,
        unet_channels,
        bs_size=bs_size,
        depth=depth,
        blind_channels=blind_channels,
        one_by_one_channels=one_by_one_channels,
        fusion_channels=fusion_channels,
    )
