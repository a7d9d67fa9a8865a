"""The last minutes of serving, for the dashboard's charts: the ingest status sampled every second or so into a
bounded ring (fps in/out, latency p50/p99, skips and errors per second, backlog, per stream).

A background thread asks the ingest process for its status with a short timeout; a sample it could not take is
kept as ``up: false`` (a gap in the charts), never retried in a burst. Nothing here touches the frame path: the
status request is the same one ``GET /v1/status`` makes.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from livedenoise.clients.status import IngestStatus
from livedenoise.server.errors import LiveDenoiseError

__all__ = ["StatusHistory", "StatusSample", "StreamSample"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class StreamSample:
    """One stream at one instant; rates are per second, latencies in ms (None before the first reply)."""

    fps_in: float
    fps_out: float
    latency_ms_p50: float | None
    latency_ms_p99: float | None
    skipped_per_s: float
    errors_per_s: float
    backlog: int
    open: bool


@dataclass(frozen=True)
class StatusSample:
    t: float  # unix time, s
    up: bool  # the ingest process answered
    model: str | None
    streams: dict[str, StreamSample]


class StatusHistory:
    """A ring of :class:`StatusSample` over the last ``keep_s`` seconds, filled by :meth:`sample`.

    Parameters
    ----------
    source
        Returns the ingest status, or raises :class:`LiveDenoiseError` when it cannot (down, busy).
    interval_s
        Seconds between samples of the background thread (:meth:`start`).
    keep_s
        How far back the ring reaches.
    """

    def __init__(self, source: Callable[[], IngestStatus], *, interval_s: float = 1.0, keep_s: float = 300.0) -> None:
        if not 0 < interval_s <= keep_s:
            raise ValueError(f"need 0 < interval_s <= keep_s, got interval_s={interval_s}, keep_s={keep_s}")
        self.source = source
        self.interval_s = interval_s
        self.keep_s = keep_s
        self._samples: deque[StatusSample] = deque(maxlen=int(keep_s / interval_s) + 1)
        self._lock = threading.Lock()
        # Counters of the previous sample, to turn totals into rates: (instance, monotonic time, {stream: (skipped, errors)}).
        self._previous: tuple[str, float, dict[str, tuple[int, int]]] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def sample(self) -> StatusSample:
        """Take one sample now and keep it."""
        now, mono = time.time(), time.monotonic()
        try:
            status = self.source()
        except LiveDenoiseError as exc:
            logger.debug("status sample skipped: %s", exc.message)
            taken = StatusSample(t=now, up=False, model=None, streams={})
        else:
            taken = self._from_status(status, now, mono)
        with self._lock:
            self._samples.append(taken)
            horizon = now - self.keep_s
            while self._samples and self._samples[0].t < horizon:
                self._samples.popleft()
        return taken

    def _from_status(self, status: IngestStatus, now: float, mono: float) -> StatusSample:
        counts = {name: (s.skipped, s.errors) for name, s in status.streams.items()}
        previous = self._previous
        same = previous is not None and previous[0] == status.instance
        dt = max(mono - previous[1], 1e-3) if previous is not None else 0.0
        streams = {}
        for name, s in status.streams.items():
            before = previous[2].get(name) if same and previous is not None else None
            # A stream first seen (or a restarted ingest) has no previous counts: its totals are history, not a burst.
            skipped = (s.skipped - before[0]) / dt if before is not None and s.skipped >= before[0] else 0.0
            errors = (s.errors - before[1]) / dt if before is not None and s.errors >= before[1] else 0.0
            streams[name] = StreamSample(
                fps_in=round(s.fps_in, 3),
                fps_out=round(s.fps_out, 3),
                latency_ms_p50=s.latency_ms_p50,
                latency_ms_p99=s.latency_ms_p99,
                skipped_per_s=round(skipped, 3),
                errors_per_s=round(errors, 3),
                backlog=s.backlog,
                open=s.open,
            )
        self._previous = (status.instance, mono, counts)
        return StatusSample(t=now, up=True, model=status.model.id if status.model else None, streams=streams)

    def samples(self, since: float | None = None) -> list[StatusSample]:
        """Samples oldest first; only those taken after ``since`` (unix time) when given."""
        with self._lock:
            held = list(self._samples)
        return held if since is None else [s for s in held if s.t > since]

    # -- background sampling -----------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="status-history", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                self.sample()
            except Exception:  # a bug costs one sample, never the charts
                logger.exception("status sample failed")
            self._stop.wait(max(0.0, self.interval_s - (time.monotonic() - started)))
