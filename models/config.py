"""``TrainConfig``: one training run, validated at the boundary (pydantic v2), torch-free.

It holds what every method shares (budget, optimiser, seed, device, validation) and the method's own
config (``method_config``, one of :data:`livedenoise.models.catalogue.AnyMethodConfig`). It is written and
read **flat**: ``TrainConfig(method="support", bs_size=3, lr=1e-3)`` routes ``bs_size`` to SUPPORT's config
and ``lr`` to the shared fields; a field neither knows is refused with the lists of both. The server
validates training jobs with it before anything runs.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from livedenoise.clients.model_spec import WindowSpec
from livedenoise.models.catalogue import AnyMethodConfig, MethodConfig, config_fields, method_info

__all__ = ["TrainConfig", "DEFAULT_METHOD"]

DEFAULT_METHOD = "deepcad_rt"


class TrainConfig(BaseModel):
    """A training run.

    Schedule: by default training runs for the method's time budget (``time_budget_s``, the plateau on a
    2-core CPU for a ~600-frame 128x128 movie), validating once per epoch of ``patches_per_epoch`` patches
    and keeping the best model; ``epochs`` fixes the length instead (reproducible runs), and with both set
    whichever ends first wins. The learning rate decays (cosine) over the run.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    method_config: AnyMethodConfig
    time_budget_s: float | None = Field(
        None, gt=0, le=7 * 24 * 3600, description="training seconds (default: the method's, unless epochs is set)"
    )
    epochs: int | None = Field(None, ge=1, le=1_000_000, description="fixed number of epochs instead of a budget")
    patches_per_epoch: int | None = Field(
        None, ge=1, description="patches per epoch (one validation each); default: the method's"
    )
    lr: float | None = Field(None, gt=0, le=1, description="Adam learning rate; default: the method's")
    betas: tuple[float, float] = (0.5, 0.999)
    lr_schedule: Literal["constant", "cosine"] = Field("cosine", description="cosine: decay lr to 2% over the run")
    validation_frames: int | None = Field(
        None, ge=0, description="frames held out at the end of the movie for validation (default: auto; 0: none)"
    )
    early_stopping: bool = Field(True, description="stop when validation stops improving (after half the run)")
    weight_averaging: float | None = Field(
        0.99,
        gt=0,
        lt=1,
        description="decay of the moving average of the weights that is validated and exported "
        "(None: the last weights)",
    )
    augment: bool = Field(True, description="random dihedral (rotation/flip) augmentation when the method allows it")
    seed: int = Field(0, ge=0)
    device: Literal["auto", "cpu", "cuda", "mps"] = "auto"

    @model_validator(mode="before")
    @classmethod
    def _route_flat_fields(cls, data: Any) -> Any:
        """Accept the flat form: the method's fields beside the shared ones."""
        if not isinstance(data, dict) or "method_config" in data:
            return data
        data = dict(data)
        name = data.pop("method", DEFAULT_METHOD)
        if isinstance(name, MethodConfig):
            return {**data, "method_config": name}
        info = method_info(str(name))
        own = config_fields(info.name)
        shared = set(cls.model_fields) - {"method_config"}
        unknown = sorted(set(data) - shared - set(own))
        if unknown:
            raise ValueError(
                f"unknown field(s) {', '.join(map(repr, unknown))} for method {info.name!r}; its fields: "
                f"{', '.join(sorted(own))}; shared fields: {', '.join(sorted(shared))}"
            )
        method = {"method": info.name, **{k: data.pop(k) for k in list(data) if k in own}}
        return {**data, "method_config": method}

    @field_validator("betas")
    @classmethod
    def _check_betas(cls, v: tuple[float, float]) -> tuple[float, float]:
        if not all(0.0 <= b < 1.0 for b in v):
            raise ValueError(f"betas must both be in [0, 1), got {v}; the DeepCAD default is (0.5, 0.999)")
        return v

    # -- resolved values ---------------------------------------------------------------------------------
    @property
    def method(self) -> str:
        return self.method_config.method

    @property
    def learning_rate(self) -> float:
        return self.lr if self.lr is not None else type(self.method_config).default_lr

    @property
    def epoch_patches(self) -> int:
        return self.patches_per_epoch or type(self.method_config).default_patches_per_epoch

    @property
    def budget_s(self) -> float | None:
        """Seconds of training: the explicit budget, else the method's unless ``epochs`` fixes the length."""
        if self.time_budget_s is not None:
            return self.time_budget_s
        return None if self.epochs is not None else type(self.method_config).default_time_budget_s

    def window(self) -> WindowSpec:
        return self.method_config.window()

    def to_json_dict(self) -> dict[str, Any]:
        """The flat JSON-able form (round-trips through ``TrainConfig(**d)``)."""
        shared = self.model_dump(mode="json", exclude={"method_config"})
        return {**self.method_config.model_dump(mode="json"), **shared}
