"""The method contract, torch-free: a pydantic config per method and one registry of methods.

A method is registered once, here, with its config class (its own fields, defaults and validators), its
family, paper and one-line description, and the import string of its torch-side recipe (uvicorn's
``"module:attr"`` style, so that validating a config never imports torch). The server validates training
jobs with this module; the CLI and the trainer use the same classes.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict

from livedenoise.clients.model_spec import WindowSpec

__all__ = ["MethodConfig", "MethodInfo", "register_method", "method_info", "list_methods", "nearest_multiples"]


def nearest_multiples(value: int, multiple: int) -> str:
    """``"24 or 32"``: the multiples of ``multiple`` around ``value`` (for validator messages)."""
    lo = max(multiple, value // multiple * multiple)
    hi = lo + multiple if lo <= value else lo
    return f"{lo} or {hi}" if lo != hi else f"{lo}"


def check_patch_multiple(patch_xy: int, multiple: int) -> None:
    """Raise naming the fix when a training crop is not a multiple of what the network's poolings need."""
    if patch_xy % multiple:
        raise ValueError(
            f"patch_xy={patch_xy} is not a multiple of {multiple}, which the U-Net needs; "
            f"use patch_xy={nearest_multiples(patch_xy, multiple)}"
        )


class MethodConfig(BaseModel):
    """Base of every method's config: what the trainer and the exporter ask of any method.

    Subclasses declare ``method: Literal["name"]`` (the discriminator) and their own fields; they
    implement :meth:`window` and may override the class-level defaults below.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    method: str

    #: Learning rate when the shared ``TrainConfig.lr`` is not set.
    default_lr: ClassVar[float] = 1e-3
    #: Training time on a 2-core CPU that reaches the plateau on a ~600-frame 128x128 movie.
    default_time_budget_s: ClassVar[float] = 300.0
    #: Patches per epoch (one validation per epoch) when ``TrainConfig.patches_per_epoch`` is not set.
    default_patches_per_epoch: ClassVar[int] = 128

    @abstractmethod
    def window(self) -> WindowSpec:
        """The served window: frames before, output frames per call, frames after, spatial multiple."""

    @property
    def batch(self) -> int:
        """Training patches per optimiser step."""
        return int(getattr(self, "batch_size", 1))


@dataclass(frozen=True)
class MethodInfo:
    """What the catalogue says about a method, beside its config class."""

    name: str
    family: str
    citation: str
    paper: str  # short form for tables: "Li et al., Nat Biotechnol 2023"
    description: str
    config_cls: type[MethodConfig]
    recipe: str  # "module:attr" of the torch-side recipe class, imported only when training or exporting
    provisional: bool = False


_METHODS: dict[str, MethodInfo] = {}

C = TypeVar("C", bound=type[MethodConfig])


def register_method(
    *, family: str, citation: str, paper: str, description: str, recipe: str, provisional: bool = False
) -> Callable[[C], C]:
    """Class decorator registering a :class:`MethodConfig` subclass under its ``method`` literal."""

    def wrapper(cls: C) -> C:
        default = cls.model_fields["method"].default  # type: ignore[call-overload]  # pydantic's class-level access
        if not isinstance(default, str) or not default:
            raise TypeError(f"{cls.__name__}.method needs a string default equal to its Literal name")
        if default in _METHODS:
            raise ValueError(f"a method is already registered under the name {default!r}")
        _METHODS[default] = MethodInfo(
            name=default,
            family=family,
            citation=citation,
            paper=paper,
            description=description,
            config_cls=cls,
            recipe=recipe,
            provisional=provisional,
        )
        return cls

    return wrapper


def list_methods() -> list[str]:
    """Names of every registered method, sorted."""
    return sorted(_METHODS)


def method_info(name: str) -> MethodInfo:
    """The catalogue entry of ``name``; ``ValueError`` listing the known methods otherwise."""
    try:
        return _METHODS[name]
    except KeyError:
        raise ValueError(f"unknown method {name!r}; known methods: {', '.join(list_methods())}") from None


def config_fields(name: str) -> dict[str, Any]:
    """The method's own fields (name -> pydantic FieldInfo), without the discriminator."""
    fields = dict(method_info(name).config_cls.model_fields)
    fields.pop("method", None)
    return fields
