"""Sliding temporal windows over one series of frames: pure numpy, no sockets, no threads.

Shared by the serving side (the ingest process, the offline engine) and the training side (validation
runs the served graph through the same windows), so it lives with the other wire-level contracts.

Positions
    Frames are numbered by *arrival position* (0, 1, 2, … in the order they were appended), not by
    their wire ``index``. A gap in ``index`` is a frame the camera dropped: it is not interpolated, and
    the neighbours of the gap are simply adjacent in the window.

Blocks
    A model with ``WindowSpec(before, after, out_frames=k)`` produces ``k`` consecutive frames per call.
    Output blocks follow each other: a block starting at position ``s`` covers ``[s, s + k)`` and needs
    the positions ``[s - before, s + k - 1 + after]``. Positions outside ``[0, n)`` are mirrored without
    repeating the edge frame (numpy ``np.pad(mode="reflect")``; for a 1-frame series every position
    maps to 0). With one spec from the start, block ``j`` starts at ``j * k``.

Readiness
    While the series is open a block is formed once every frame it reads has arrived: the last needed
    position ``s + k - 1 + after`` and, near the start, the mirror image ``before - s`` of the first
    needed position (mirroring at the start does not depend on the final length once that frame exists).
    After :meth:`SeriesWindow.end` every remaining block is ready; the last one may be partial
    (``count < k``) and positions past the end are mirrored. Hence the output of a streamed series equals
    the output of the whole movie processed offline (:func:`denoise_series`, which the server's
    ``denoise_movie`` and the trainer's validation both use).

Running mean
    A spec with ``reference="running_mean"`` gets one more plane after the window's frames: the mean of the
    series' frames from position 0 up to the newest position the window reads. It depends only on the series,
    not on when the block is formed, so streamed still equals offline. The sum behind it is kept from the
    first block formed with such a spec (a hot swap to one mid-series starts it at the oldest frame held).

Lazy spec
    A block takes the spec passed to :meth:`SeriesWindow.next_block` when it is formed, so the engine (and
    its window spec) may change between two blocks of the same series (hot swap).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from livedenoise.clients.model_spec import WindowSpec

__all__ = ["reflect_position", "pad_to_multiple", "Block", "SeriesWindow", "denoise_series", "stack_windows"]

logger = logging.getLogger(__name__)

DEFAULT_HISTORY_MARGIN = 16


def reflect_position(position: int, length: int) -> int:
    """Map any integer position into ``[0, length)`` like ``np.pad(mode="reflect")`` (edge not repeated)."""
    if length <= 0:
        raise ValueError(f"cannot reflect into an empty series (length={length})")
    if length == 1:
        return 0
    period = 2 * (length - 1)
    p = abs(position) % period
    return p if p < length else period - p


@dataclass(frozen=True)
class Block:
    """One engine call's worth of work for one series.

    Attributes
    ----------
    start
        First output position.
    count
        Output positions this block answers (``<= spec.out_frames``; smaller only for the last block
        of an ended series).
    spec
        The window spec the block was formed with.
    positions
        Source position of each window slot (after reflection), ``len == spec.window_length``.
    planes
        The ``spec.input_planes`` frames of the window as received (any pixel dtype; the series' own arrays, never
        written), then the reference plane when the spec has one. They are gathered into float32 only where the
        engine runs (:func:`stack_windows`), outside whatever lock formed the block.
    """

    start: int
    count: int
    spec: WindowSpec
    positions: tuple[int, ...]
    planes: tuple[NDArray[Any], ...]

    @property
    def stop(self) -> int:
        return self.start + self.count

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(input_planes, H, W)`` of the window."""
        h, w = self.planes[0].shape
        return (len(self.planes), int(h), int(w))

    @property
    def window(self) -> NDArray[np.float32]:
        """float32 ``[spec.input_planes, H, W]`` raw intensities (a new array)."""
        window: NDArray[np.float32] = stack_windows([self])[0]
        return window


def stack_windows(blocks: Sequence[Block]) -> NDArray[np.float32]:
    """The windows of ``blocks`` (all of one shape) as one float32 ``[B, input_planes, H, W]`` array: one pass that
    casts every plane straight into its place."""
    out = np.empty((len(blocks), *blocks[0].shape), dtype=np.float32)
    for i, block in enumerate(blocks):
        for j, plane in enumerate(block.planes):
            out[i, j] = plane
    return out


