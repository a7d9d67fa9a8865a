"""The torch-free method catalogue: every registered method's config class, window and paper.

``AnyMethodConfig`` is the union of all method configs, discriminated on ``method``; parse a dict with
:func:`parse_method_config`. Importing this package never imports torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Union

from pydantic import Field, TypeAdapter

from livedenoise.models.catalogue.base import (
    MethodConfig,
    MethodInfo,
    config_fields,
    list_methods,
    method_info,
    nearest_multiples,
    register_method,
)
from livedenoise.models.catalogue.blind_spot import DeepInterpolationConfig, SupportConfig
from livedenoise.models.catalogue.deepsemi import DeepSeMiConfig
from livedenoise.models.catalogue.masked_frame import DeepVIDConfig, DeepVIDv2Config, TeDConfig
from livedenoise.models.catalogue.neighbour_frame import DeepCADConfig, DeepCADRTConfig
from livedenoise.models.catalogue.spatial_sampling import FASTConfig, SN2NConfig, SRDTransConfig

__all__ = [
    "AnyMethodConfig",
    "MethodConfig",
    "MethodInfo",
    "DeepCADConfig",
    "DeepCADRTConfig",
    "DeepInterpolationConfig",
    "DeepSeMiConfig",
    "DeepVIDConfig",
    "DeepVIDv2Config",
    "FASTConfig",
    "SN2NConfig",
    "SRDTransConfig",
    "SupportConfig",
    "TeDConfig",
    "config_fields",
    "list_methods",
    "method_info",
    "nearest_multiples",
    "parse_method_config",
    "register_method",
]

if TYPE_CHECKING:  # statically, any registered config
    AnyMethodConfig = MethodConfig
else:  # built from the registry, so a method added above is part of the union without a second list
    AnyMethodConfig = Annotated[
        Union[tuple(method_info(name).config_cls for name in list_methods())],  # noqa: UP007
        Field(discriminator="method"),
    ]

_ADAPTER: TypeAdapter[Any] = TypeAdapter(AnyMethodConfig)


def parse_method_config(obj: dict[str, Any]) -> MethodConfig:
    """Validate ``{"method": name, **fields}`` into that method's config (pydantic ``ValidationError`` on bad
    fields; ``ValueError`` listing the known methods for an unknown name)."""
    method_info(str(obj.get("method")))  # the clearer message for an unknown method
    config: MethodConfig = _ADAPTER.validate_python(obj)
    return config
