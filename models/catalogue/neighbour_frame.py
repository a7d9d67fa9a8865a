"""Neighbouring-frame methods (METHODS.md §3): DeepCAD and DeepCAD-RT, 3-D U-Nets trained on odd/even splits."""

from __future__ import annotations

import math
import re
from typing import ClassVar, Literal

from pydantic import Field, model_validator

from livedenoise.clients.model_spec import WindowSpec
from livedenoise.models.catalogue.base import MethodConfig, nearest_multiples, register_method

__all__ = ["StackConfig", "DeepCADRTConfig", "DeepCADConfig", "PARITY_MIN_TEMPORAL_SIGMA", "temporal_sigma"]

_RECIPE = "livedenoise.models.recipes.neighbour_frame:OddEvenStackRecipe"
_FAMILY = "neighbouring frame"


#: ``inference="auto"`` serves by parity when the best classical filter on the held-out frames (half the frame
#: rate) smooths time at least this much: the signal is slow against the frame rate (the calcium movies:
#: gaussian_3d(1,1,1) or (2,1,1); voltage: (3,0.5,0.5)). Movies too short to hold frames out (the live-cell
#: recordings in ../shared/data/real, where parity measured 2 dB worse) are served on consecutive frames.
PARITY_MIN_TEMPORAL_SIGMA = 1.0


def temporal_sigma(filter_name: str) -> float:
    """Temporal smoothing, as a Gaussian sigma in frames, of a filter of ``CLASSICAL_FILTERS`` by its name:
    ``gaussian_3d(st,sy,sx)`` -> ``st``; ``moving_average_<n>`` -> the box's ``sqrt((n**2 - 1) / 12)``."""
    match = re.fullmatch(r"gaussian_3d\(([0-9.]+),[0-9.]+,[0-9.]+\)", filter_name)
    if match:
        return float(match.group(1))
    match = re.fullmatch(r"moving_average_(\d+)", filter_name)
    if match:
        n = int(match.group(1))
        return math.sqrt((n * n - 1) / 12.0)
    raise ValueError(f"unknown classical filter name {filter_name!r}")


