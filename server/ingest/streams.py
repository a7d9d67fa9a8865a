"""Per-stream and per-series state of the ingest process, and validation of messages against it.

A *stream* is a camera (``stream`` id); a *series* is one acquisition on it (``series`` id), opened by
``start`` (which locks shape, dtype and mode) and closed by ``end``. A ``start`` while the previous
series still has frames waiting closes that series as if it had ended: its frames are still denoised
and answered, then it gets its ``end`` reply, then the new series is served. Replies go to the ROUTER
identity that sent the series' ``start``.

Validation here runs after :func:`~livedenoise.clients.protocol.decode_header` and
:func:`~livedenoise.clients.protocol.check_payload`. A refused message raises :class:`FrameRejected`
(``code`` is a :class:`~livedenoise.clients.protocol.ErrorCode` value) and changes nothing.

All state is guarded by :attr:`StreamTable.cond`; the router appends under it and the worker schedules
under it.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

from numpy.typing import NDArray

from livedenoise.clients.protocol import EndReason, ErrorCode, Header, StreamMode
from livedenoise.clients.status import StreamStatus, Totals
from livedenoise.clients.windowing import SeriesWindow
from livedenoise.server.errors import FrameRejected
from livedenoise.server.metrics import Counters, LatencyBuckets, LatencyRing, RateMeter
from livedenoise.server.settings import ServerSettings

__all__ = ["PendingFrame", "SeriesState", "StreamState", "StreamTable"]

STREAM_COUNTERS = ("frames_in", "frames_out", "skipped", "errors", "rejected", "series_started")
# Idle streams (no open or draining series) whose counters are kept for /status.
MAX_IDLE_STREAMS = 64


def _reject(code: ErrorCode, message: str) -> FrameRejected:
    return FrameRejected(code, message)


@dataclass(frozen=True)
class PendingFrame:
    """An accepted frame waiting for its reply (``received`` is ``time.monotonic()``)."""

    index: int
    t_ns: int | None
    meta: dict[str, Any]
    received: float


@dataclass
class SeriesState:
    """One series: its lock-in, its window and the frames not yet answered (in arrival order)."""

    stream: str
    series: str
    identity: bytes  # the connection that sent `start`: replies go there, frames must come from it
    owner: str | None  # the peer's CURVE public key (None without authentication)
    mode: StreamMode
    shape: tuple[int, int]
    dtype: str
    window: SeriesWindow = field(default_factory=SeriesWindow)
    pending: deque[PendingFrame] = field(default_factory=deque)
    last_index: int | None = None
    end_meta: dict[str, Any] = field(default_factory=dict)
    end_reason: EndReason | None = None  # set when the server closed the series itself
    estimate: str | None = None  # start.meta.estimate: which of the model's estimates (None: its default)
    estimate_fallback: bool = False  # a swapped-in model lacked `estimate` (logged once)

    def close(self, reason: EndReason) -> None:
        """End the series on the server's initiative (its frames are still answered)."""
        if not self.window.ended:
            self.end_reason = reason
            self.window.end()

    @property
    def ended(self) -> bool:
        return self.window.ended


class StreamState:
    """A camera stream: its series (open one last, older ones still draining) and its metrics."""

    def __init__(self, stream: str) -> None:
        self.stream = stream
        self.series: deque[SeriesState] = deque()
        self.latest: SeriesState | None = None  # the last series started (kept after it finishes, for status)
        self.inflight = 0  # frames in a block the worker is running
        self.counters = Counters(*STREAM_COUNTERS)
        self.fps_in = RateMeter()
        self.fps_out = RateMeter()
        self.latency = LatencyRing()
        self.latency_buckets = LatencyBuckets()
        self.last_seen = time.monotonic()

    @property
    def open_series(self) -> SeriesState | None:
        """The series frames may be added to (the newest, unless it has ended)."""
        if self.series and not self.series[-1].ended:
            return self.series[-1]
        return None

    @property
    def active(self) -> bool:
        return bool(self.series) or self.inflight > 0

    @property
    def backlog(self) -> int:
        """Accepted frames not yet answered."""
        return sum(len(s.pending) for s in self.series) + self.inflight

    def snapshot(self) -> StreamStatus:
        latest = self.latest
        latency = self.latency.snapshot()
        return StreamStatus(
            series=latest.series if latest else None,
            mode=latest.mode.value if latest else None,
            shape=list(latest.shape) if latest else None,
            dtype=latest.dtype if latest else None,
            open=self.open_series is not None,
            **self.counters.snapshot(),
            backlog=self.backlog,
            fps_in=round(self.fps_in.rate(), 3),
            fps_out=round(self.fps_out.rate(), 3),
            latency_ms_p50=latency["p50"],
            latency_ms_p99=latency["p99"],
            latency_histogram=self.latency_buckets.snapshot(),
        )