class SeriesWindow:
    """Frames of one series and the block schedule over them.

    Parameters
    ----------
    history_margin
        Frames kept behind the next output in addition to what the last spec needed, so that a hot swap
        to a model with a longer ``before`` still finds its context.
    """

    def __init__(self, history_margin: int = DEFAULT_HISTORY_MARGIN) -> None:
        self._frames: dict[int, NDArray[Any]] = {}
        self._base = 0  # oldest position still held
        self._arrived = 0
        self._next_out = 0
        self._ended = False
        self._margin = history_margin
        self._warned_trimmed = False
        self._held_bytes = 0
        self._sum: NDArray[np.float64] | None = None  # running sum for reference="running_mean"
        self._sum_from = 0  # first position in the sum

    # -- state -------------------------------------------------------------------------------------------
    @property
    def arrived(self) -> int:
        """Number of frames appended so far (the next arrival position)."""
        return self._arrived

    @property
    def next_out(self) -> int:
        """First position not yet handed out in a block or dropped."""
        return self._next_out

    @property
    def waiting(self) -> int:
        """Frames arrived but not yet handed out."""
        return self._arrived - self._next_out

    @property
    def ended(self) -> bool:
        return self._ended

    @property
    def done(self) -> bool:
        """Ended and every position handed out."""
        return self._ended and self._next_out >= self._arrived

    @property
    def held(self) -> int:
        """Frames currently kept in memory."""
        return len(self._frames)

    @property
    def held_bytes(self) -> int:
        """Bytes of the frames currently kept."""
        return self._held_bytes

    # -- input -------------------------------------------------------------------------------------------
    def append(self, frame: NDArray[Any]) -> int:
        """Add the next frame (2-D); returns its position. The array is kept, not copied."""
        if self._ended:
            raise ValueError("cannot append to an ended series")
        if frame.ndim != 2:
            raise ValueError(f"a frame must be 2-D (y, x), got shape {frame.shape}")
        position = self._arrived
        self._frames[position] = frame
        self._held_bytes += frame.nbytes
        if self._sum is not None:
            self._sum += frame
        self._arrived += 1
        return position

    def end(self) -> None:
        """No more frames: every remaining position becomes schedulable (mirrored at the end)."""
        self._ended = True

    # -- scheduling --------------------------------------------------------------------------------------
    def ready(self, spec: WindowSpec, reads_after: int | None = None) -> bool:
        """Whether the block at :attr:`next_out` can be formed now with ``spec``, for an estimate that reads
        ``reads_after`` future frames (default ``spec.after``)."""
        s = self._next_out
        if s >= self._arrived:
            return False
        if self._ended:
            return True
        after = spec.after if reads_after is None else min(reads_after, spec.after)
        last = s + spec.out_frames - 1 + after
        mirrored_start = spec.before - s  # mirror image of s - before when it is negative
        return max(last, mirrored_start) < self._arrived

    def next_block(self, spec: WindowSpec, reads_after: int | None = None) -> Block | None:
        """Form the block at :attr:`next_out` with ``spec`` if ready, advance, and trim history.

        With ``reads_after`` < ``spec.after`` (an estimate that reads fewer future frames than the window
        holds) the block is formed once that estimate's frames have arrived; the window's later planes, which
        the estimate does not read, repeat the newest frame it reads until the series has ended.
        """
        if not self.ready(spec, reads_after):
            return None
        s = self._next_out
        # Once ended, the final length is known and reflection past the end uses it; before that,
        # readiness guarantees every needed position (or its start mirror) has arrived.
        length = self._arrived
        count = min(spec.out_frames, length - s)
        stop = s + spec.out_frames + spec.after
        if not self._ended and reads_after is not None and reads_after < spec.after:
            newest = s + spec.out_frames + reads_after - 1
            positions = tuple(reflect_position(min(p, newest), length) for p in range(s - spec.before, stop))
        else:
            positions = tuple(reflect_position(p, length) for p in range(s - spec.before, stop))
        planes = [self._frame(p) for p in positions]
        if spec.reference == "running_mean":
            planes.append(self._running_mean(max(positions)))
        self._next_out = s + count
        self._trim(spec)
        return Block(start=s, count=count, spec=spec, positions=positions, planes=tuple(planes))

    def drop_oldest(self, spec: WindowSpec, budget: int, reads_after: int | None = None) -> list[range]:
        """Live mode: drop whole blocks at the head while more than ``budget`` frames wait.

        The budget is raised to ``after + out_frames`` when lower (``after``: the future frames the series'
        estimate reads): a block cannot be formed with fewer frames waiting, so a smaller budget would drop
        everything. Only blocks whose own positions have
        all arrived are dropped. Returns the dropped position ranges, oldest first; their frames stay
        available as context for later blocks.
        """
        after = spec.after if reads_after is None else min(reads_after, spec.after)
        effective = max(budget, after + spec.out_frames)
        dropped: list[range] = []
        while self.waiting > effective and self._next_out + spec.out_frames <= self._arrived:
            s = self._next_out
            dropped.append(range(s, s + spec.out_frames))
            self._next_out = s + spec.out_frames
        if dropped:
            self._trim(spec)
        return dropped

    def skip_all(self) -> range:
        """Hand out every arrived position without forming blocks (e.g. no model loaded); only the history
        margin is kept, as context for a model loaded later."""
        skipped = range(self._next_out, self._arrived)
        self._next_out = self._arrived
        self._trim_before(self._next_out - self._margin)
        return skipped

    # -- internals ---------------------------------------------------------------------------------------
    def _running_mean(self, newest: int) -> NDArray[np.float32]:
        """Mean of the frames at positions ``[sum start, newest]`` (every later arrived frame is still held)."""
        if self._sum is None:
            held = range(self._base, self._arrived)
            self._sum = np.sum([self._frames[p] for p in held], axis=0, dtype=np.float64)
            self._sum_from = self._base
        total = self._sum.copy()
        for p in range(newest + 1, self._arrived):
            total -= self._frames[p]
        mean: NDArray[np.float32] = (total / (newest + 1 - self._sum_from)).astype(np.float32)
        return mean

    def _frame(self, position: int) -> NDArray[Any]:
        frame = self._frames.get(position)
        if frame is None:
            # Only reachable after a hot swap to a spec needing more history than was kept: use the
            # oldest frame held (edge clamp) rather than fail the block.
            if not self._warned_trimmed:
                logger.warning("position %d was trimmed; using the oldest frame held (%d)", position, self._base)
                self._warned_trimmed = True
            frame = self._frames[max(self._base, min(position, self._arrived - 1))]
        return frame

    def _trim(self, spec: WindowSpec) -> None:
        # Reflection at the end can reach back to next_out - (after + out_frames - 1), so keep the larger
        # of the two reaches plus the margin.
        self._trim_before(self._next_out - max(spec.before, spec.after + spec.out_frames - 1) - self._margin)

    def _trim_before(self, keep_from: int) -> None:
        while self._base < keep_from and self._base < self._arrived:
            frame = self._frames.pop(self._base, None)
            if frame is not None:
                self._held_bytes -= frame.nbytes
            self._base += 1


