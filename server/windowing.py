"""Sliding temporal windows over one series of frames: pure numpy, no sockets, no threads.

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
    the output of the whole movie processed offline (:func:`livedenoise.server.engine.offline.denoise_movie`).

Lazy spec
    A block takes the spec passed to :meth:`SeriesWindow.next_block` when it is formed, so the engine (and
    its window spec) may change between two blocks of the same series (hot swap).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from livedenoise.clients.model_spec import WindowSpec

__all__ = ["reflect_position", "Block", "SeriesWindow"]

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
    window
        float32 ``[window_length, H, W]`` raw intensities.
    """

    start: int
    count: int
    spec: WindowSpec
    positions: tuple[int, ...]
    window: NDArray[np.float32]

    @property
    def stop(self) -> int:
        return self.start + self.count


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

    # -- input -------------------------------------------------------------------------------------------
    def append(self, frame: NDArray[Any]) -> int:
        """Add the next frame (2-D); returns its position. The array is kept, not copied."""
        if self._ended:
            raise ValueError("cannot append to an ended series")
        if frame.ndim != 2:
            raise ValueError(f"a frame must be 2-D (y, x), got shape {frame.shape}")
        position = self._arrived
        self._frames[position] = frame
        self._arrived += 1
        return position

    def end(self) -> None:
        """No more frames: every remaining position becomes schedulable (mirrored at the end)."""
        self._ended = True

    # -- scheduling --------------------------------------------------------------------------------------
    def ready(self, spec: WindowSpec) -> bool:
        """Whether the block at :attr:`next_out` can be formed now with ``spec``."""
        s = self._next_out
        if s >= self._arrived:
            return False
        if self._ended:
            return True
        last = s + spec.out_frames - 1 + spec.after
        mirrored_start = spec.before - s  # mirror image of s - before when it is negative
        return max(last, mirrored_start) < self._arrived

    def next_block(self, spec: WindowSpec) -> Block | None:
        """Form the block at :attr:`next_out` with ``spec`` if ready, advance, and trim history."""
        if not self.ready(spec):
            return None
        s = self._next_out
        # Once ended, the final length is known and reflection past the end uses it; before that,
        # readiness guarantees every needed position (or its start mirror) has arrived.
        length = self._arrived
        count = min(spec.out_frames, length - s)
        positions = tuple(
            reflect_position(p, length) for p in range(s - spec.before, s + spec.out_frames + spec.after)
        )
        window = np.stack([self._frame(p) for p in positions]).astype(np.float32, copy=False)
        self._next_out = s + count
        self._trim(spec)
        return Block(start=s, count=count, spec=spec, positions=positions, window=window)

    def drop_oldest(self, spec: WindowSpec, budget: int) -> list[range]:
        """Live mode: drop whole blocks at the head while more than ``budget`` frames wait.

        The budget is raised to ``after + out_frames`` when lower: a block cannot be formed with fewer
        frames waiting, so a smaller budget would drop everything. Only blocks whose own positions have
        all arrived are dropped. Returns the dropped position ranges, oldest first; their frames stay
        available as context for later blocks.
        """
        effective = max(budget, spec.after + spec.out_frames)
        dropped: list[range] = []
        while self.waiting > effective and self._next_out + spec.out_frames <= self._arrived:
            s = self._next_out
            dropped.append(range(s, s + spec.out_frames))
            self._next_out = s + spec.out_frames
        if dropped:
            self._trim(spec)
        return dropped

    def skip_all(self) -> range:
        """Hand out every arrived position without forming blocks (e.g. no model loaded)."""
        skipped = range(self._next_out, self._arrived)
        self._next_out = self._arrived
        return skipped

    # -- internals ---------------------------------------------------------------------------------------
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
        keep_from = self._next_out - max(spec.before, spec.after + spec.out_frames - 1) - self._margin
        while self._base < keep_from and self._base < self._arrived:
            self._frames.pop(self._base, None)
            self._base += 1
