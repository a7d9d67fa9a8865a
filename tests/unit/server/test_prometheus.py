"""The /metrics page is valid Prometheus text built from the typed ingest status; the status document's own
boundary (``from_dict``) names what it cannot read."""

from __future__ import annotations

import re
from dataclasses import asdict

import pytest

from livedenoise.clients.status import IngestStatus, StatusError
from livedenoise.server.metrics import LatencyBuckets
from livedenoise.server.prometheus import render_metrics

SAMPLE = re.compile(
    r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*",?)*\})? (?P<value>-?[0-9.eE+-]+|NaN|[+-]Inf)$'
)
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\.)*)"')
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


def key(name: str, **labels: str) -> str:
    """A sample's key with its labels in name order (the text format does not fix their order)."""
    if not labels:
        return name
    return name + "{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"


def _family(name: str, types: dict[str, str]) -> str | None:
    if name in types:
        return name
    for suffix in ("_total", *HISTOGRAM_SUFFIXES):
        base = name.removesuffix(suffix)
        if base != name and base in types and (suffix == "_total") == (types[base] == "counter"):
            return base
    return None


def parse(text: str) -> dict[str, float]:
    """Strict enough parser: every line is a HELP/TYPE comment or `name{labels} value` of a declared family."""
    samples: dict[str, float] = {}
    types: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            assert kind in {"counter", "gauge", "histogram"} and name not in types
            types[name] = kind
            continue
        if line.startswith("# HELP "):
            continue
        match = SAMPLE.match(line)
        assert match, f"not a Prometheus sample line: {line!r}"
        assert _family(match.group(1), types), f"{match.group(1)} has no TYPE line before it"
        labels = dict(LABEL.findall(match.group(2) or ""))
        sample = key(match.group(1), **labels)
        assert sample not in samples, f"duplicate sample {sample}"
        samples[sample] = float(match.group("value"))
    return samples


def _stream(
    frames_in: int,
    frames_out: int,
    skipped: int,
    errors: int,
    rejected: int,
    fps: float,
    p50: float | None,
    p99: float | None,
) -> dict[str, object]:
    return {"series": "s", "mode": "lossless", "shape": [8, 8], "dtype": "<u2", "open": True, "frames_in": frames_in,
            "frames_out": frames_out, "skipped": skipped, "errors": errors, "rejected": rejected, "series_started": 1,
            "backlog": 0, "fps_in": fps, "fps_out": fps - 0.25, "latency_ms_p50": p50, "latency_ms_p99": p99}  # fmt: skip


def status_doc(model: dict[str, object] | None, streams: dict[str, object]) -> dict[str, object]:
    """A complete status document, as the ingest process sends it over its control channel."""
    totals = {k: 0 for k in ("accepted_messages", "frames_out", "skipped", "errors", "rejected", "batches",
                             "undeliverable", "expired_series", "active_streams", "buffered_bytes")}  # fmt: skip
    return {"pid": 1, "instance": "abc", "model": model, "provider": "cpu", "uptime_s": 1.5,
            "endpoints": {"frames": "tcp://a:1", "pub": "tcp://a:2", "control": "tcp://a:3"},
            "threads": {"router": True, "worker": True, "control": True}, "authentication": "none",
            "streams": streams, "totals": {**totals, "frames_in": 11, "rejected_by_code": {"bad_json": 3}}}  # fmt: skip


MODEL = {
    "id": "m-0123456789ab",
    "method": "test_mix",
    "window": {"before": 1, "after": 1, "out_frames": 1, "spatial_multiple": 1},
}
STATUS = IngestStatus.from_dict(status_doc(MODEL, {
    "cam-1": _stream(10, 8, 1, 1, 2, 9.5, 3.5, 7.25),
    'odd"name': _stream(1, 1, 0, 0, 0, 0.25, None, None),
}))  # fmt: skip