def pad_to_multiple(x: NDArray[np.float32], multiple: int) -> NDArray[np.float32]:
    """Reflect-pad the last two axes (bottom/right) up to the next multiple of ``multiple``.

    Works for any size, odd ones included; a 1-pixel axis is repeated (reflection needs two pixels).
    """
    h, w = x.shape[-2:]
    pad_h, pad_w = -h % multiple, -w % multiple
    if pad_h == 0 and pad_w == 0:
        return x
    widths = [(0, 0)] * (x.ndim - 2) + [(0, pad_h), (0, pad_w)]
    padded: NDArray[np.float32] = np.pad(x, widths, mode="reflect" if min(h, w) > 1 else "symmetric")
    return padded


def denoise_series(
    infer: Callable[[NDArray[np.float32]], NDArray[np.float32]],
    window: WindowSpec,
    movie: NDArray[Any],
    batch_size: int = 8,
    progress: Callable[[int, int], None] | None = None,
    *,
    planes: slice | None = None,
) -> NDArray[np.float32]:
    """Denoise ``movie`` ``[T, H, W]`` as one ended series: float32 ``[T, H, W]``.

    Parameters
    ----------
    infer
        Raw windows float32 ``[B, window.window_length, H, W]`` -> raw frames ``[B, window.out_frames, H, W]``
        (or more planes, of which ``planes`` selects the estimate's).
    window
        The model's window spec.
    movie
        ``[T, H, W]`` frames (any pixel dtype), ``T >= 1``.
    batch_size
        Windows per ``infer`` call.
    progress
        Called as ``progress(frames_done, T)`` after each call.
    planes
        The output planes of one estimate (see :meth:`ModelSpec.estimate`); default: the first ``out_frames``.
    """
    if movie.ndim != 3 or movie.shape[0] < 1:
        raise ValueError(f"movie must be [T, H, W] with T >= 1, got shape {movie.shape}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    total = movie.shape[0]
    series = SeriesWindow()
    for frame in movie:
        series.append(frame)
    series.end()
    out = np.empty(movie.shape, dtype=np.float32)
    while not series.done:
        blocks: list[Block] = []
        while len(blocks) < batch_size:
            block = series.next_block(window)
            if block is None:
                break
            blocks.append(block)
        result = infer(stack_windows(blocks))[:, planes if planes is not None else slice(0, window.out_frames)]
        for block, frames in zip(blocks, result):
            out[block.start : block.stop] = frames[: block.count]
        if progress is not None:
            progress(blocks[-1].stop, total)
    return out
