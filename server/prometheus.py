"""Prometheus text exposition (format 0.0.4) rendered from the ingest status dict and the control plane's state.

No client library: the status dict already holds every number, so this is a pure function from dicts to
text. Per-stream counters become ``*_total`` counters labelled ``stream``; rates and latency quantiles
are gauges; ``livedenoise_ingest_up`` says whether the ingest process answered at all.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

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
_QUANTILES = (("p50", "0.5"), ("p99", "0.99"))


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


def _quantile(stream: Mapping[str, Any], key: str) -> Any:
    """Latency quantile ``key`` (p50/p99) whether the status nests it or flattens it."""
    nested = stream.get("latency_ms")
    if isinstance(nested, Mapping) and key in nested:
        return nested[key]
    return stream.get(f"latency_ms_{key}")


def _streams(status: Mapping[str, Any]) -> Iterable[tuple[str, Mapping[str, Any]]]:
    streams = status.get("streams") or {}
    if isinstance(streams, Mapping):
        return [(str(k), v) for k, v in sorted(streams.items()) if isinstance(v, Mapping)]
    if isinstance(streams, list):  # a list of dicts carrying their own id
        return [(str(s.get("stream", s.get("id", i))), s) for i, s in enumerate(streams) if isinstance(s, Mapping)]
    return []


def _model_id(status: Mapping[str, Any]) -> str | None:
    model = status.get("model")
    if isinstance(model, Mapping):
        value = model.get("id") or model.get("model_id")
        return str(value) if value else None
    return str(model) if model else None


def render_metrics(
    status: Mapping[str, Any] | None,
    *,
    jobs: Mapping[str, int] | None = None,
    models_registered: int | None = None,
) -> str:
    """Render the metrics page.

    Parameters
    ----------
    status
        The ingest status dict, or None when the ingest process did not answer (``ingest_up`` is then 0).
    jobs
        Job counts by state.
    models_registered
        Number of models in the registry.
    """
    w = _Writer()
    w.sample("ingest_up", "gauge", "1 if the ingest process answered its control channel.", 1 if status is not None else 0)
    if status is not None:
        model_id = _model_id(status)
        w.sample("model_loaded", "gauge", "1 if the ingest process serves a model.", 1 if model_id else 0)
        if model_id:
            info = {"model_id": model_id, "provider": str(status.get("provider", ""))}
            w.sample("model_info", "gauge", "The served model and execution provider (value is always 1).", 1, info)
        for source_key, name, help_text in _STREAM_COUNTERS:
            for stream_id, stream in _streams(status):
                w.sample(name, "counter", help_text, stream.get(source_key), {"stream": stream_id})
        for source_key, name, help_text in _STREAM_GAUGES:
            for stream_id, stream in _streams(status):
                w.sample(name, "gauge", help_text, stream.get(source_key), {"stream": stream_id})
        for stream_id, stream in _streams(status):
            for key, quantile in _QUANTILES:
                w.sample(
                    "latency_ms",
                    "gauge",
                    "Frame latency in ms (arrival to reply), recent quantiles.",
                    _quantile(stream, key),
                    {"stream": stream_id, "quantile": quantile},
                )
        w.sample("streams", "gauge", "Streams the ingest process currently tracks.", len(list(_streams(status))))
        totals = status.get("totals")
        by_code = totals.get("rejected_by_code") if isinstance(totals, Mapping) else None
        for code, count in sorted((by_code or {}).items()):
            w.sample("rejected_total", "counter", "Messages rejected, by error code (all streams).", count, {"code": str(code)})
    for state, count in sorted((jobs or {}).items()):
        w.sample("jobs", "gauge", "Training jobs by state.", count, {"state": state})
    if models_registered is not None:
        w.sample("models_registered", "gauge", "Models in the registry.", models_registered)
    return "\n".join(w.lines) + "\n"
