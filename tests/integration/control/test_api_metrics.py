"""/metrics is Prometheus text that tracks the real ingest counters, read back with Prometheus' own parser."""

from __future__ import annotations

import numpy as np
from prometheus_client.parser import text_string_to_metric_families

from livedenoise.clients.control import ControlClient
from livedenoise.clients.stream import StreamClient
from livedenoise.server.ingest.service import IngestService


def parse(text: str) -> dict[str, float]:
    """``name{labels in name order}`` → value, for every sample of every family."""
    samples: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            samples[sample.name + (f"{{{labels}}}" if labels else "")] = sample.value
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
    assert after['livedenoise_latency_ms{quantile="0.99",stream="cam-metrics"}'] > 0
    # Every replied frame is in the histogram, once.
    assert after['livedenoise_frame_latency_seconds_count{stream="cam-metrics"}'] == 5
    assert after['livedenoise_frame_latency_seconds_bucket{le="+Inf",stream="cam-metrics"}'] == 5
    assert after['livedenoise_frame_latency_seconds_sum{stream="cam-metrics"}'] > 0
    assert after["livedenoise_model_loaded"] == 1
    assert after[f'livedenoise_model_info{{model_id="{model.id}",provider="cpu"}}'] == 1
    assert after["livedenoise_models_registered"] == 1
