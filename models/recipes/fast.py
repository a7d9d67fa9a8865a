"""FAST (METHODS.md §4.1): Neighbor2Neighbor pairs across neighbouring frames, trained on half-resolution
sub-images with the scale self-constraint and the projection loss, served at stride 1.

A sample is ``C + 1`` consecutive frames. Position ``i`` pairs frames ``i`` and ``i + 1``, in a random order (the
reference's temporal swap), as input and label. Each 2x2 cell gives a pair of neighbouring pixels: the input
keeps the first (``G1``), the label the second (``G2``). The reference draws the pair independently for every
channel, so the label pixel of frame ``i + 1`` is, in about a quarter of the cells, the very pixel the input holds
for that frame in its next channel, and the network can learn to copy noise; here one pair per cell serves every
channel, so no input pixel is ever a label pixel (a test checks it).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from livedenoise.clients.model_spec import EstimateSpec
from livedenoise.models.catalogue.spatial_sampling import FASTConfig
from livedenoise.models.recipes.base import Recipe, StepOutput, TrainingWindow
from livedenoise.models.sampling.neighbour_pairs import draw_pairs, subsample

__all__ = ["FASTRecipe", "FastCausal", "FastFinal", "projection_loss", "final_weights"]

_PROJECTION_CROPS = 10
_PROJECTION_SIZE = 20


def projection_loss(pred: Tensor, target: Tensor, generator: torch.Generator) -> Tensor:
    """FAST's projection loss: L1 between the means of ``pred`` and ``target`` over 10 random square crops (20
    pixels, or the whole image when smaller), per sample and channel, averaged over the crops."""
    h, w = pred.shape[-2:]
    size = min(_PROJECTION_SIZE, h, w)
    tops = torch.randint(0, h - size + 1, (_PROJECTION_CROPS,), generator=generator, device=generator.device)
    lefts = torch.randint(0, w - size + 1, (_PROJECTION_CROPS,), generator=generator, device=generator.device)
    total = pred.new_zeros(())
    for top, left in zip(tops.tolist(), lefts.tolist()):
        crop = (..., slice(top, top + size), slice(left, left + size))
        total = total + F.l1_loss(pred[crop].mean(dim=(-2, -1)), target[crop].mean(dim=(-2, -1)))
    return total / _PROJECTION_CROPS


def final_weights(frames: int) -> list[float]:
    """Weight of the estimate from each window holding a frame, oldest window (ending at the frame) first.

    The reference writes a frame's first estimate from the window ending at it and replaces it with
    ``0.5 * (new + old)`` at each of the ``frames - 1`` later windows, so the window starting at the frame weighs
    1/2, the one before it 1/4, ... and the first two 1 / 2**(frames - 1) each (4 frames: 1/8, 1/8, 1/4, 1/2).
    """
    return [0.5 ** (frames - 1)] + [0.5 ** (frames - j) for j in range(1, frames)]


def _run_windows(net: nn.Module, frames: Tensor, c: int, starts: int) -> Tensor:
    """The network on the ``starts`` consecutive ``c``-frame windows of ``frames`` ``[B, T, H, W]``, in one batched
    call: ``[starts, B, c, H, W]`` (window ``j`` starts at frame ``j``)."""
    h, w = frames.shape[-2:]
    stacked = torch.cat([frames[:, j : j + c] for j in range(starts)], dim=0)
    out: Tensor = net(stacked).reshape(starts, -1, c, h, w)
    return out


class FastCausal(nn.Module):
    """``[B, C - 1 + K, H, W]`` -> ``[B, K, H, W]``: for each of the last ``K`` frames, the newest channel of the
    window ending at it (no future frame)."""

    def __init__(self, net: nn.Module, frames: int, out_frames: int = 1) -> None:
        super().__init__()
        self.net = net
        self.frames, self.out_frames = int(frames), int(out_frames)

    def forward(self, window: Tensor) -> Tensor:
        c, k = self.frames, self.out_frames
        out = _run_windows(self.net, window, c, k)
        return torch.stack([out[j, :, c - 1] for j in range(k)], dim=1)


class FastFinal(nn.Module):
    """``[B, C - 1 + K + C - 1, H, W]`` -> ``[B, K, H, W]``: for each of the ``K`` middle frames the reference's
    final value, the weighted estimates of the ``C`` windows that hold it. The ``K + C - 1`` windows run once
    each, so a block of ``K`` frames costs ``(K + C - 1) / K`` network calls per frame.

    With ``with_causal`` the output is ``[B, 2K, H, W]``: the final values, then the causal estimates of the same
    ``K`` frames (the newest channel of the window ending at each), which those windows compute anyway and which
    read none of the last ``C - 1`` planes; a series may then ask for either (``ModelSpec.estimates``)."""

    def __init__(self, net: nn.Module, frames: int, out_frames: int = 1, with_causal: bool = False) -> None:
        super().__init__()
        self.net = net
        self.frames, self.out_frames = int(frames), int(out_frames)
        self.with_causal = bool(with_causal)
        self.register_buffer("weights", torch.tensor(final_weights(self.frames)), persistent=False)

    def forward(self, window: Tensor) -> Tensor:
        c, k = self.frames, self.out_frames
        out = _run_windows(self.net, window, c, k + c - 1)
        weights: Tensor = self.weights  # type: ignore[assignment]  # a registered buffer
        frames = []
        for i in range(k):  # output frame i is window frame c - 1 + i: channel c - 1 + i - j of windows j = i..i+c-1
            estimates = torch.stack([out[j, :, c - 1 + i - j] for j in range(i, i + c)], dim=0)
            frames.append((estimates * weights.view(c, 1, 1, 1)).sum(dim=0))
        if self.with_causal:  # window i ends at output frame i
            frames.extend(out[i, :, c - 1] for i in range(k))
        return torch.stack(frames, dim=1)


class FASTRecipe(Recipe):
    """Samples of ``C + 1`` consecutive frames inside the movie; loss ``L_ST + L_proj + L_SC`` (reference)."""

    config: FASTConfig

    def network(self) -> tuple[str, dict[str, Any]]:
        c = self.config
        return "fast_unet_lite", {"frames": c.frames, "features": c.features, "levels": c.levels}

    def training_window(self) -> TrainingWindow:
        c = self.config
        return TrainingWindow(
            frames=c.frames + 1,
            size=c.patch_xy,
            spatial_multiple=2 * c.size_multiple,
            min_frames=c.frames + 1,
        )

    def pairs(self, patches: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """``(input, label)`` ``[B, C, h, w]`` each: frames ``i`` and ``i + 1`` of the sample, swapped at random."""
        c = self.config.frames
        if self.config.pairing == "same_frame":
            return patches[:, :c], patches[:, :c]
        swap = torch.rand(patches.shape[0], c, generator=generator, device=generator.device) < 0.5
        swap = swap.to(patches.device)[:, :, None, None]
        earlier, later = patches[:, :c], patches[:, 1 : c + 1]
        return torch.where(swap, later, earlier), torch.where(swap, earlier, later)

    def sub_pairs(self, patches: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """``(input, first, G1(input), G2(label))``: the full-resolution input, the cell index of its kept pixels
        and the half-resolution input and label of a training step."""
        inputs, labels = self.pairs(patches, generator)
        first, second = draw_pairs(patches.shape[0], patches.shape[-2], patches.shape[-1], generator)
        return inputs, first, subsample(inputs, first), subsample(labels, second)

    def training_step(self, model: nn.Module, patches: Tensor, generator: torch.Generator) -> StepOutput:
        c = self.config
        inputs, first, sub_input, sub_label = self.sub_pairs(patches, generator)
        with torch.no_grad():
            full = model(inputs)
        pred = model(sub_input)
        st = F.mse_loss(pred, sub_label)
        projection = projection_loss(pred, sub_label, generator)
        consistency = F.mse_loss(pred, subsample(full, first))
        loss = st + c.projection_weight * projection + c.consistency_weight * consistency
        return StepOutput(
            loss,
            {
                "st": float(st.detach()),
                "projection": float(projection.detach()),
                "consistency": float(consistency.detach()),
            },
        )

    def export_module(self, model: nn.Module) -> nn.Module:
        c = self.config
        if c.estimate == "causal":
            return FastCausal(model, c.frames, c.out_frames)
        return FastFinal(model, c.frames, c.out_frames, with_causal=True)

    def estimates(self) -> tuple[EstimateSpec, ...]:
        """A final model serves its final values and, per series, the causal ones; a causal model only those."""
        causal = EstimateSpec("causal", 0)
        if self.config.estimate == "causal":
            return (causal,)
        return (EstimateSpec("final", self.config.frames - 1), causal)
