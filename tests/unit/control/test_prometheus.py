"""The /metrics page is valid Prometheus text built from the ingest status dict."""

from __future__ import annotations

import re

from livedenoise.server.prometheus import render_metrics

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*",?)*\})? (?P<value>-?[0-9.eE+-]+|NaN|[+-]Inf)$')


def parse(text: str) -> dict[str, float]:
    """Strict enough parser: every line is a HELP/TYPE comment or `name{labels} value`."""
    samples: dict[str, float] = {}
    types: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            assert kind in {"counter", "gauge"} and name not in types
            types[name] = kind
            continue
        if line.startswith("# HELP "):
            continue
        match = SAMPLE.match(line)
        assert match, f"not a Prometheus sample line: {line!r}"
        assert match.group(1) in types, f"{match.group(1)} has no TYPE line before it"
        key = line.rsplit(" ", 1)[0]
        assert key not in samples, f"duplicate sample {key}"
        samples[key] = float(match.group("value"))
    return samples


STATUS = {
    "provider": "cpu",
    "model": {"id": "m-0123456789ab", "method": "test_mix"},
    "streams": {
        "cam-1": {"frames_in": 10, "frames_out": 8, "skipped": 1, "errors": 1, "rejected": 2, "fps_in": 9.5,
                  "fps_out": 9.25, "backlog": 0, "latency_ms_p50": 3.5, "latency_ms_p99": 7.25},
        'odd"name': {"frames_in": 1, "frames_out": 1, "skipped": 0, "errors": 0, "rejected": 0, "fps_in": 0.0,
                     "fps_out": 0.0, "backlog": 0, "latency_ms_p50": None, "latency_ms_p99": None},
    },
    "totals": {"frames_in": 11, "rejected_by_code": {"bad_json": 3}},
}  # fmt: skip


def test_status_becomes_labelled_counters_and_gauges() -> None:
    samples = parse(render_metrics(STATUS, jobs={"queued": 1, "running": 0}, models_registered=2))
    assert samples['livedenoise_frames_in_total{stream="cam-1"}'] == 10
    assert samples['livedenoise_frames_out_total{stream="cam-1"}'] == 8
    assert samples['livedenoise_frames_skipped_total{stream="cam-1"}'] == 1
    assert samples['livedenoise_frame_errors_total{stream="cam-1"}'] == 1
    assert samples['livedenoise_frames_rejected_total{stream="cam-1"}'] == 2
    assert samples['livedenoise_fps_in{stream="cam-1"}'] == 9.5
    assert samples['livedenoise_latency_ms{stream="cam-1",quantile="0.99"}'] == 7.25
    assert samples['livedenoise_frames_in_total{stream="odd\\"name"}'] == 1
    assert 'livedenoise_latency_ms{stream="odd\\"name",quantile="0.5"}' not in samples  # no value yet
    assert samples["livedenoise_ingest_up"] == 1 and samples["livedenoise_model_loaded"] == 1
    assert samples['livedenoise_model_info{model_id="m-0123456789ab",provider="cpu"}'] == 1
    assert samples['livedenoise_jobs{state="queued"}'] == 1
    assert samples['livedenoise_rejected_total{code="bad_json"}'] == 3
    assert samples["livedenoise_models_registered"] == 2


def test_ingest_down_still_renders() -> None:
    samples = parse(render_metrics(None, jobs={"failed": 3}))
    assert samples == {"livedenoise_ingest_up": 0, 'livedenoise_jobs{state="failed"}': 3}


def test_no_model_loaded() -> None:
    samples = parse(render_metrics({"provider": "cpu", "model": None, "streams": {}}))
    assert samples["livedenoise_model_loaded"] == 0 and samples["livedenoise_streams"] == 0
