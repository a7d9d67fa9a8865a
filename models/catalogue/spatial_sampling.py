"""Spatial-sampling methods (METHODS.md §4): FAST, which pairs neighbouring pixels of neighbouring frames,
SRDTrans, which pairs each pixel with its two orthogonal neighbours, and SN2N, which pairs the two diagonals of
each 2x2 cell."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, model_validator

from livedenoise.clients.model_spec import WindowSpec
from livedenoise.models.catalogue.base import MethodConfig, check_patch_multiple, nearest_multiples, register_method

__all__ = ["FASTConfig", "SN2NConfig", "SRDTransConfig"]


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
    pairing: Literal["temporal", "same_frame"] = Field(
        "temporal",
        description="label frame: temporal (the other frame of each pair, the reference) or same_frame (the input "
        "frame's other pixel)",
    )
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


@register_method(
    family="spatial sampling",
    citation="Li et al., Spatial redundancy transformer for self-supervised fluorescence image denoising, "
    "Nat Comput Sci 3, 1067-1080 (2023)",
    paper="Li et al., Nat Comput Sci 2023",
    description="temporal-squeeze 3-D conv encoder, temporal and Swin (window 7) attention, trained on orthogonal "
    "pixel triplets of half-resolution stacks; stack output",
    recipe="livedenoise.models.recipes.srdtrans:SRDTransRecipe",
)
class SRDTransConfig(MethodConfig):
    """SRDTrans: a ``patch_t``-frame stack in, the same stack denoised out; trained on half-resolution sub-stacks
    (one pixel of each 2x2 cell as input, its horizontal and vertical neighbours as the two targets).

    ``patch_t`` is the same in training and serving: the temporal positional encoding has ``patch_t / 2**levels``
    learned tokens. A served call reads ``patch_t`` frames and keeps the middle ``out_frames`` (default half, the
    reference's half-overlap cropping), discarding ``(patch_t - out_frames) / 2`` frames on each side. The
    published stacks are 128 (``train.py``) or 160 (README) frames; the default 32 (2 temporal tokens, latency 23
    frames) keeps a CPU step short and the latency low.
    """

    method: Literal["srdtrans"] = "srdtrans"
    patch_t: int = Field(
        32,
        ge=2,
        description="frames per call in training and serving, a multiple of 2**levels (published 128 or 160)",
    )
    out_frames: int | None = Field(
        None, ge=1, description="served frames kept per call, in the middle of the stack (default patch_t / 2)"
    )
    patch_xy: int = Field(
        56,
        ge=4,
        description="training crop height and width, a multiple of 2 * window_size (published 128; the "
        "half-resolution sub-stacks tile the attention windows)",
    )
    base_channels: int = Field(8, ge=1, le=64, description="first encoder width, doubled per level (published 8)")
    levels: int = Field(4, ge=1, le=6, description="temporal-squeeze stages, each halving T (published 4)")
    embed_dim: int = Field(128, ge=2, le=1024, description="transformer width (published 128)")
    heads: int = Field(8, ge=1, le=64, description="attention heads, a divisor of embed_dim (published 8)")
    mlp_dim: int = Field(512, ge=1, le=8192, description="transformer MLP width (published 512)")
    window_size: int = Field(7, ge=2, le=32, description="Swin attention window in pixels (published 7)")
    attn_dropout: float = Field(0.1, ge=0.0, lt=1.0, description="dropout on attention weights (published 0.1)")
    batch_size: int = Field(2, ge=1, description="stacks per optimiser step (published 1 per GPU)")
    loss: Literal["l1", "l2", "l1_l2"] = Field(
        "l2",
        description="loss against each of the two targets (published: l1_l2; l2 estimates the mean, docs/decisions.md)",
    )

    default_lr: ClassVar[float] = 1e-3
    default_time_budget_s: ClassVar[float] = 600.0
    default_patches_per_epoch: ClassVar[int] = 64

    @model_validator(mode="after")
    def _check(self) -> SRDTransConfig:
        m = self.time_multiple
        if self.patch_t % m:
            raise ValueError(
                f"patch_t={self.patch_t} is not a multiple of 2**levels = {m} ({self.levels} temporal squeezes); "
                f"use patch_t={nearest_multiples(self.patch_t, m)} or fewer levels"
            )
        if self.embed_dim % self.heads:
            divisors = [h for h in range(1, min(self.embed_dim, 64) + 1) if self.embed_dim % h == 0]
            raise ValueError(
                f"embed_dim={self.embed_dim} is not divisible by heads={self.heads}; use heads in {divisors} "
                f"or embed_dim={nearest_multiples(self.embed_dim, self.heads)}"
            )
        xy = 2 * self.window_size
        if self.patch_xy % xy:
            raise ValueError(
                f"patch_xy={self.patch_xy} is not a multiple of 2 * window_size = {xy} (the half-resolution "
                f"training sub-stacks must tile the {self.window_size}-pixel attention windows); "
                f"use patch_xy={nearest_multiples(self.patch_xy, xy)}"
            )
        out = self.served_frames
        if out > self.patch_t:
            raise ValueError(
                f"out_frames={out} is more than the patch_t={self.patch_t} frames a call computes; use at most "
                f"{self.patch_t} (default {self.patch_t // 2}, the middle half)"
            )
        if (self.patch_t - out) % 2:
            fits = " or ".join(str(k) for k in (out - 1, out + 1) if 0 < k <= self.patch_t)
            raise ValueError(
                f"out_frames={out} leaves {self.patch_t - out} of the patch_t={self.patch_t} frames to discard, "
                f"which cannot be split evenly before and after; use out_frames={fits}"
            )
        return self

    @property
    def time_multiple(self) -> int:
        """``2**levels``: T is halved by each temporal squeeze."""
        return int(2**self.levels)

    @property
    def served_frames(self) -> int:
        """Frames kept per served call (``out_frames``, default ``patch_t / 2``)."""
        return self.patch_t // 2 if self.out_frames is None else self.out_frames

    @property
    def context(self) -> int:
        """Frames computed and discarded on each side of the kept ones: ``(patch_t - out_frames) / 2``."""
        return (self.patch_t - self.served_frames) // 2

    def window(self) -> WindowSpec:
        return WindowSpec(
            before=self.context, after=self.context, out_frames=self.served_frames, spatial_multiple=self.window_size
        )


@register_method(
    family="spatial sampling",
    citation="Qu et al., Self-inspired learning for denoising live-cell super-resolution microscopy, "
    "Nat Methods 21, 1895-1908 (2024)",
    paper="Qu et al., Nat Methods 2024",
    description="17.3 M-parameter 2-D U-Net on single frames, trained on two diagonal half-resolution views of "
    "each frame (Fourier up-sampled) with a symmetric self-constrained loss; no temporal window",
    recipe="livedenoise.models.recipes.sn2n:SN2NRecipe",
)
class SN2NConfig(MethodConfig):
    """SN2N (self-inspired Noise2Noise): one frame in, the same frame denoised out (latency 0).

    Trained on the two views of a crop, ``A = (UL + DR) / 2`` and ``B = (UR + DL) / 2`` of every 2x2 cell,
    Fourier up-sampled back to the crop's size: loss ``(L(f(A), B) + L(f(B), A) + λ L(f(B), f(A))) / (2 + λ)``,
    ``λ = constraint_weight``. A share ``patch_exchange`` of the crops first gets a square from another crop of the
    batch (the reference's Patch2Patch).
    """

    method: Literal["sn2n"] = "sn2n"
    base_channels: int = Field(64, ge=1, le=256, description="channels at the first U-Net level (published 64)")
    levels: int = Field(
        5, ge=2, le=6, description="U-Net resolutions, levels - 1 poolings (published 5: 64-128-256-512-512)"
    )
    patch_xy: int = Field(
        64, ge=16, description="training crop height and width, a multiple of 2**(levels - 1) (published 128)"
    )
    batch_size: int = Field(
        4, ge=1, le=256, description="crops per optimiser step (published 32, of which the reference uses one)"
    )
    constraint_weight: float = Field(
        1.0, ge=0.0, le=100.0, description="λ, weight of the self-constrained term L(f(B), f(A)) (published 1)"
    )
    loss: Literal["l1", "l2", "l1_l2"] = Field(
        "l2", description="loss of all three terms (published: l1; l2 estimates the mean, docs/decisions.md)"
    )
    patch_exchange: float = Field(
        0.5,
        ge=0.0,
        le=1.0,
        description="share of crops given a half-size square of another crop before resampling (Patch2Patch; "
        "the published scripts exchange in half the training set; 0 turns it off)",
    )

    default_lr: ClassVar[float] = 1e-3
    default_time_budget_s: ClassVar[float] = 600.0
    default_patches_per_epoch: ClassVar[int] = 128

    #: Widest U-Net level allowed (the published network's is 512).
    MAX_WIDTH: ClassVar[int] = 1024

    @model_validator(mode="after")
    def _check(self) -> SN2NConfig:
        widest = self.base_channels * 2 ** (self.levels - 2)
        if widest > self.MAX_WIDTH:
            fewer = max(n for n in range(2, self.levels) if self.base_channels * 2 ** (n - 2) <= self.MAX_WIDTH)
            raise ValueError(
                f"base_channels={self.base_channels} with levels={self.levels} makes the deepest levels "
                f"{widest} channels wide, more than {self.MAX_WIDTH}; use base_channels <= "
                f"{self.MAX_WIDTH // 2 ** (self.levels - 2)} or levels={fewer}"
            )
        check_patch_multiple(self.patch_xy, self.size_multiple)
        return self

    @property
    def size_multiple(self) -> int:
        """H and W multiple of the U-Net (``2**(levels - 1)``); even, as the diagonal resampling needs."""
        return int(2 ** (self.levels - 1))

    def window(self) -> WindowSpec:
        return WindowSpec(before=0, after=0, out_frames=1, spatial_multiple=self.size_multiple)
