"""DeepSeMi's 3-D blind-spot network (Zhang et al., Nat Methods 2023), written from METHODS.md §2.1.

Every convolution is a :class:`ShiftConv3d`: its input is padded on the low side of the last axis and the output
cropped on the high side, so an output at index ``i`` of that axis sees only inputs at ``i`` and below (and,
with an extra shift, strictly below). Stacked in a 3-D U-Net, each output sees a half-space; rotating the input
before the shared network (and the output back) points the half-space in four directions in (H, W) (the XY
branch: everything but the pixel's own (y, x) column) or towards the past and the future along T (the T branch:
strictly other frames). 1x1x1 convolutions fuse the six branch outputs, and the T branch also has its own head,
trained on the same target.

Inputs are built from consecutive frames by :class:`DeepSeMiViews`: for each output frame the ``in_c``-frame
window around it as channels (``a``), and the ``(in_c + 1) / 2`` frames ending (``t1``) and starting (``t2``) at it.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from livedenoise.models.networks.blocks import upsample_nearest2x
from livedenoise.models.networks.registry import register_network

__all__ = ["ShiftConv3d", "ShiftUNet3d", "DeepSeMiNet", "DeepSeMiViews", "deepsemi_net", "SHIFT_PATTERNS"]

_LAYERS = (
    "in_1",
    "in_2",
    "en1_1",
    "en1_2",
    "en2_1",
    "en2_2",
    "en3_1",
    "en3_2",
    "bottom_1",
    "bottom_2",
    "de3_1",
    "de3_2",
    "de2_1",
    "de2_2",
    "de1_1",
    "de1_2",
)

# Extra shifts per layer of the reference's T1XY1 / T3XY3 / T5XY5 networks (shift_1/3/5_dic); the reference reuses
# its ``in_1_2`` entry for the last decoder conv, which is what ``de1_2`` holds here. The shipped model is "3".
SHIFT_PATTERNS: dict[str, dict[str, int]] = {
    "1": {"in_1": 1, "en1_1": 1, "en2_1": 1, "en3_1": 1, "bottom_1": 1},
    "3": {"in_1": 1, "en1_1": 1, "de1_1": 1},
    "5": {"in_1": 1, "in_2": 1, "en1_1": 1, "de1_2": 1},
}
ShiftPattern = Literal["1", "3", "5"]


class ShiftConv3d(nn.Conv3d):
    """A 3x3x3 convolution whose receptive field is moved ``1 + extra`` voxels towards lower indices of the last
    axis: the output at ``i`` sees inputs ``i - 2 - extra .. i - extra`` along it."""

    def __init__(self, in_ch: int, out_ch: int, extra: int = 0) -> None:
        super().__init__(in_ch, out_ch, 3, padding=1)
        self.offset = 1 + int(extra)

    def forward(self, x: Tensor) -> Tensor:
        y = super().forward(F.pad(x, (self.offset, 0)))
        return y[..., : y.shape[-1] - self.offset]


class ShiftUNet3d(nn.Module):
    """DeepSeMi's ``BlindspotNetwork_sub``: a 3-pooling 3-D U-Net of :class:`ShiftConv3d` with ``features``
    channels at every level, ReLU, max pooling and nearest upsampling. T, H and W must be multiples of 8."""

    def __init__(self, in_ch: int, features: int, pattern: ShiftPattern) -> None:
        super().__init__()
        shifts = SHIFT_PATTERNS[pattern]
        f = features

        def pair(name: str, first_in: int) -> nn.Sequential:
            return nn.Sequential(
                ShiftConv3d(first_in, f, shifts.get(f"{name}_1", 0)),
                nn.ReLU(inplace=True),
                ShiftConv3d(f, f, shifts.get(f"{name}_2", 0)),
                nn.ReLU(inplace=True),
            )

        self.inc = pair("in", in_ch)
        self.enc = nn.ModuleList([pair(f"en{i}", f) for i in (1, 2, 3)])
        self.bottom = pair("bottom", f)
        self.dec = nn.ModuleList([pair(f"de{i}", 2 * f) for i in (3, 2, 1)])

    def forward(self, x: Tensor) -> Tensor:
        x0 = self.inc(x)
        x1 = self.enc[0](F.max_pool3d(x0, 2))
        x2 = self.enc[1](F.max_pool3d(x1, 2))
        x3 = self.enc[2](F.max_pool3d(x2, 2))
        y = self.bottom(x3)
        y = self.dec[0](torch.cat([upsample_nearest2x(y), x2], dim=1))
        y = self.dec[1](torch.cat([upsample_nearest2x(y), x1], dim=1))
        out: Tensor = self.dec[2](torch.cat([upsample_nearest2x(y), x0], dim=1))
        return out


def _rot90(x: Tensor, quarter_turns: int, a: int, b: int) -> Tensor:
    """``torch.rot90(x, quarter_turns, (a, b))`` written with flips and a transpose, which export to ONNX."""
    k = quarter_turns % 4
    if k == 1:
        return x.flip(b).transpose(a, b)
    if k == 2:
        return x.flip(a).flip(b)
    if k == 3:
        return x.flip(a).transpose(a, b)
    return x


def _rot_hw(x: Tensor, quarter_turns: int) -> Tensor:
    """Rotate ``[B, C, T, H, W]`` in the (H, W) plane (the reference's ``rotate3d``)."""
    return _rot90(x, quarter_turns, 3, 4)


def _rot_tw(x: Tensor, quarter_turns: int) -> Tensor:
    """Rotate ``[B, C, T, H, W]`` in the (T, W) plane, so that the last axis runs along T (``rotate3dt``)."""
    return _rot90(x, quarter_turns, 2, 4)


def _head(f: int, in_ch: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv3d(in_ch, f, 1), nn.ReLU(inplace=True), nn.Conv3d(f, f, 1), nn.ReLU(inplace=True), nn.Conv3d(f, 1, 1)
    )


class DeepSeMiNet(nn.Module):
    """The XY and T branches, their heads and the fusion: ``(a, t1, t2) -> (fused, [t_past, t_future])``.

    ``a`` is ``[B, in_c, T, H, W]``; ``t1`` and ``t2`` are ``[B, (in_c + 1) / 2, T, H, W]``; every output is
    ``[B, 1, T, H, W]``. The reference concatenates the branch features in a random order at every call (train
    and test) so that the fusion learns not to depend on it; here training shuffles with the trainer's generator
    and the served graph uses the fixed order, so inference is deterministic.
    """

    XY_TURNS = (0, 1, 2, 3)

    def __init__(self, in_c: int = 15, features: int = 8, pattern: ShiftPattern = "3") -> None:
        super().__init__()
        if in_c < 3 or in_c % 2 == 0:
            raise ValueError(f"in_c must be an odd number of frames >= 3, got {in_c}")
        if pattern not in SHIFT_PATTERNS:
            raise ValueError(f"unknown shift pattern {pattern!r}; expected one of {', '.join(SHIFT_PATTERNS)}")
        f = features
        self.in_c = in_c
        self.xy = ShiftUNet3d(in_c, f, pattern)
        self.t = ShiftUNet3d((in_c + 1) // 2, f, pattern)
        # The reference also builds an XY head that its forward never uses (153 of its 68,211 parameters): left out.
        self.head_t = _head(f, f)
        self.fuse = _head(f, 6 * f)

    def forward(
        self, a: Tensor, t1: Tensor, t2: Tensor, generator: torch.Generator | None = None
    ) -> tuple[Tensor, list[Tensor]]:
        xy = [_rot_hw(self.xy(_rot_hw(a, k)), -k) for k in self.XY_TURNS]
        # Past: the last axis runs forward in time (frames up to the output frame); future: backwards.
        t = [_rot_tw(self.t(_rot_tw(t1, 1)), -1), _rot_tw(self.t(_rot_tw(t2, -1)), 1)]
        t_outs = [self.head_t(feat) for feat in t]
        if generator is not None:
            t = [t[i] for i in torch.randperm(2, generator=generator).tolist()]
            xy = [xy[i] for i in torch.randperm(4, generator=generator).tolist()]
        return self.fuse(torch.cat(t + xy, dim=1)), t_outs


class DeepSeMiViews(nn.Module):
    """``[B, out + in_c - 1, H, W]`` consecutive frames -> DeepSeMi's three views for the ``out`` middle frames."""

    def __init__(self, in_c: int) -> None:
        super().__init__()
        self.in_c = int(in_c)

    def forward(self, frames: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        out = frames.shape[1] - self.in_c + 1
        a = torch.stack([frames[:, j : j + self.in_c] for j in range(out)], dim=2)  # [B, in_c, out, H, W]
        n = self.in_c // 2
        return a, a[:, : n + 1], a[:, n:]


@register_network("deepsemi_net")
def deepsemi_net(in_c: int = 15, features: int = 8, pattern: ShiftPattern = "3") -> DeepSeMiNet:
    """DeepSeMi's network (``in_c`` 15 and 8 features: 68,211 parameters, as the shipped model)."""
    return DeepSeMiNet(in_c=in_c, features=features, pattern=pattern)
