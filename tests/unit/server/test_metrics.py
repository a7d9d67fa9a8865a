from __future__ import annotations

import numpy as np
import pytest

from livedenoise.server.metrics import Counters, LatencyRing, RateMeter


def test_counters() -> None:
    c = Counters("a", "b")
    c.inc("a")
    c.inc("a", 4)
    c.inc("c")
    assert c.snapshot() == {"a": 5, "b": 0, "c": 1}
    assert c["a"] == 5


def test_rate_meter_over_recent_window() -> None:
    meter = RateMeter(window_s=2.0, bucket_s=0.1)
    assert meter.rate(now=0.0) == 0.0
    for i in range(100):  # 50 fps for 2 s
        meter.tick(now=10.0 + i * 0.02)
    assert meter.rate(now=12.0) == pytest.approx(50, rel=0.1)
    for i in range(40):  # then 20 fps for 2 s
        meter.tick(now=12.0 + i * 0.05)
    assert meter.rate(now=14.0) == pytest.approx(20, rel=0.1)
    assert meter.rate(now=30.0) == 0.0
    assert len(meter._buckets) <= 21


def test_rate_meter_validates() -> None:
    with pytest.raises(ValueError, match="bucket_s"):
        RateMeter(window_s=1.0, bucket_s=2.0)


def test_latency_ring_percentiles_over_last_values() -> None:
    ring = LatencyRing(capacity=100)
    assert ring.snapshot() == {"p50": None, "p99": None}
    for v in range(1000):
        ring.add(float(v))
    assert ring.count == 1000
    held = np.arange(900, 1000, dtype=float)
    assert ring.percentile(50) == pytest.approx(np.percentile(held, 50))
    assert ring.snapshot()["p99"] == pytest.approx(np.percentile(held, 99))
