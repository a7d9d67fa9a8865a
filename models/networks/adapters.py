"""Adapters between the ``BTHW`` movie layout and a network's own layout, and the export slice."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

__all__ = ["VolumeAdapter", "WindowOutput", "ParityWindowOutput"]


class VolumeAdapter(nn.Module):
    """Run a 3-D network (``[B, 1, T, H, W]``) on ``[B, T, H, W]`` movie stacks; output ``[B, T, H, W]``."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x.unsqueeze(1)).squeeze(1)

    def crops_frames(self, frames: int, start: int, count: int) -> bool:
        """Whether the network computes only the kept frames (see ``UNet.crops_frames``)."""
        crops: Any = getattr(self.net, "crops_frames", None)
        return bool(crops(frames, start, count)) if crops is not None else False

    def forward_frames(self, x: Tensor, start: int, count: int) -> Tensor:
        """``forward(x)[:, start : start + count]``, with less work where the network can crop."""
        if not self.crops_frames(x.shape[1], start, count):
            return self.forward(x)[:, start : start + count]
        net: Any = self.net
        out: Tensor = net.forward_frames(x.unsqueeze(1), start, count).squeeze(1)
        return out


class WindowOutput(nn.Module):
    """The served graph: ``frames [B, L, H, W] -> denoised [B, out_frames, H, W]``.

    Keeps the model's output frames at window positions ``before .. before + out_frames - 1`` (the
    BTHW contract in ``livedenoise.clients.model_spec``). A model with ``forward_frames`` (``VolumeAdapter``
    over a 3-D U-Net) computes its last level only for those frames when ``crop`` (the same values, less work:
    :attr:`cropped` says whether it does for a window of ``planes`` frames).
    """

    def __init__(self, model: nn.Module, before: int, out_frames: int, *, planes: int | None = None) -> None:
        super().__init__()
        self.model = model
        self.before = int(before)
        self.out_frames = int(out_frames)
        crops: Any = getattr(model, "crops_frames", None)
        self.cropped = bool(planes is not None and crops is not None and crops(planes, self.before, self.out_frames))

    def forward(self, frames: Tensor) -> Tensor:
        if self.cropped:
            model: Any = self.model
            out: Tensor = model.forward_frames(frames, self.before, self.out_frames)
            return out
        y = self.model(frames)
        return y[:, self.before : self.before + self.out_frames]


class ParityWindowOutput(nn.Module):
    """The served graph of an odd/even-trained stack network run at the frame spacing it was trained at.

    A network trained on the even frames of a stack to predict its odd frames (DeepCAD, DeepCAD-RT) learns
    temporal filters for frames two apart. Fed consecutive frames, it averages over half the time it should
    and under-smooths (docs/decisions.md). Here the window ``[B, L, H, W]`` (``L`` even) is split into its
    even and odd frames, both run as one batch of ``L/2``-frame stacks, and the two interleaved estimates are
    merged: frame ``t`` gets ``E[t]/2 + (E[t-1] + E[t+1])/4``, its own stack's estimate and the mean of the
    other stack's estimates on either side, whose noise is independent. Needs ``before >= 1`` and
    ``after >= 1``. Output ``[B, out_frames, H, W]`` for window positions ``before .. before+out_frames-1``.
    With ``crop``, a model with ``forward_frames`` computes its last level only for the stack positions read.
    """

    def __init__(self, model: nn.Module, before: int, out_frames: int, *, planes: int, crop: bool = True) -> None:
        super().__init__()
        if planes % 2 or before < 1 or planes - before - out_frames < 1:
            raise ValueError(
                f"parity serving needs an even window with a frame of context on each side, got {planes} "
                f"frames with {before} before and {planes - before - out_frames} after"
            )
        self.model = model
        self.before = int(before)
        self.out_frames = int(out_frames)
        # Stack positions p whose estimates the merge reads (real frames before-1 .. before+out_frames):
        # even frames sit at 2p, odd ones at 2p+1.
        self._first = (self.before - 1) // 2
        self._count = (self.before + self.out_frames) // 2 - self._first + 1
        crops: Any = getattr(model, "crops_frames", None)
        self.cropped = bool(crop and crops is not None and crops(planes // 2, self._first, self._count))

    def forward(self, frames: Tensor) -> Tensor:
        b = frames.shape[0]
        stacks = torch.cat([frames[:, 0::2], frames[:, 1::2]], dim=0)
        if self.cropped:
            model: Any = self.model
            est: Tensor = model.forward_frames(stacks, self._first, self._count)
        else:
            est = self.model(stacks)[:, self._first : self._first + self._count]
        # Interleave: real frame 2p from the even stack, 2p+1 from the odd one.
        e = torch.stack([est[:b], est[b:]], dim=2).flatten(1, 2)
        lo = self.before - 2 * self._first  # position of window frame `before` in e
        n = self.out_frames
        return 0.5 * e[:, lo : lo + n] + 0.25 * (e[:, lo - 1 : lo + n - 1] + e[:, lo + 1 : lo + n + 1])
