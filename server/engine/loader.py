"""Choose and open an engine backend by provider; optional GPU backends are imported only when chosen."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path

from livedenoise.server.engine.base import Engine
from livedenoise.server.errors import EngineError
from livedenoise.server.settings import Precision, Provider

__all__ = ["BACKENDS", "load_engine"]

# provider -> "module:function" opening an engine (path, provider, model_id, threads, cache_dir, precision,
# max_batch, max_side).
# Import strings, so a CPU-only install never imports a GPU runtime (or OpenVINO) it lacks.
BACKENDS: dict[Provider, str] = {
    Provider.CPU: "livedenoise.server.engine.onnx_runtime:open_engine",
    Provider.CUDA: "livedenoise.server.engine.onnx_runtime:open_engine",
    Provider.TENSORRT: "livedenoise.server.engine.onnx_runtime:open_engine",
    Provider.OPENVINO: "livedenoise.server.engine.openvino_runtime:open_engine",
}

#: The pip extra that brings each optional backend's runtime, for the error that names it.
EXTRAS = {Provider.OPENVINO: "openvino", Provider.CUDA: "gpu", Provider.TENSORRT: "gpu"}


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
    precision: Precision | str = Precision.AUTO,
    max_batch: int = 8,
    max_side: int = 2048,
) -> Engine:
    """Open ``path`` with the backend for ``provider``.

    Parameters
    ----------
    path
        Exported livedenoise ONNX file.
    provider
        ``cpu`` | ``cuda`` | ``tensorrt`` | ``openvino`` (see :class:`~livedenoise.server.settings.Provider`).
    model_id
        Id carried by replies (default: the file stem).
    threads
        Intra-op threads (0 = backend default).
    cache_dir
        Where a backend may cache compiled engines (TensorRT).
    precision
        ``auto`` (the provider's fast precision) or ``fp32`` (see :class:`~livedenoise.server.settings.Precision`).
    max_batch, max_side
        The largest batch and padded frame side an ahead-of-time engine is built for (TensorRT's shape profile).

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
    try:
        arithmetic = Precision(precision)
    except ValueError:
        raise EngineError(f"unknown precision {precision!r}; choose one of {[p.value for p in Precision]}") from None
    try:
        opener = _import_opener(BACKENDS[chosen])
    except EngineError as exc:
        extra = EXTRAS.get(chosen)
        hint = f"; install the `{extra}` extra (pip install 'livedenoise[{extra}]')" if extra else ""
        raise EngineError(f"provider {chosen.value!r} is not available: {exc.message}{hint}") from None
    return opener(Path(path), chosen, model_id, threads, cache_dir, arithmetic, max_batch, max_side)
