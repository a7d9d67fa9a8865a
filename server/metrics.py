"""Small serving metrics: counters, a frame-rate meter and latency percentiles, each snapshot as a dict.

None of these classes lock: the ingest service updates and reads them under its own lock.
"""

from __future__ import annotations

import time
from collections import Counter, deque

import numpy as np

from livedenoise.clients.status import LatencyHistogram

__all__ = ["Counters", "RateMeter", "LatencyRing", "LatencyBuckets", "LATENCY_BOUNDS_MS"]


class Counters:
    """Named monotonically increasing integers."""

    def __init__(self, *names: str) -> None:
        self._values: Counter[str] = Counter({name: 0 for name in names})

    def inc(self, name: str, n: int = 1) -> None:
        self._values[name] += n

    def __getitem__(self, name: str) -> int:
        return self._values[name]

    def snapshot(self) -> dict[str, int]:
        return dict(self._values)


class RateMeter:
    """Events per second over the last ``window_s`` seconds, in ``bucket_s`` buckets (bounded memory).

    Parameters
    ----------
    window_s
        Averaging window.
    bucket_s
        Time resolution; memory is ``window_s / bucket_s`` buckets whatever the rate.
    """

    def __init__(self, window_s: float = 3.0, bucket_s: float = 0.1) -> None:
        if window_s <= 0 or bucket_s <= 0 or bucket_s > window_s:
            raise ValueError(f"need 0 < bucket_s <= window_s, got bucket_s={bucket_s}, window_s={window_s}")
        self.window_s = window_s
        self.bucket_s = bucket_s
        self._buckets: deque[list[int]] = deque()  # [bucket number, count]; integer ids compare exactly
        self._first: float | None = None

    def tick(self, n: int = 1, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        if self._first is None:
            self._first = now
        bucket = int(now // self.bucket_s)
        if self._buckets and self._buckets[-1][0] == bucket:
            self._buckets[-1][1] += n
        else:
            self._buckets.append([bucket, n])
        self._expire(now)

    def rate(self, now: float | None = None) -> float:
        """Mean rate over the window (or since the first event, when that is shorter)."""
        now = time.monotonic() if now is None else now
        self._expire(now)
        if self._first is None or not self._buckets:
            return 0.0
        span = min(self.window_s, max(now - self._first, self.bucket_s))
        return sum(count for _, count in self._buckets) / span

    def _expire(self, now: float) -> None:
        horizon = now - self.window_s
        while self._buckets and (self._buckets[0][0] + 1) * self.bucket_s <= horizon:
            self._buckets.popleft()


class LatencyRing:
    """The last ``capacity`` latencies (ms) in a ring; percentiles over that reservoir."""

    def __init__(self, capacity: int = 1024) -> None:
        if capacity <= 0:
            raise ValueError(f"capacity must be positive, got {capacity}")
        self._values = np.zeros(capacity, dtype=np.float64)
        self._n = 0

    def add(self, value_ms: float) -> None:
        self._values[self._n % self._values.size] = value_ms
        self._n += 1

    @property
    def count(self) -> int:
        """Values added in total (not only those still held)."""
        return self._n

    def percentile(self, q: float) -> float | None:
        """The ``q``-th percentile (0-100) of the values held, or None before the first value."""
        if self._n == 0:
            return None
        held = self._values[: min(self._n, self._values.size)]
        return float(np.percentile(held, q))

    def snapshot(self) -> dict[str, float | None]:
        return {"p50": self.percentile(50), "p99": self.percentile(99)}


#: Bucket bounds (ms) of the latency histogram: a camera frame period (1-100 ms) up to the seconds a wide window
#: waits for its look-ahead at a slow frame rate.
LATENCY_BOUNDS_MS = (1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0, 30000.0)


class LatencyBuckets:
    """Every latency since creation counted in fixed buckets: what a Prometheus histogram needs (the ring above
    only holds the recent ones)."""

    def __init__(self, bounds_ms: tuple[float, ...] = LATENCY_BOUNDS_MS) -> None:
        if list(bounds_ms) != sorted(set(bounds_ms)):
            raise ValueError(f"bucket bounds must increase strictly, got {bounds_ms}")
        self.bounds_ms = bounds_ms
        self._bounds = np.asarray(bounds_ms)
        self._counts = [0] * (len(bounds_ms) + 1)
        self._sum = 0.0

    def add(self, value_ms: float) -> None:
        # searchsorted 'left': a value equal to a bound falls in that bound's bucket (Prometheus' `le`).
        self._counts[int(np.searchsorted(self._bounds, value_ms, side="left"))] += 1
        self._sum += value_ms

    def snapshot(self) -> LatencyHistogram:
        return LatencyHistogram(
            bounds_ms=list(self.bounds_ms),
            counts=list(self._counts),
            sum_ms=round(self._sum, 3),
            count=sum(self._counts),
        )
