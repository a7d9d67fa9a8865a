"""The package's test data: one window cut from a movie and the model's answer to it (numpy + ONNX Runtime).

The window is formed exactly as the serving path forms one (:mod:`livedenoise.clients.windowing`): frames
``start - before … start + out_frames - 1 + after`` mirrored at the movie's ends, then the running mean plane
for a model that reads one. The answer is the engine's own computation: normalise, run the graph,
de-normalise (:class:`~livedenoise.server.engine.base.PreparedEngine`), on a crop whose size the graph
takes as it is, so no padding is involved.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from livedenoise.clients.model_spec import ModelSpec
from livedenoise.clients.windowing import reflect_position
from livedenoise.models.bmz._bioimageio import BmzError

__all__ = ["WindowSample", "GraphSession", "sample_window", "valid_sizes"]

logger = logging.getLogger(__name__)

#: Largest test crop side, and the largest test input in bytes (a 61-frame window stays a few MiB).
MAX_SIDE = 256
MAX_INPUT_BYTES = 8 * 2**20
# The smallest side probed is the network's multiple; larger multiples are tried up to this side.
_PROBE_LIMIT = 256


@dataclass(frozen=True)
class WindowSample:
    """One window of raw intensities and the model's raw output for it (the test tensors).

    Attributes
    ----------
    window
        float32 ``[1, spec.window.input_planes, h, w]``: the movie's frames, as read, cast to float32.
    output
        float32 ``[1, spec.output_planes, h, w]``: the denoised frames in the movie's units.
    start
        Movie index of the first denoised frame (window plane ``before``).
    crop
        ``(y0, x0, h, w)`` of the crop in the movie's frames.
    min_side
        Smallest H and W the graph accepts (larger sizes: ``min_side + n * spatial_multiple``).
    """

    window: NDArray[np.float32]
    output: NDArray[np.float32]
    start: int
    crop: tuple[int, int, int, int]
    min_side: int


class GraphSession:
    """The exported graph in ONNX Runtime (CPU), run on normalised windows as the engine runs it."""

    def __init__(self, model: Path | bytes, spec: ModelSpec) -> None:
        import onnxruntime as ort

        source = str(model) if isinstance(model, Path) else model
        self.spec = spec
        self._session = ort.InferenceSession(source, providers=["CPUExecutionProvider"])

    def run_normalised(self, x: NDArray[np.float32]) -> NDArray[np.float32]:
        """The graph on an already normalised ``[B, P, H, W]`` array."""
        out: NDArray[np.float32] = self._session.run([self.spec.output_name], {self.spec.input_name: x})[0]
        return out

    def denoise(self, window: NDArray[np.float32]) -> NDArray[np.float32]:
        """Raw window(s) ``[B, P, H, W]`` → raw output ``[B, output_planes, H, W]`` (H, W valid for the graph)."""
        norm = self.spec.normalization
        return norm.invert(self.run_normalised(np.ascontiguousarray(norm.apply(window))))

    def runs_at(self, side: int) -> bool:
        """Whether the graph accepts ``side x side`` frames (a network may need more than its multiple)."""
        x = np.zeros((1, self.spec.window.input_planes, side, side), dtype=np.float32)
        try:
            out = self.run_normalised(x)
        except Exception as exc:  # ONNX Runtime raises its own Fail/RuntimeException types for a bad shape
            logger.debug("graph does not run at %dx%d: %s", side, side, exc)
            return False
        return tuple(out.shape) == (1, self.spec.output_planes, side, side)


def valid_sizes(session: GraphSession) -> tuple[int, int] | int:
    """The graph's fixed ``(H, W)`` (a model with a per-pixel prior) or its smallest side (multiples after it).

    Raises
    ------
    BmzError
        No side up to 256 pixels runs.
    """
    spec = session.spec
    if spec.frame_shape is not None:
        return spec.frame_shape
    m = spec.window.spatial_multiple
    for side in range(m, max(m, _PROBE_LIMIT) + 1, m):
        if session.runs_at(side):
            return side
    raise BmzError(f"the model's graph runs on no frame size from {m} to {_PROBE_LIMIT} pixels (multiples of {m})")


def _crop_side(available: int, smallest: int, step: int, limit: int) -> int:
    """The largest ``smallest + n * step`` within ``min(available, limit)`` (at least ``smallest``)."""
    return smallest + max(0, (min(available, limit) - smallest) // step) * step


def _window_at(movie: NDArray[Any], spec: ModelSpec, start: int) -> NDArray[np.float32]:
    """The raw window whose first served frame is ``start`` (see :meth:`SeriesWindow.next_block`)."""
    w = spec.window
    length = movie.shape[0]
    positions = [reflect_position(p, length) for p in range(start - w.before, start + w.out_frames + w.after)]
    planes = [np.asarray(movie[p], dtype=np.float32) for p in positions]
    if w.reference == "running_mean":
        # The mean of the series from its first frame up to the newest frame the window reads.
        planes.append(np.asarray(movie[: max(positions) + 1], dtype=np.float64).mean(axis=0).astype(np.float32))
    return np.stack(planes)[None]


def sample_window(session: GraphSession, movie: NDArray[Any]) -> WindowSample:
    """Cut the test window from the middle of ``movie`` ``[T, H, W]`` (a centred crop) and run the model on it.

    Raises
    ------
    BmzError
        The movie is not ``[T, H, W]``, or its frames are smaller than the graph's smallest input (or differ
        from the fixed frame size of a model with a per-pixel prior).
    """
    spec = session.spec
    if movie.ndim != 3 or movie.shape[0] < 1:
        raise BmzError(f"the movie must be [T, H, W] with T >= 1, got shape {tuple(movie.shape)}")
    _, height, width = movie.shape
    sizes = valid_sizes(session)
    if isinstance(sizes, tuple):
        if (height, width) != sizes:
            raise BmzError(
                f"the model serves only {sizes[0]}x{sizes[1]} frames (a per-pixel prior from its training movie); "
                f"the movie's frames are {height}x{width}: give the training movie or one of the same frame size"
            )
        h, w = sizes
        smallest = min(sizes)
    else:
        smallest = sizes
        if min(height, width) < smallest:
            raise BmzError(
                f"the movie's frames ({height}x{width}) are smaller than the model's smallest input "
                f"({smallest}x{smallest}); give a movie with larger frames"
            )
        step = spec.window.spatial_multiple
        limit = MAX_SIDE
        while True:
            h = _crop_side(height, smallest, step, limit)
            w = _crop_side(width, smallest, step, limit)
            if spec.window.input_planes * h * w * 4 <= MAX_INPUT_BYTES or limit <= smallest:
                break
            limit -= step
    y0, x0 = (height - h) // 2, (width - w) // 2
    cropped = movie[:, y0 : y0 + h, x0 : x0 + w]
    k = spec.window.out_frames
    start = (movie.shape[0] // 2) // k * k  # a block boundary, as the series schedules blocks
    window = _window_at(cropped, spec, start)
    output = session.denoise(window).astype(np.float32, copy=False)
    logger.debug("test window: frames from %d, crop %dx%d at (%d, %d)", start, h, w, y0, x0)
    return WindowSample(window=window, output=output, start=start, crop=(y0, x0, h, w), min_side=smallest)
