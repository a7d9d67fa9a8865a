"""Default served windows per method, torch-free so that :class:`TrainConfig` validates without torch.

Each method registers ``config -> WindowSpec`` here under its recipe name; the recipe uses the same
function (``tests/unit/models/test_config.py`` checks the two registries agree).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from livedenoise.clients.model_spec import WindowSpec

if TYPE_CHECKING:
    from livedenoise.models.config import TrainConfig

__all__ = ["register_window", "default_window", "known_methods", "stack_window"]

WindowFactory = Callable[["TrainConfig"], WindowSpec]
F = TypeVar("F", bound=WindowFactory)

_WINDOWS: dict[str, WindowFactory] = {}


def register_window(method: str) -> Callable[[F], F]:
    """Decorator registering the default window factory of ``method``; duplicates raise ``ValueError``."""

    def wrapper(fn: F) -> F:
        if method in _WINDOWS:
            raise ValueError(f"a window is already registered for method {method!r}")
        _WINDOWS[method] = fn
        return fn

    return wrapper


def known_methods() -> list[str]:
    """Methods with a registered window (the trainable methods), sorted."""
    return sorted(_WINDOWS)


def default_window(config: TrainConfig) -> WindowSpec:
    """The served window for ``config.method``; ``ValueError`` naming the known methods or the fix."""
    try:
        factory = _WINDOWS[config.method]
    except KeyError:
        raise ValueError(f"unknown method {config.method!r}; known methods: {', '.join(known_methods())}") from None
    return factory(config)


@register_window("deepcad_rt")
def stack_window(config: TrainConfig) -> WindowSpec:
    """3-D stack window: by default ``L = patch_t`` frames with the middle half served (quarters of context).

    The 3-D U-Net pools time too, so ``L = before + out_frames + after`` must be a multiple of
    ``config.size_multiple``; the overrides ``window_before/after/out_frames`` replace the defaults.
    """
    q = config.patch_t // 4
    before = q if config.window_before is None else config.window_before
    after = q if config.window_after is None else config.window_after
    out_frames = config.patch_t // 2 if config.window_out_frames is None else config.window_out_frames
    m = config.size_multiple
    length = before + out_frames + after
    if length % m:
        raise ValueError(
            f"window length before+out_frames+after = {before}+{out_frames}+{after} = {length} is not a multiple "
            f"of {m}, which the 3-D U-Net with levels={config.levels} needs along time; "
            f"change window_before/window_after/window_out_frames so the sum is a multiple of {m}"
        )
    return WindowSpec(before=before, after=after, out_frames=out_frames, spatial_multiple=m)