class StreamTable:
    """All streams; validates and applies ``start``/``frame``/``end`` (router side).

    Parameters
    ----------
    settings
        Limits (``max_streams``, ``max_frame_bytes``, ``max_buffered_frames``) and ``default_mode``.
    """

    def __init__(self, settings: ServerSettings) -> None:
        self.settings = settings
        self.cond = threading.Condition()
        self.streams: dict[str, StreamState] = {}
        self.rejected: Counter[str] = Counter()
        self.totals = Counters(
            "accepted_messages", "frames_in", "frames_out", "skipped", "errors", "rejected", "batches", "undeliverable",
            "expired_series",
        )  # fmt: skip
        self.parked_bytes = 0  # replies the router holds for peers that do not read them (router updates it)
        # The served model's estimates (None: no model): a start asking for another is refused (worker updates).
        self.served_estimates: tuple[str, ...] | None = None

    # -- router side (each takes the lock) ----------------------------------------------------------------
    def start(self, identity: bytes, header: Header, owner: str | None = None) -> None:
        """Open a series; flushes the stream's previous series if it is still open.

        A stream whose series is open belongs to the peer that opened it: a ``start`` from another peer is
        refused (``not_owner``). The same peer on a new connection (same CURVE key, or any peer without
        authentication, where every local user is trusted alike) may replace it, e.g. after reconnecting.
        """
        assert header.shape is not None and header.dtype is not None
        mode = self._mode(header)
        self.check_size(header)
        with self.cond:
            estimate = self._estimate(header)
            state = self.streams.get(header.stream)
            if (state is None or not state.active) and self._active_count() >= self.settings.max_streams:
                raise _reject(
                    ErrorCode.TOO_MANY_STREAMS,
                    f"stream {header.stream!r} refused: {self.settings.max_streams} streams are active (max_streams)",
                )
            if state is None:
                state = self.streams[header.stream] = StreamState(header.stream)
                self._forget_idle()
            previous = state.open_series
            if previous is not None:
                if previous.owner != owner:
                    raise _reject(
                        ErrorCode.NOT_OWNER,
                        f"stream {header.stream!r} has series {previous.series!r} open by another client; "
                        "use another stream id, or wait for that series to end",
                    )
                previous.close(EndReason.NEW_START)
            state.latest = SeriesState(
                stream=header.stream,
                series=header.series,
                identity=identity,
                owner=owner,
                mode=mode,
                shape=(header.shape[0], header.shape[1]),
                dtype=header.dtype,
                estimate=estimate,
            )
            state.series.append(state.latest)
            state.counters.inc("series_started")
            state.last_seen = time.monotonic()
            self.totals.inc("accepted_messages")
            self.cond.notify_all()

    def frame(self, header: Header, pixels: NDArray[Any], identity: bytes) -> None:
        """Append a frame to its open series (``pixels`` is the ``[y, x]`` view of the payload)."""
        assert header.index is not None
        with self.cond:
            state, series = self._open(header, identity)
            if header.shape != series.shape:
                raise _reject(
                    ErrorCode.SHAPE_MISMATCH,
                    f"frame shape {list(header.shape or ())} differs from series {series.series!r} shape {list(series.shape)}",
                )
            if header.dtype != series.dtype:
                raise _reject(
                    ErrorCode.DTYPE_MISMATCH, f"frame dtype {header.dtype!r} differs from series dtype {series.dtype!r}"
                )
            if series.last_index is not None and header.index <= series.last_index:
                raise _reject(
                    ErrorCode.INDEX_NOT_INCREASING,
                    f"index {header.index} is not above the previous index {series.last_index} of series {series.series!r}",
                )
            if state.backlog >= self.settings.max_buffered_frames:
                raise _reject(
                    ErrorCode.BACKLOG_FULL,
                    f"stream {state.stream!r} holds {state.backlog} frames waiting (max_buffered_frames="
                    f"{self.settings.max_buffered_frames}); slow down or use live mode",
                )
            held = self._buffered_bytes()
            if held + pixels.nbytes > self.settings.max_buffered_bytes:
                raise _reject(
                    ErrorCode.SERVER_BUSY,
                    f"the server holds {held} bytes of frames and unread replies (max_buffered_bytes="
                    f"{self.settings.max_buffered_bytes}); frame not accepted, retry later",
                )
            now = time.monotonic()
            series.window.append(pixels)
            series.pending.append(PendingFrame(header.index, header.t_ns, header.meta, now))
            series.last_index = header.index
            state.counters.inc("frames_in")
            state.fps_in.tick(now=now)
            state.last_seen = now
            self.totals.inc("accepted_messages")
            self.totals.inc("frames_in")
            self.cond.notify_all()

    def end(self, header: Header, identity: bytes) -> None:
        """Close the open series; its last window is flushed and an ``end`` reply follows its frames."""
        with self.cond:
            state, series = self._open(header, identity)
            series.end_meta = header.meta
            series.window.end()
            state.last_seen = time.monotonic()
            self.totals.inc("accepted_messages")
            self.cond.notify_all()

    def check_size(self, header: Header) -> None:
        """Refuse a header announcing more than ``max_frame_bytes`` (before the payload is read)."""
        if header.shape is not None and header.dtype is not None and header.nbytes > self.settings.max_frame_bytes:
            raise _reject(
                ErrorCode.FRAME_TOO_LARGE,
                f"shape {list(header.shape)} x dtype {header.dtype} is {header.nbytes} bytes; "
                f"the limit is {self.settings.max_frame_bytes} (max_frame_bytes)",
            )

    def record_rejection(self, stream: str | None, code: ErrorCode) -> None:
        """Count a refused message (per code, and on its stream when that stream exists)."""
        with self.cond:
            self.rejected[code.value] += 1
            self.totals.inc("rejected")
            state = self.streams.get(stream) if stream else None
            if state is not None:
                state.counters.inc("rejected")

    def end_all(self) -> None:
        """Close every open series (service shutdown: flush what was accepted)."""
        with self.cond:
            for state in self.streams.values():
                if state.open_series is not None:
                    state.open_series.close(EndReason.SHUTDOWN)
            self.cond.notify_all()

    def take_unanswered(self) -> list[tuple[SeriesState, list[PendingFrame]]]:
        """Remove every series that still has frames or an ``end`` to answer (the worker has stopped), with
        its unanswered frames; they are counted as errors."""
        out: list[tuple[SeriesState, list[PendingFrame]]] = []
        with self.cond:
            for state in self.streams.values():
                while state.series:
                    series = state.series.popleft()
                    pending = list(series.pending)
                    series.pending.clear()
                    out.append((series, pending))
                    if pending:
                        state.counters.inc("errors", len(pending))
                        self.totals.inc("errors", len(pending))
        return out

    def expire_idle(self, now: float | None = None) -> int:
        """Close open series that have had no message for ``series_idle_timeout_s``; returns how many."""
        now = time.monotonic() if now is None else now
        expired = 0
        with self.cond:
            for state in self.streams.values():
                series = state.open_series
                if series is not None and now - state.last_seen > self.settings.series_idle_timeout_s:
                    series.close(EndReason.IDLE_TIMEOUT)
                    expired += 1
            if expired:
                self.totals.inc("expired_series", expired)
                self.cond.notify_all()
        return expired

    def buffered_bytes(self) -> int:
        with self.cond:
            return self._buffered_bytes()

    def idle(self) -> bool:
        with self.cond:
            return not any(state.active for state in self.streams.values())

    def snapshot(self) -> tuple[dict[str, StreamStatus], Totals]:
        with self.cond:
            streams = {sid: state.snapshot() for sid, state in self.streams.items()}
            totals = Totals(
                **self.totals.snapshot(), active_streams=self._active_count(), buffered_bytes=self._buffered_bytes(),
                rejected_by_code=dict(self.rejected),
            )  # fmt: skip
            return streams, totals

    # -- internals -----------------------------------------------------------------------------------------
    def _mode(self, header: Header) -> StreamMode:
        raw = header.meta.get("mode")
        if raw is None:
            return self.settings.default_mode
        try:
            return StreamMode(raw)
        except ValueError:
            raise _reject(
                ErrorCode.BAD_FIELD, f"start meta 'mode' is {raw!r}; expected one of {[m.value for m in StreamMode]}"
            ) from None

    def _estimate(self, header: Header) -> str | None:
        """``start.meta.estimate``, checked against the served model (any name while none is loaded)."""
        raw = header.meta.get("estimate")
        if raw is None:
            return None
        if not isinstance(raw, str) or not 0 < len(raw) <= 64:
            raise _reject(
                ErrorCode.BAD_FIELD, f"start meta 'estimate' must be a string of 1-64 characters, got {raw!r}"
            )
        offered = self.served_estimates
        if offered is not None and raw not in offered:
            choices = f"one of {list(offered)}" if offered else "none (it has one output; leave 'estimate' out)"
            raise _reject(ErrorCode.BAD_FIELD, f"start meta 'estimate' is {raw!r}; the served model offers {choices}")
        return raw

    def _open(self, header: Header, identity: bytes) -> tuple[StreamState, SeriesState]:
        state = self.streams.get(header.stream)
        series = state.open_series if state is not None else None
        if state is None or series is None:
            raise _reject(
                ErrorCode.NO_START,
                f"{header.type.value} for stream {header.stream!r} series {header.series!r}, which has no open series; send start first",
            )
        if series.series != header.series:
            raise _reject(
                ErrorCode.NO_START,
                f"{header.type.value} for series {header.series!r}, but stream {header.stream!r} has series "
                f"{series.series!r} open; send start for the new series first",
            )
        if series.identity != identity:
            raise _reject(
                ErrorCode.NOT_OWNER,
                f"series {series.series!r} of stream {header.stream!r} was started on another connection; its "
                "frames must come from that connection (send start again on this one to take it over)",
            )
        return state, series

    def _buffered_bytes(self) -> int:
        held = sum(series.window.held_bytes for state in self.streams.values() for series in state.series)
        return held + self.parked_bytes

    def _active_count(self) -> int:
        return sum(1 for state in self.streams.values() if state.active)

    def _forget_idle(self) -> None:
        idle = [state for state in self.streams.values() if not state.active]
        if len(idle) > MAX_IDLE_STREAMS:
            for state in sorted(idle, key=lambda s: s.last_seen)[: len(idle) - MAX_IDLE_STREAMS]:
                del self.streams[state.stream]
