"""Adapters between the ``BTHW`` movie layout and a network's own layout, and the export slice."""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

__all__ = ["VolumeAdapter", "WindowOutput"]


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
