"""Adapters between the ``BTHW`` movie layout and a network's own layout, and the export slice."""

from __future__ import annotations

from torch import Tensor, nn

__all__ = ["VolumeAdapter", "WindowOutput"]


class VolumeAdapter(nn.Module):
    """Run a 3-D network (``[B, 1, T, H, W]``) on ``[B, T, H, W]`` movie stacks; output ``[B, T, H, W]``."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x.unsqueeze(1)).squeeze(1)


class WindowOutput(nn.Module):
    """The served graph: ``frames [B, L, H, W] -> denoised [B, out_frames, H, W]``.

    Keeps the model's output frames at window positions ``before .. before + out_frames - 1`` (the
    BTHW contract in ``livedenoise.clients.model_spec``).
    """

    def __init__(self, model: nn.Module, before: int, out_frames: int) -> None:
        super().__init__()
        self.model = model
        self.before = int(before)
        self.out_frames = int(out_frames)

    def forward(self, frames: Tensor) -> Tensor:
        y = self.model(frames)
        return y[:, self.before : self.before + self.out_frames]