def test_status_becomes_labelled_counters_and_gauges() -> None:
    samples = parse(render_metrics(STATUS, jobs={"queued": 1, "running": 0}, models_registered=2))
    assert samples['livedenoise_frames_in_total{stream="cam-1"}'] == 10
    assert samples['livedenoise_frames_out_total{stream="cam-1"}'] == 8
    assert samples['livedenoise_frames_skipped_total{stream="cam-1"}'] == 1
    assert samples['livedenoise_frame_errors_total{stream="cam-1"}'] == 1
    assert samples['livedenoise_frames_rejected_total{stream="cam-1"}'] == 2
    assert samples['livedenoise_fps_in{stream="cam-1"}'] == 9.5
    assert samples[key("livedenoise_latency_ms", stream="cam-1", quantile="0.99")] == 7.25
    assert samples['livedenoise_frames_in_total{stream="odd\\"name"}'] == 1
    assert key("livedenoise_latency_ms", stream='odd\\"name', quantile="0.5") not in samples  # no value yet
    assert samples["livedenoise_ingest_up"] == 1 and samples["livedenoise_model_loaded"] == 1
    assert samples['livedenoise_model_info{model_id="m-0123456789ab",provider="cpu"}'] == 1
    assert samples['livedenoise_jobs{state="queued"}'] == 1
    assert samples['livedenoise_rejected_total{code="bad_json"}'] == 3
    assert samples["livedenoise_models_registered"] == 2


def test_ingest_down_still_renders() -> None:
    samples = parse(render_metrics(None, jobs={"failed": 3}))
    assert samples == {"livedenoise_ingest_up": 0, 'livedenoise_jobs{state="failed"}': 3}


def test_no_model_loaded() -> None:
    samples = parse(render_metrics(IngestStatus.from_dict(status_doc(None, {}))))
    assert samples["livedenoise_model_loaded"] == 0 and samples["livedenoise_streams"] == 0
    assert samples['livedenoise_ingest_thread_up{thread="worker"}'] == 1


def test_the_status_document_round_trips_and_a_bad_one_names_its_field() -> None:
    assert IngestStatus.from_dict(STATUS.to_dict()) == STATUS
    doc = status_doc(MODEL, {"cam": _stream(1, 1, 0, 0, 0, 1.0, None, None)})
    del doc["streams"]["cam"]["frames_out"]  # type: ignore[index]
    with pytest.raises(StatusError, match="streams.cam.frames_out"):
        IngestStatus.from_dict(doc)
    doc = status_doc(MODEL, {})
    doc["pid"] = "1"
    with pytest.raises(StatusError, match="status.pid"):
        IngestStatus.from_dict(doc)


def test_latency_histogram_is_cumulative_in_seconds() -> None:
    buckets = LatencyBuckets(bounds_ms=(10.0, 100.0, 1000.0))
    for value in (3.0, 10.0, 10.5, 99.0, 2500.0):  # 10.0 ms lands in the 10 ms bucket (Prometheus' `le`)
        buckets.add(value)
    stream = {**_stream(5, 5, 0, 0, 0, 5.0, 10.5, 2500.0), "latency_histogram": asdict(buckets.snapshot())}
    status = IngestStatus.from_dict(status_doc(MODEL, {"cam": stream}))
    assert IngestStatus.from_dict(status.to_dict()) == status
    samples = parse(render_metrics(status))
    cumulative = {le: samples[key("livedenoise_frame_latency_seconds_bucket", le=le, stream="cam")]
                  for le in ("0.01", "0.1", "1.0", "+Inf")}  # fmt: skip
    assert cumulative == {"0.01": 2, "0.1": 4, "1.0": 4, "+Inf": 5}
    assert samples[key("livedenoise_frame_latency_seconds_count", stream="cam")] == 5
    assert samples[key("livedenoise_frame_latency_seconds_sum", stream="cam")] == pytest.approx(2.6225)


def test_a_histogram_with_mismatched_counts_names_its_field() -> None:
    histogram = {"bounds_ms": [1.0, 2.0], "counts": [1, 2], "sum_ms": 1.0, "count": 3}
    stream = {**_stream(1, 1, 0, 0, 0, 1.0, None, None), "latency_histogram": histogram}
    with pytest.raises(StatusError, match="streams.cam.latency_histogram"):
        IngestStatus.from_dict(status_doc(MODEL, {"cam": stream}))
