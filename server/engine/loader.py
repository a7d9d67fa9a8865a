"""Choose and open an engine backend by provider; optional GPU backends are imported only when chosen."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path

from livedenoise.server.engine.base import Engine
from livedenoise.server.errors import EngineError
from livedenoise.server.settings import Provider

__all__ = ["BACKENDS", "load_engine"]

# provider -> "module:function" opening an engine (path, provider, model_id, threads, cache_dir).
# Import strings, so a CPU-only install never imports a GPU runtime it lacks.
BACKENDS: dict[Provider, str] = {
    Provider.CPU: "livedenoise.server.engine.onnx_runtime:open_engine",
    Provider.CUDA: "livedenoise.server.engine.onnx_runtime:open_engine",
    Provider.TENSORRT: "livedenoise.server.engine.onnx_runtime:open_engine",
}


def _import_opener(target: str) -> Callable[..., Engine]:
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise EngineError(f"engine backend {target!r} cannot be imported: {exc}") from None
    opener: Callable[..., Engine] = getattr(module, attr)
    return opener


def load_engine(
    path: Path | str,
    provider: Provider | str = Provider.CPU,
    model_id: str | None = None,
    threads: int = 0,
    *,
    cache_dir: Path | None = None,
) -> Engine:
    """Open ``path`` with the backend for ``provider``.

    Parameters
    ----------
    path
        Exported livedenoise ONNX file.
    provider
        ``cpu`` | ``cuda`` | ``tensorrt`` (see :class:`~livedenoise.server.settings.Provider`).
    model_id
        Id carried by replies (default: the file stem).
    threads
        Intra-op threads (0 = backend default).
    cache_dir
        Where a backend may cache compiled engines (TensorRT).

    Raises
    ------
    InvalidModel
        The file is not a usable livedenoise model.
    EngineError
        The provider is unknown or unavailable.
    """
    try:
        chosen = Provider(provider)
    except ValueError:
        raise EngineError(f"unknown provider {provider!r}; choose one of {[p.value for p in Provider]}") from None
    opener = _import_opener(BACKENDS[chosen])
    return opener(Path(path), chosen, model_id, threads, cache_dir)
