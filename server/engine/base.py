"""The `Engine` protocol and the pre/post-processing every backend shares.

A backend is a :class:`GraphRunner`: it only runs the exported graph on an already prepared array
(normalised, padded to the spatial multiple). :class:`PreparedEngine` wraps a runner with the shared
steps, so every backend sees exactly the same input for the same window:

    raw float32 [B, P, H, W] (P = window.input_planes) → normalise (spec.normalization) → reflect-pad H/W up to
    spec.window.spatial_multiple → runner → crop to H×W → de-normalise → raw float32 [B, k, H, W]
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from livedenoise.clients.model_spec import ModelSpec
from livedenoise.clients.windowing import pad_to_multiple
from livedenoise.server.errors import EngineError

__all__ = ["Engine", "GraphRunner", "PreparedEngine", "pad_to_multiple", "MODEL_MISMATCH", "INFERENCE_FAILED"]

# EngineError codes the ingest worker turns into frames/1 error codes.
MODEL_MISMATCH = "model_mismatch"
INFERENCE_FAILED = "inference_failed"


@runtime_checkable
class Engine(Protocol):
    """What the ingest worker and :func:`~livedenoise.server.engine.offline.denoise_movie` call."""

    spec: ModelSpec
    model_id: str
    provider: str

    def infer(self, windows: NDArray[np.float32]) -> NDArray[np.float32]:
        """Denoise windows: raw float32 ``[B, input_planes, H, W]`` → raw float32 ``[B, spec.output_planes, H, W]``
        (``out_frames`` planes per estimate of the model)."""
        ...

    def close(self) -> None: ...


class GraphRunner(Protocol):
    """A backend: runs the graph on a prepared (normalised, padded) float32 ``[B, L, Hp, Wp]`` array."""

    provider: str

    def run(self, x: NDArray[np.float32]) -> NDArray[np.float32]: ...

    def close(self) -> None: ...


class PreparedEngine:
    """:class:`Engine` built from a spec and a :class:`GraphRunner` (shared pre/post-processing).

    Parameters
    ----------
    runner
        The backend.
    spec
        The model's embedded spec.
    model_id
        Id replies carry as ``model``.
    """

    def __init__(self, runner: GraphRunner, spec: ModelSpec, model_id: str) -> None:
        self.runner = runner
        self.spec = spec
        self.model_id = model_id
        self.provider = runner.provider
        self.precision: str = getattr(runner, "precision", "fp32")

    def infer(self, windows: NDArray[np.float32]) -> NDArray[np.float32]:
        window = self.spec.window
        if windows.ndim != 4 or windows.shape[1] != window.input_planes:
            raise EngineError(
                f"model {self.model_id!r} needs windows [batch, {window.input_planes}, H, W], got {list(windows.shape)}",
                code=MODEL_MISMATCH,
            )
        b, _, h, w = windows.shape
        if self.spec.frame_shape is not None and (h, w) != self.spec.frame_shape:
            fh, fw = self.spec.frame_shape
            raise EngineError(
                f"model {self.model_id!r} serves only {fh}x{fw} frames (its prior was fixed from its training movie), "
                f"got {h}x{w}; serve a model trained on this frame size or one with a running prior",
                code=MODEL_MISMATCH,
            )
        x = pad_to_multiple(self.spec.normalization.apply(windows), window.spatial_multiple)
        y = self.runner.run(np.ascontiguousarray(x, dtype=np.float32))
        expected = (b, self.spec.output_planes, x.shape[2], x.shape[3])
        if tuple(y.shape) != expected:
            raise EngineError(
                f"model {self.model_id!r} returned shape {list(y.shape)}, expected {list(expected)}",
                code=INFERENCE_FAILED,
            )
        return self.spec.normalization.invert(y[:, :, :h, :w])

    def close(self) -> None:
        self.runner.close()

    def __repr__(self) -> str:
        return f"PreparedEngine(model_id={self.model_id!r}, method={self.spec.method!r}, provider={self.provider!r})"
