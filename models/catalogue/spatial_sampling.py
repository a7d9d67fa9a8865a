"""Spatial-sampling methods (METHODS.md §4): FAST, which pairs neighbouring pixels of neighbouring frames."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, model_validator

from livedenoise.clients.model_spec import WindowSpec
from livedenoise.models.catalogue.base import MethodConfig, check_patch_multiple, register_method

__all__ = ["FASTConfig", "FAST_ESTIMATES"]

#: How a served frame is estimated from the overlapping C-frame windows (docs/decisions.md, "FAST").
FAST_ESTIMATES = ("final", "causal")


@register_method(
    family="spatial sampling",
    citation="Wang et al., Real-time self-supervised denoising for high-speed fluorescence neural imaging, "
    "Nat Commun 16 (2025)",
    paper="Wang et al., Nat Commun 2025",
    description="13.6 k-parameter grouped-conv 2-D U-Net on C frames as channels, Neighbor2Neighbor pairs "
    "across neighbouring frames",
    recipe="livedenoise.models.recipes.fast:FASTRecipe",
)
class FASTConfig(MethodConfig):
    """FAST: ``frames`` consecutive frames in and out; trained on half-resolution sub-images whose targets are
    the other pixel of each 2x2 cell in the neighbouring frame, so no input ever holds its target's noise.

    Served at stride 1 (a window starts at every frame): ``estimate="causal"`` is the newest channel of the window
    ending at the frame (0 frames of latency); ``"final"`` is the reference's value after the window has slid past
    the frame, ``(e0 + e1) / 8 + e2 / 4 + e3 / 2`` over the four windows that hold it (latency ``frames - 1``).
    ``out_frames`` > 1 serves a block per call, so each window's pass is shared by the frames it holds.
    """

    method: Literal["fast"] = "fast"
    frames: int = Field(4, ge=2, le=32, description="C: frames per window, the network's channels (published 4)")
    features: int = Field(64, ge=2, le=256, description="channels at every U-Net level (published 64)")
    levels: int = Field(3, ge=2, le=5, description="U-Net levels (published 3: two poolings)")
    estimate: Literal["final", "causal"] = Field(
        "final", description="served estimate: final (latency frames - 1, the reference's output) or causal (0)"
    )
    out_frames: int = Field(
        1,
        ge=1,
        le=64,
        description="frames per call: K > 1 shares each window's network pass between the K frames "
        "(final: (K + frames - 1) / K passes per frame instead of frames; latency + K - 1)",
    )
    patch_xy: int = Field(
        64, ge=16, description="training crop height and width (the reference trains on whole frames)"
    )
    batch_size: int = Field(4, ge=1, description="windows per optimiser step")
    projection_weight: float = Field(1.0, ge=0, description="weight of the projection (crop-mean L1) loss")
    consistency_weight: float = Field(1.0, ge=0, description="weight of the scale self-constraint loss")

    default_lr: ClassVar[float] = 1e-3
    default_time_budget_s: ClassVar[float] = 300.0
    default_patches_per_epoch: ClassVar[int] = 128

    @model_validator(mode="after")
    def _check(self) -> FASTConfig:
        if self.frames % 2 or self.features % 2:
            raise ValueError(
                f"frames={self.frames} and features={self.features} must be even (grouped convolutions of two "
                "channels per group)"
            )
        # The training crop is halved by the pair sub-sampling before the network's poolings.
        check_patch_multiple(self.patch_xy, 2 * self.size_multiple)
        return self

    @property
    def size_multiple(self) -> int:
        return int(2 ** (self.levels - 1))

    def window(self) -> WindowSpec:
        after = self.frames - 1 if self.estimate == "final" else 0
        return WindowSpec(
            before=self.frames - 1, after=after, out_frames=self.out_frames, spatial_multiple=self.size_multiple
        )
