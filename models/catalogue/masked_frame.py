"""Blind-spot frame methods that keep the centre frame (METHODS.md §1.2-1.4): DeepVID, DeepVID v2 and TeD.

Both see ``N`` frames on each side *and* the centre frame, a fraction of whose pixels is blind; the loss counts
only the blind pixels. The centre frame's own (unmasked) pixels carry what a 1-2-frame event leaves in no
neighbouring frame, which is why these methods exist for voltage imaging.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from livedenoise.clients.model_spec import WindowSpec
from livedenoise.models.catalogue.base import MethodConfig, check_patch_multiple, register_method

__all__ = ["BlindPixelConfig", "ResidualNetConfig", "DeepVIDConfig", "DeepVIDv2Config", "TeDConfig"]


class BlindPixelConfig(MethodConfig):
    """Fields shared by every method with blind pixels in a visible centre frame (defaults: DeepVID's)."""

    pre_post_frame: int = Field(3, ge=1, le=64, description="N: frames before and after the denoised frame")
    blind_pixel_method: Literal["replace", "zeros"] = Field(
        "replace", description="blind pixels take another pixel's value (replace) or 0 (zeros)"
    )
    inference_blind_pixels: bool = Field(
        True,
        description="blind pixels at inference too, as the reference inference does (a fixed pattern, so the "
        "served graph is deterministic)",
    )
    detrend: bool = Field(
        True,
        description="remove the window's mean intensity before the network and add it back after (the streamed "
        "form of the references' polynomial detrend, docs/decisions.md)",
    )
    patch_xy: int = Field(
        64, ge=8, description="training crop height and width in pixels (the references train on whole frames)"
    )
    batch_size: int = Field(4, ge=1, description="patches per optimiser step (published 4)")
    weight_l1: float = Field(0.0, ge=0.0, description="L1 penalty on the conv weights (published 0.01, see docs)")
    weight_l2: float = Field(0.0, ge=0.0, description="L2 penalty on the conv weights (published 0.01, see docs)")
    blind_pixel_ratio: float = Field(
        0.1, gt=0.0, lt=1.0, description="fraction of centre pixels made blind (published 0.1)"
    )

    default_lr: ClassVar[float] = 1e-3
    # 300 s on the voltage movie only matched the best filter (held-out +12.13 against +12.12 dB); 600 s: +14.30.
    default_time_budget_s: ClassVar[float] = 600.0
    default_patches_per_epoch: ClassVar[int] = 128

    def window(self) -> WindowSpec:
        n = self.pre_post_frame
        return WindowSpec(before=n, after=n, out_frames=1, spatial_multiple=1)

    @property
    def input_frames(self) -> int:
        """Window frames the network sees: ``2N + 1``."""
        return 2 * self.pre_post_frame + 1


class ResidualNetConfig(BlindPixelConfig):
    """DeepVID's full-resolution residual network."""

    features: int = Field(64, ge=4, le=256, description="channels of every hidden layer (published 64)")
    norm: Literal["batch", "none"] = Field("batch", description="normalisation in the residual blocks")
    blocks: int = Field(16, ge=0, le=64, description="residual blocks (published 16)")


@register_method(
    family="blind-spot frame",
    citation="Platisa et al., High-speed low-light in vivo two-photon voltage imaging of large neuronal "
    "populations, Nat Methods 20, 1095-1103 (2023)",
    paper="Platisa et al., Nat Methods 2023",
    description="residual 2-D network on N frames each side plus the centre frame with blind pixels; masked MSE",
    recipe="livedenoise.models.recipes.masked_frame:BlindPixelRecipe",
)
class DeepVIDConfig(ResidualNetConfig):
    """DeepVID: DeepInterpolation plus Noise2Void on the centre frame (10 % blind pixels, 16 residual blocks)."""

    method: Literal["deepvid"] = "deepvid"


@register_method(
    family="blind-spot frame",
    citation="Liu et al., DeepVID v2: self-supervised denoising with decoupled spatiotemporal enhancement for "
    "low-photon voltage imaging, bioRxiv (2024)",
    paper="Liu et al., bioRxiv 2024",
    description="DeepVID with 4 residual blocks, 0.5 % blind pixels and four Sobel edge-prior channels",
    recipe="livedenoise.models.recipes.masked_frame:EdgePriorRecipe",
)
class DeepVIDv2Config(ResidualNetConfig):
    """DeepVID v2: four edge-prior planes (Sobel directions of a blurred mean frame) join the window.

    The mean frame is the training movie's (``edge_prior="fixed"``: served frames must have the training frame
    size) or, in streaming, the running mean of the series' frames so far (``edge_prior="running"``: any frame
    size; the engine keeps the mean per series).
    """

    method: Literal["deepvid_v2"] = "deepvid_v2"
    blind_pixel_ratio: float = Field(
        0.005, gt=0.0, lt=1.0, description="fraction of centre pixels made blind (published 0.005)"
    )
    blocks: int = Field(4, ge=0, le=64, description="residual blocks (published 4)")
    edge_prior: Literal["fixed", "running"] = Field(
        "fixed",
        description="mean frame behind the edge prior when serving: the training movie's (fixed) or the running "
        "mean of the streamed series (running)",
    )
    edge_gaussian_size: int = Field(9, ge=1, le=31, description="Gaussian blur kernel size before Sobel (published 9)")
    edge_gaussian_sigma: float = Field(1.0, gt=0.0, le=10.0, description="Gaussian blur sigma (published 1)")

    def window(self) -> WindowSpec:
        w = super().window()
        reference = "running_mean" if self.edge_prior == "running" else "none"
        return WindowSpec(w.before, w.after, w.out_frames, w.spatial_multiple, reference=reference)

    @field_validator("edge_gaussian_size")
    @classmethod
    def _odd_size(cls, v: int) -> int:
        if v % 2 == 0:
            raise ValueError(f"edge_gaussian_size={v} must be odd; use {v - 1} or {v + 1}")
        return v


@register_method(
    family="blind-spot frame",
    citation="Lee et al., Self-supervised denoising of dynamic fluorescence images via temporal "
    "gradient-empowered deep learning, PhotoniX 6 (2025), doi:10.1186/s43074-025-00173-8",
    paper="Lee et al., PhotoniX 2025",
    description="provisional (no public code): blind-pixel centre, neighbours and their temporal gradients; 2-D U-Net",
    recipe="livedenoise.models.recipes.masked_frame:TemporalGradientRecipe",
    provisional=True,
)
class TeDConfig(BlindPixelConfig):
    """TeD, provisional: only the abstract is public, so every choice here is an assumption (docs/decisions.md).

    The network sees the window (the centre frame with blind pixels, as DeepVID, so a 1-2-frame event stays
    visible) and its ``2N`` temporal gradients (differences of consecutive frames, taken after blinding, so a
    blind pixel's own value never enters); the loss is the MSE over the blind pixels.
    """

    method: Literal["ted"] = "ted"
    base_channels: int = Field(32, ge=4, le=256, description="channels at the first U-Net level")
    levels: int = Field(3, ge=2, le=5, description="U-Net resolutions (levels - 1 poolings)")

    @property
    def size_multiple(self) -> int:
        return int(2 ** (self.levels - 1))

    @model_validator(mode="after")
    def _check_patch(self) -> TeDConfig:
        check_patch_multiple(self.patch_xy, self.size_multiple)
        return self

    def window(self) -> WindowSpec:
        n = self.pre_post_frame
        return WindowSpec(before=n, after=n, out_frames=1, spatial_multiple=self.size_multiple)
