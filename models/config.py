"""``TrainConfig``: everything one training run needs, validated at the boundary (pydantic v2).

Torch-free (the server validates training-job configs with it).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from livedenoise.models.windows import default_window

__all__ = ["TrainConfig"]


def _nearest_multiples(value: int, multiple: int) -> str:
    lo = max(multiple, value // multiple * multiple)
    hi = lo + multiple if lo <= value else lo
    return f"{lo} or {hi}" if lo != hi else f"{lo}"


class TrainConfig(BaseModel):
    """A training run: method, patch geometry, optimiser, schedule, network size, device, window.

    The defaults are the settings measured best for a short CPU run (DeepCAD-RT recipe; lr 1e-3 with
    cosine decay: the published 5e-5 is what makes the reference slow, METHODS.md 3.2; 16x32x32 patches
    in batches of 8, since oneDNN runs small 3-D patches several times faster per voxel than 32x64x64).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    method: str = Field("deepcad_rt", description="recipe name (livedenoise.models.windows.known_methods())")
    patch_t: int = Field(16, ge=4, description="frames per network input after the sampler (DeepCAD: after the odd/even split)")
    patch_xy: int = Field(32, ge=4, description="patch height and width in pixels")
    batch_size: int = Field(8, ge=1)
    epochs: int = Field(5, ge=1)
    patches_per_epoch: int = Field(120, ge=1, description="patches drawn per epoch; steps = ceil(patches / batch_size)")
    lr: float = Field(1e-3, gt=0, le=1)
    loss: Literal["l1", "l2", "l1_l2"] | None = Field(
        None,
        description="training loss; None = the recipe's published loss. 'l2' estimates the mean: at a few photons "
        "per pixel the L1 term pulls towards the lower Poisson median",
    )
    betas: tuple[float, float] = (0.5, 0.999)
    lr_schedule: Literal["constant", "cosine"] = Field(
        "cosine", description="cosine: decay lr to ~0 over the run (steps, or time_limit_s if it ends first)"
    )
    seed: int = Field(0, ge=0)
    base_channels: int = Field(16, ge=1, le=256)
    levels: int = Field(3, ge=1, le=6)
    augment: bool = Field(True, description="random dihedral (rotation/flip) augmentation when the recipe allows it")
    device: Literal["auto", "cpu", "cuda", "mps"] = "auto"
    time_limit_s: float | None = Field(None, gt=0, description="stop training after this many seconds (then export)")
    window_before: int | None = Field(None, ge=0, description="override the recipe's default frames of past context")
    window_after: int | None = Field(None, ge=0, description="override the recipe's default frames of future context")
    window_out_frames: int | None = Field(None, ge=1, description="override the recipe's default output frames per call")

    @field_validator("betas")
    @classmethod
    def _check_betas(cls, v: tuple[float, float]) -> tuple[float, float]:
        if not all(0.0 <= b < 1.0 for b in v):
            raise ValueError(f"betas must both be in [0, 1), got {v}; the DeepCAD default is (0.5, 0.999)")
        return v

    @field_validator("patch_t")
    @classmethod
    def _check_patch_t(cls, v: int) -> int:
        if v % 4:
            raise ValueError(
                f"patch_t={v} is not a multiple of 4 (the default window splits it into quarters); "
                f"use {_nearest_multiples(v, 4)}"
            )
        return v

    @property
    def size_multiple(self) -> int:
        """Spatial (and, for 3-D networks, temporal) multiple the U-Net needs: ``2**(levels-1)``."""
        return int(2 ** (self.levels - 1))

    @model_validator(mode="after")
    def _check_geometry(self) -> TrainConfig:
        m = self.size_multiple
        if self.patch_xy % m:
            raise ValueError(
                f"patch_xy={self.patch_xy} is not a multiple of {m} (2**(levels-1) for levels={self.levels}); "
                f"use patch_xy={_nearest_multiples(self.patch_xy, m)} or fewer levels"
            )
        if self.patch_t % m:
            raise ValueError(
                f"patch_t={self.patch_t} is not a multiple of {m} (2**(levels-1) for levels={self.levels}); "
                f"use patch_t={_nearest_multiples(self.patch_t, m)} or fewer levels"
            )
        # Torch-free check of the method name and its window (the server validates job configs too).
        default_window(self)
        return self

    def to_json_dict(self) -> dict[str, Any]:
        """The config as a JSON-able dict (round-trips through ``TrainConfig(**d)``)."""
        return self.model_dump(mode="json")
