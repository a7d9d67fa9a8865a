"""DeepSeMi (METHODS.md §2.1): a 3-D blind-spot network of shifted convolutions over frame windows."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from livedenoise.clients.model_spec import WindowSpec
from livedenoise.models.catalogue.base import MethodConfig, nearest_multiples, register_method

__all__ = ["DeepSeMiConfig"]

# Three max-poolings in T, H and W.
_MULTIPLE = 8


@register_method(
    family="blind-spot convolution",
    citation="Zhang et al., Bio-friendly long-term subcellular dynamic recording by self-supervised image "
    "enhancement microscopy, Nat Methods 20, 1957-1970 (2023)",
    paper="Zhang et al., Nat Methods 2023",
    description="3-D U-Nets of shifted convolutions: XY branch over 4 rotations, T branch over past and future",
    recipe="livedenoise.models.recipes.deepsemi:DeepSeMiRecipe",
)
class DeepSeMiConfig(MethodConfig):
    """DeepSeMi: every output voxel is predicted from its whole ``in_c``-frame neighbourhood except itself.

    One call computes ``out_frames + 2 * context`` consecutive output frames and keeps the middle ``out_frames``:
    the outer ones, whose temporal branch sees little past or future inside the block, are discarded as the
    reference discards the margins of its overlapping tiles.
    """

    method: Literal["deepsemi"] = "deepsemi"
    in_c: int = Field(15, ge=3, le=63, description="frames seen around each output frame, odd (published 15 or 31)")
    features: int = Field(8, ge=2, le=64, description="channels at every U-Net level (published 8; 16, 32 pretrained)")
    shift_pattern: Literal["1", "3", "5"] = Field(
        "3", description="extra shifts of the reference's T1XY1 / T3XY3 / T5XY5 networks (shipped: 3)"
    )
    out_frames: int = Field(8, ge=1, description="frames kept per call")
    context: int = Field(4, ge=0, description="output frames computed and discarded on each side of the kept ones")
    patch_xy: int = Field(64, ge=8, description="training crop height and width (published 144), a multiple of 8")
    batch_size: int = Field(2, ge=1, description="patches per optimiser step")
    loss: Literal["l1", "l2", "l1_l2"] = Field(
        "l2",
        description="loss on the fused and on each T-branch output (published: L1 + L2; l2 estimates the mean, "
        "docs/decisions.md)",
    )

    default_lr: ClassVar[float] = 1e-3
    default_time_budget_s: ClassVar[float] = 600.0
    default_patches_per_epoch: ClassVar[int] = 64

    @field_validator("in_c")
    @classmethod
    def _odd(cls, v: int) -> int:
        if v % 2 == 0:
            raise ValueError(f"in_c={v} must be odd (the output frame is in the middle); use {v - 1} or {v + 1}")
        return v

    @model_validator(mode="after")
    def _multiples(self) -> DeepSeMiConfig:
        if self.patch_xy % _MULTIPLE:
            raise ValueError(
                f"patch_xy={self.patch_xy} is not a multiple of {_MULTIPLE} (three poolings); "
                f"use {nearest_multiples(self.patch_xy, _MULTIPLE)}"
            )
        if self.block_frames % _MULTIPLE:
            raise ValueError(
                f"out_frames + 2*context = {self.out_frames} + 2*{self.context} = {self.block_frames} is not a "
                f"multiple of {_MULTIPLE} (three poolings along time); change out_frames or context"
            )
        return self

    @property
    def block_frames(self) -> int:
        """Output frames the network computes per call: ``out_frames + 2 * context``."""
        return self.out_frames + 2 * self.context

    @property
    def size_multiple(self) -> int:
        return _MULTIPLE

    def window(self) -> WindowSpec:
        side = self.in_c // 2 + self.context
        return WindowSpec(before=side, after=side, out_frames=self.out_frames, spatial_multiple=_MULTIPLE)
