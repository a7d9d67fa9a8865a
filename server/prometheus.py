"""Prometheus text exposition (format 0.0.4) rendered from the typed ingest status and the control plane's state.

No client library: the status already holds every number, so this is a pure function from the status to text. Per-stream counters become ``*_total`` counters labelled ``stream``; rates and latency quantiles
are gauges; ``livedenoise_ingest_up`` says whether the ingest process answered at all.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from livedenoise.clients.status import IngestStatus

__all__ = ["render_metrics", "CONTENT_TYPE"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_PREFIX = "livedenoise_"

# (status key in a stream's dict, metric name, help)
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


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)) and math.isfinite(value):
        return float(value)
    return None


def _format(value: float) -> str:
    return str(int(value)) if value.is_integer() and abs(value) < 2**53 else repr(value)


class _Writer:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self._declared: set[str] = set()

    def sample(self, name: str, kind: str, help_text: str, value: Any, labels: Mapping[str, str] | None = None) -> None:
        number = _number(value)
        if number is None:
            return
        full = _PREFIX + name
        if full not in self._declared:
            self._declared.add(full)
            self.lines.append(f"# HELP {full} {help_text}")
            self.lines.append(f"# TYPE {full} {kind}")
        label_text = ""
        if labels:
            label_text = "{" + ",".join(f'{k}="{_escape(str(v))}"' for k, v in labels.items()) + "}"
        self.lines.append(f"{full}{label_text} {_format(number)}")


def render_metrics(
    status: IngestStatus | None,
    *,
    jobs: Mapping[str, int] | None = None,
    models_registered: int | None = None,
) -> str:
    """Render the metrics page.

    Parameters
    ----------
    status
        The ingest status, or None when the ingest process did not answer (``ingest_up`` is then 0).
    jobs
        Job counts by state.
    models_registered
        Number of models in the registry.
    """
    w = _Writer()
    w.sample(
        "ingest_up", "gauge", "1 if the ingest process answered its control channel.", 1 if status is not None else 0
    )
    if status is not None:
        w.sample("model_loaded", "gauge", "1 if the ingest process serves a model.", 1 if status.model else 0)
        if status.model is not None:
            info = {"model_id": status.model.id, "provider": status.provider}
            w.sample("model_info", "gauge", "The served model and execution provider (value is always 1).", 1, info)
        streams = sorted(status.streams.items())
        for source_key, name, help_text in _STREAM_COUNTERS:
            for stream_id, stream in streams:
                w.sample(name, "counter", help_text, getattr(stream, source_key), {"stream": stream_id})
        for source_key, name, help_text in _STREAM_GAUGES:
            for stream_id, stream in streams:
                w.sample(name, "gauge", help_text, getattr(stream, source_key), {"stream": stream_id})
        for stream_id, stream in streams:
            for value, quantile in ((stream.latency_ms_p50, "0.5"), (stream.latency_ms_p99, "0.99")):
                labels = {"stream": stream_id, "quantile": quantile}
                w.sample(
                    "latency_ms", "gauge", "Frame latency in ms (arrival to reply), recent quantiles.", value, labels
                )
        w.sample("streams", "gauge", "Streams the ingest process currently tracks.", len(streams))
        for code, count in sorted(status.totals.rejected_by_code.items()):
            w.sample(
                "rejected_total", "counter", "Messages rejected, by error code (all streams).", count, {"code": code}
            )
        for thread, alive in sorted(status.threads.items()):
            w.sample("ingest_thread_up", "gauge", "1 while the ingest thread runs.", alive, {"thread": thread})
        w.sample(
            "buffered_bytes",
            "gauge",
            "Bytes of frames and unread replies the ingest process holds.",
            status.totals.buffered_bytes,
        )
        w.sample(
            "undeliverable_total",
            "counter",
            "Replies that could not be delivered to their peer.",
            status.totals.undeliverable,
        )
    for state, count in sorted((jobs or {}).items()):
        w.sample("jobs", "gauge", "Training jobs by state.", count, {"state": state})
    if models_registered is not None:
        w.sample("models_registered", "gauge", "Models in the registry.", models_registered)
    return "\n".join(w.lines) + "\n"
