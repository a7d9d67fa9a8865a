"""Network registry in the style of torchvision's ``models/_api.py``: builders registered by name."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from torch import nn

__all__ = ["register_network", "get_network", "list_networks", "get_network_builder"]

_NETWORKS: dict[str, Callable[..., nn.Module]] = {}

F = TypeVar("F", bound=Callable[..., nn.Module])


def register_network(name: str) -> Callable[[F], F]:
    """Decorator registering a network builder under ``name``; a duplicate name raises ``ValueError``."""

    def wrapper(fn: F) -> F:
        if name in _NETWORKS:
            raise ValueError(f"a network is already registered under the name {name!r}")
        _NETWORKS[name] = fn
        return fn

    return wrapper


def list_networks() -> list[str]:
    """Names of all registered networks, sorted."""
    _ensure_builtins()
    return sorted(_NETWORKS)


def get_network_builder(name: str) -> Callable[..., nn.Module]:
    """The builder registered as ``name``; ``ValueError`` listing the known names otherwise."""
    _ensure_builtins()
    try:
        return _NETWORKS[name]
    except KeyError:
        raise ValueError(f"unknown network {name!r}; known networks: {', '.join(sorted(_NETWORKS))}") from None


def get_network(name: str, **config: Any) -> nn.Module:
    """Build the network registered as ``name`` with keyword ``config``."""
    return get_network_builder(name)(**config)


def _ensure_builtins() -> None:
    # The built-in builders register themselves on import; importing here avoids an import cycle.
    from livedenoise.models.networks import builtin  # noqa: F401
