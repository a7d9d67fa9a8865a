"""Blind-spot methods on frame windows: DeepInterpolation (blind-spot frame, METHODS.md §1.1) and SUPPORT
(blind-spot convolution, §2.2). Both see ``N`` frames on each side of the frame they denoise."""

from __future__ import annotations

from abc import abstractmethod
from typing import ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from livedenoise.clients.model_spec import WindowSpec
from livedenoise.models.catalogue.base import MethodConfig, check_patch_multiple, register_method

__all__ = ["DeepInterpolationConfig", "SupportConfig"]


class _WindowedFrameConfig(MethodConfig):
    """``N`` frames before and after one output frame, 2-D networks trained on ``patch_xy`` crops."""

    pre_post_frame: int = Field(30, ge=1, le=256, description="N: frames before and after the denoised frame")
    patch_xy: int = Field(64, ge=8, description="training crop height and width in pixels")
    batch_size: int = Field(4, ge=1, description="patches per optimiser step")

    @property
    @abstractmethod
    def size_multiple(self) -> int:
        """H and W multiple the network needs."""

    @model_validator(mode="after")
    def _check_patch(self) -> _WindowedFrameConfig:
        check_patch_multiple(self.patch_xy, self.size_multiple)
        return self

    def window(self) -> WindowSpec:
        n = self.pre_post_frame
        return WindowSpec(before=n, after=n, out_frames=1, spatial_multiple=self.size_multiple)


@register_method(
    family="blind-spot frame",
    citation="Lecoq et al., Removing independent noise in systems neuroscience data using DeepInterpolation, "
    "Nat Methods 18, 1401-1408 (2021)",
    paper="Lecoq et al., Nat Methods 2021",
    description="2-D U-Net on the 2N neighbouring frames as channels (centre omitted), target the noisy centre",
    recipe="livedenoise.models.recipes.blind_spot:DeepInterpolationRecipe",
)
class DeepInterpolationConfig(_WindowedFrameConfig):
    """DeepInterpolation: the centre frame (and ``pre_post_omission`` frames on each side of it) is left out of
    the input; the network interpolates it from the others, so it cannot copy its noise."""

    method: Literal["deepinterpolation"] = "deepinterpolation"
    pre_post_omission: int = Field(0, ge=0, description="frames next to the centre also left out, on each side")
    base_channels: int = Field(64, ge=1, le=256, description="channels at the first U-Net level (published 64)")
    levels: int = Field(5, ge=2, le=6, description="U-Net resolutions (published 5: 64-128-256-512-1024)")
    loss: Literal["l1", "l2", "l1_l2"] = Field(
        "l2", description="training loss (published: l1, mean absolute error; l2 estimates the mean, docs/decisions.md)"
    )

    default_lr: ClassVar[float] = 1e-3
    default_time_budget_s: ClassVar[float] = 600.0
    default_patches_per_epoch: ClassVar[int] = 256

    @property
    def size_multiple(self) -> int:
        return int(2 ** (self.levels - 1))

    @model_validator(mode="after")
    def _check_omission(self) -> DeepInterpolationConfig:
        if self.pre_post_omission >= self.pre_post_frame:
            raise ValueError(
                f"pre_post_omission={self.pre_post_omission} leaves no input frame with pre_post_frame="
                f"{self.pre_post_frame}; use pre_post_omission < pre_post_frame"
            )
        return self

    @property
    def input_frames(self) -> int:
        """Channels the network sees: ``2 * (N - omission)``."""
        return 2 * (self.pre_post_frame - self.pre_post_omission)


@register_method(
    family="blind-spot convolution",
    citation="Eom et al., Statistically unbiased prediction enables accurate denoising of voltage imaging data, "
    "Nat Methods 20, 1581-1592 (2023)",
    paper="Eom et al., Nat Methods 2023",
    description="2-D U-Net on the 2N neighbouring frames plus a blind-spot network on the centre frame",
    recipe="livedenoise.models.recipes.blind_spot:SupportRecipe",
)
class SupportConfig(_WindowedFrameConfig):
    """SUPPORT: the centre frame enters only through convolutions whose centre tap is zero, so no output pixel
    sees its own noisy value; ``bs_size`` widens the blind spot for spatially correlated noise."""

    method: Literal["support"] = "support"
    bs_size: int = Field(1, ge=1, le=15, description="blind-spot size in pixels (odd); 3-5 for correlated noise")
    unet_channels: tuple[int, ...] = Field((16, 32, 64, 128, 256), description="U-Net branch widths per level")
    blind_channels: int = Field(64, ge=4, le=512, description="channels of the blind-spot towers")
    depth: int = Field(5, ge=3, le=8, description="layers of the 3x3 blind-spot tower (the 5x5 tower has depth-2)")
    loss: Literal["l1", "l2", "l1_l2"] = Field(
        "l2", description="training loss (published: l1_l2, 0.5*L1 + 0.5*L2; l2 estimates the mean, docs/decisions.md)"
    )

    default_lr: ClassVar[float] = 1e-3
    default_time_budget_s: ClassVar[float] = 600.0
    default_patches_per_epoch: ClassVar[int] = 256

    @field_validator("bs_size")
    @classmethod
    def _odd_bs(cls, v: int) -> int:
        if v % 2 == 0:
            raise ValueError(f"bs_size={v} must be odd (the blind spot is centred); use {v - 1} or {v + 1}")
        return v

    @field_validator("unet_channels")
    @classmethod
    def _check_channels(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        if not 2 <= len(v) <= 6 or any(c < 1 for c in v):
            raise ValueError(f"unet_channels={v} needs 2 to 6 positive widths, e.g. (16, 32, 64, 128, 256)")
        return v

    @property
    def size_multiple(self) -> int:
        return int(2 ** (len(self.unet_channels) - 1))
