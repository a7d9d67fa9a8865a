"""/metrics is Prometheus text that tracks the real ingest counters."""

from __future__ import annotations

import re

import numpy as np

from livedenoise.clients.control import ControlClient
from livedenoise.clients.stream import StreamClient
from livedenoise.server.ingest.service import IngestService

LINE = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?P<labels>\{[^}]*\})? (?P<value>\S+)$")


def parse(text: str) -> dict[str, float]:
    samples: dict[str, float] = {}
    typed: set[str] = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            typed.add(line.split()[2])
        elif not line.startswith("# HELP "):
            match = LINE.match(line)
            assert match, f"not a Prometheus sample line: {line!r}"
            assert match.group("name") in typed
            samples[line.rsplit(" ", 1)[0]] = float(match.group("value"))
    return samples


def test_metrics_follow_the_stream(client: ControlClient, model_file, ingest: IngestService) -> None:
    before = parse(client.metrics())
    assert before["livedenoise_ingest_up"] == 1 and before["livedenoise_model_loaded"] == 0
    assert before['livedenoise_jobs{state="running"}'] == 0

    model = client.upload_model(model_file(seed=9))
    client.load_model(model.id)
    stream = StreamClient(ingest.zmq_endpoint, stream="cam-metrics", timeout_s=10.0)
    try:
        stream.denoise(np.zeros((5, 16, 16), dtype="<u2"))
    finally:
        stream.close()

    after = parse(client.metrics())
    assert after['livedenoise_frames_in_total{stream="cam-metrics"}'] == 5
    assert after['livedenoise_frames_out_total{stream="cam-metrics"}'] == 5
    assert after['livedenoise_frames_skipped_total{stream="cam-metrics"}'] == 0
    assert after['livedenoise_latency_ms{stream="cam-metrics",quantile="0.99"}'] > 0
    assert after["livedenoise_model_loaded"] == 1
    assert after[f'livedenoise_model_info{{model_id="{model.id}",provider="cpu"}}'] == 1
    assert after["livedenoise_models_registered"] == 1
