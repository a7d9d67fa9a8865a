"""Prometheus exposition of the typed ingest status and the control plane's state, through ``prometheus-client``.

The status already holds every number, so a custom collector turns one status snapshot into metric families and
the library writes the text format. Per-stream counters are ``*_total`` counters labelled ``stream``; rates and
recent latency quantiles are gauges; ``frame_latency_seconds`` is a histogram of every frame's latency since
the stream appeared; ``livedenoise_ingest_up`` says whether the ingest process answered at all.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from prometheus_client.registry import Collector, CollectorRegistry

from livedenoise.clients.status import IngestStatus, LatencyHistogram

__all__ = ["render_metrics", "CONTENT_TYPE"]

# Text format 0.0.4: what every Prometheus server and scraper reads.
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
_PREFIX = "livedenoise_"

# (status attribute of a stream, metric name, help)
_STREAM_COUNTERS = (
    ("frames_in", "frames_in_total", "Frames accepted from clients."),
    ("frames_out", "frames_out_total", "Denoised frames replied."),
    ("skipped", "frames_skipped_total", "Frames replied `skipped` by the live back-pressure policy."),
    ("errors", "frame_errors_total", "Accepted frames replied `error` (inference or model failures)."),
    ("rejected", "frames_rejected_total", "Messages rejected before acceptance (protocol or limit violations)."),
)
_STREAM_GAUGES = (
    ("fps_in", "fps_in", "Frames per second received, recent average."),
    ("fps_out", "fps_out", "Frames per second replied, recent average."),
    ("backlog", "backlog_frames", "Frames waiting for inference."),
)


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)) and math.isfinite(value):
        return float(value)
    return None


class _Families:
    """Metric families by name, created on first use, each sample added only when its value is a finite number."""

    def __init__(self) -> None:
        self._families: dict[str, Metric] = {}

    def add(
        self, kind: type[CounterMetricFamily | GaugeMetricFamily], name: str, help_text: str, value: Any,
        labels: Mapping[str, str] | None = None,
    ) -> None:  # fmt: skip
        number = _number(value)
        if number is None:
            return
        labels = labels or {}
        full = _PREFIX + name
        family = self._families.get(full)
        if family is None:
            family = self._families[full] = kind(full, help_text, labels=list(labels))
        family.add_metric(list(labels.values()), number)  # type: ignore[attr-defined]

    def histogram(self, name: str, help_text: str, stream: str, histogram: LatencyHistogram) -> None:
        full = _PREFIX + name
        family = self._families.get(full)
        if family is None:
            family = self._families[full] = HistogramMetricFamily(full, help_text, labels=["stream"])
        # Cumulative counts per upper bound, in seconds (Prometheus' base unit), +Inf last.
        buckets: list[tuple[str, float]] = []
        total = 0
        for bound_ms, count in zip([*histogram.bounds_ms, math.inf], histogram.counts):
            total += count
            buckets.append(("+Inf" if math.isinf(bound_ms) else repr(bound_ms / 1000.0), float(total)))
        assert isinstance(family, HistogramMetricFamily)
        family.add_metric([stream], buckets, sum_value=histogram.sum_ms / 1000.0)

    def __iter__(self) -> Iterator[Metric]:
        return iter(self._families.values())


class _StatusCollector(Collector):
    def __init__(self, families: _Families) -> None:
        self._families = families

    def collect(self) -> Iterator[Metric]:
        return iter(self._families)


def _collect(status: IngestStatus | None, jobs: Mapping[str, int] | None, models_registered: int | None) -> _Families:
    f = _Families()
    gauge, counter = GaugeMetricFamily, CounterMetricFamily
    f.add(gauge, "ingest_up", "1 if the ingest process answered its control channel.", 1 if status is not None else 0)
    if status is not None:
        f.add(gauge, "model_loaded", "1 if the ingest process serves a model.", 1 if status.model else 0)
        if status.model is not None:
            info = {"model_id": status.model.id, "provider": status.provider}
            f.add(gauge, "model_info", "The served model and execution provider (value is always 1).", 1, info)
        streams = sorted(status.streams.items())
        for attribute, name, help_text in _STREAM_COUNTERS:
            for stream_id, stream in streams:
                f.add(counter, name, help_text, getattr(stream, attribute), {"stream": stream_id})
        for attribute, name, help_text in _STREAM_GAUGES:
            for stream_id, stream in streams:
                f.add(gauge, name, help_text, getattr(stream, attribute), {"stream": stream_id})
        for stream_id, stream in streams:
            for value, quantile in ((stream.latency_ms_p50, "0.5"), (stream.latency_ms_p99, "0.99")):
                labels = {"stream": stream_id, "quantile": quantile}
                f.add(gauge, "latency_ms", "Frame latency in ms (arrival to reply), recent quantiles.", value, labels)
        for stream_id, stream in streams:
            if stream.latency_histogram is not None:
                help_text = "Frame latency (arrival to reply) of every frame replied since the stream appeared."
                f.histogram("frame_latency_seconds", help_text, stream_id, stream.latency_histogram)
        f.add(gauge, "streams", "Streams the ingest process currently tracks.", len(streams))
        for code, count in sorted(status.totals.rejected_by_code.items()):
            help_text = "Messages rejected, by error code (all streams)."
            f.add(counter, "rejected_total", help_text, count, {"code": code})
        for thread, alive in sorted(status.threads.items()):
            f.add(gauge, "ingest_thread_up", "1 while the ingest thread runs.", alive, {"thread": thread})
        help_text = "Bytes of frames and unread replies the ingest process holds."
        f.add(gauge, "buffered_bytes", help_text, status.totals.buffered_bytes)
        help_text = "Replies that could not be delivered to their peer."
        f.add(counter, "undeliverable_total", help_text, status.totals.undeliverable)
    for state, count in sorted((jobs or {}).items()):
        f.add(gauge, "jobs", "Training jobs by state.", count, {"state": state})
    if models_registered is not None:
        f.add(gauge, "models_registered", "Models in the registry.", models_registered)
    return f


def render_metrics(
    status: IngestStatus | None,
    *,
    jobs: Mapping[str, int] | None = None,
    models_registered: int | None = None,
) -> str:
    """Render the metrics page (text format 0.0.4).

    Parameters
    ----------
    status
        The ingest status, or None when the ingest process did not answer (``ingest_up`` is then 0).
    jobs
        Job counts by state.
    models_registered
        Number of models in the registry.
    """
    # A registry per scrape: the families describe one snapshot, nothing is kept between scrapes.
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_StatusCollector(_collect(status, jobs, models_registered)))
    return generate_latest(registry).decode("utf-8")