class StackConfig(MethodConfig):
    """A 3-D U-Net over stacks of frames, trained on odd/even splits; served on the window's even and odd frames
    as two stacks (the spacing it was trained at) or on consecutive frames.

    The served window is ``window_before + window_out_frames + window_after`` frames; by default the
    middle half of a ``patch_t``-frame stack is kept (quarters of context on each side), the geometry
    the network was trained on.
    """

    patch_t: int = Field(16, ge=4, description="frames per network input after the odd/even split")
    patch_xy: int = Field(32, ge=4, description="patch height and width in pixels")
    batch_size: int = Field(8, ge=1, description="patches per optimiser step")
    base_channels: int = Field(16, ge=1, le=256, description="channels at the first U-Net level")
    levels: int = Field(3, ge=1, le=6, description="U-Net resolutions (levels - 1 poolings, in T, H and W)")
    loss: Literal["l1", "l2", "l1_l2"] = Field(
        "l2",
        description="training loss. Published: l1_l2. 'l2' estimates the mean: at a few photons per pixel the "
        "L1 term pulls towards the lower Poisson median (docs/decisions.md)",
    )
    window_before: int | None = Field(None, ge=0, description="served frames of past context (default patch_t/4)")
    window_after: int | None = Field(None, ge=0, description="served frames of future context (default patch_t/4)")
    window_out_frames: int | None = Field(None, ge=1, description="served frames per call (default patch_t/2)")
    inference: Literal["auto", "parity", "consecutive"] = Field(
        "auto",
        description="how the served window is fed to the network. 'parity': its even and odd frames as two stacks, "
        "at the frame spacing the network was trained at, the two estimates merged (about 1 dB better on slow "
        "calcium at the same window and cost; fast events and sparsely sampled time-lapse lose, docs/decisions.md). "
        "'consecutive': all frames as one stack (the published inference). 'auto': parity when the best classical "
        f"filter on the held-out frames averages over time (sigma_t >= {PARITY_MIN_TEMPORAL_SIGMA:g} frames at half "
        "the rate), else consecutive; decided when training ends and recorded in the model",
    )
    crop_served_frames: bool = Field(
        True,
        description="served graph computes the U-Net's last level only for the frames it serves (same output, "
        "about a fifth fewer operations; recorded in the model as extra.graph_cropped)",
    )

    #: The reference's U-Net structure (pytorch-3dunet), see ``models/networks``.
    network_style: ClassVar[str] = "deepcad"

    @property
    def size_multiple(self) -> int:
        """T, H and W multiple the U-Net needs: ``2**(levels-1)``."""
        return int(2 ** (self.levels - 1))

    @model_validator(mode="after")
    def _check_geometry(self) -> StackConfig:
        m = self.size_multiple
        if self.patch_t % 4:
            raise ValueError(
                f"patch_t={self.patch_t} is not a multiple of 4 (the default window splits it into quarters); "
                f"use {nearest_multiples(self.patch_t, 4)}"
            )
        for name in ("patch_xy", "patch_t"):
            value = getattr(self, name)
            if value % m:
                raise ValueError(
                    f"{name}={value} is not a multiple of {m} (2**(levels-1) for levels={self.levels}); "
                    f"use {name}={nearest_multiples(value, m)} or fewer levels"
                )
        self.window()  # raises naming the fix when the served window does not suit the network
        return self

    def parity_fits(self) -> bool:
        """Whether the window can be served by parity (see :meth:`window`'s checks)."""
        w = self.window()
        return w.window_length % (2 * self.size_multiple) == 0 and w.before >= 1 and w.after >= 1

    def resolve_inference(self, best_filter: str | None) -> StackConfig:
        """This config with ``inference="auto"`` decided from the held-out frames' best classical filter
        (``None``: no held-out frames, consecutive); other settings are returned unchanged."""
        if self.inference != "auto":
            return self
        slow = best_filter is not None and temporal_sigma(best_filter) >= PARITY_MIN_TEMPORAL_SIGMA
        return self.model_copy(update={"inference": "parity" if slow and self.parity_fits() else "consecutive"})

    def window(self) -> WindowSpec:
        q = self.patch_t // 4
        before = q if self.window_before is None else self.window_before
        after = q if self.window_after is None else self.window_after
        out_frames = self.patch_t // 2 if self.window_out_frames is None else self.window_out_frames
        m = self.size_multiple
        length = before + out_frames + after
        if length % m:
            raise ValueError(
                f"window length before+out_frames+after = {before}+{out_frames}+{after} = {length} is not a "
                f"multiple of {m}, which the 3-D U-Net with levels={self.levels} needs along time; change "
                f"window_before/window_after/window_out_frames so the sum is a multiple of {m}"
            )
        if self.inference == "parity":
            if length % (2 * m):
                raise ValueError(
                    f"window length before+out_frames+after = {length} must be a multiple of {2 * m} for "
                    f"inference='parity' (two stacks of {length // 2} frames, each a multiple of {m} for "
                    f"levels={self.levels}); change the window or use inference='consecutive'"
                )
            if before < 1 or after < 1:
                raise ValueError(
                    f"inference='parity' merges each frame's estimate with its neighbours' and needs "
                    f"window_before and window_after >= 1 (got {before} and {after}); widen the window or "
                    f"use inference='consecutive'"
                )
        return WindowSpec(before=before, after=after, out_frames=out_frames, spatial_multiple=m)


@register_method(
    family=_FAMILY,
    citation="Li et al., Real-time denoising enables high-sensitivity fluorescence time-lapse imaging beyond "
    "the shot-noise limit, Nat Biotechnol 41, 282-292 (2023)",
    paper="Li et al., Nat Biotechnol 2023",
    description="light 3-D U-Net (16-32-64-128 published) on odd/even frame splits; stack output",
    recipe=_RECIPE,
)
class DeepCADRTConfig(StackConfig):
    """DeepCAD-RT. Defaults are the settings measured best for short CPU runs (docs/decisions.md): 3 levels
    of 16-32-64 channels on 16x32x32 patches in batches of 8; the published network is ``levels=4``."""

    method: Literal["deepcad_rt"] = "deepcad_rt"

    default_time_budget_s: ClassVar[float] = 240.0
    default_patches_per_epoch: ClassVar[int] = 128


@register_method(
    family=_FAMILY,
    citation="Li et al., Reinforcing neuron extraction and spike inference in calcium imaging using deep "
    "self-supervised denoising, Nat Methods 18, 1395-1400 (2021)",
    paper="Li et al., Nat Methods 2021",
    description="the original 3-D U-Net (64-128-256-512) on odd/even frame splits; stack output",
    recipe=_RECIPE,
)
class DeepCADConfig(StackConfig):
    """DeepCAD: the same odd/even split and network builder as DeepCAD-RT, at the published widths."""

    method: Literal["deepcad"] = "deepcad"
    base_channels: int = Field(64, ge=1, le=256, description="channels at the first U-Net level (published 64)")
    levels: int = Field(4, ge=1, le=6, description="U-Net resolutions (published 4: 64-128-256-512)")
    batch_size: int = Field(4, ge=1, description="patches per optimiser step")

    default_time_budget_s: ClassVar[float] = 600.0
    default_patches_per_epoch: ClassVar[int] = 64
