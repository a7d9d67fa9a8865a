"""The server's status as typed wire records: built by the ingest process, sent over its control channel, served
by ``GET /v1/status`` (its response model), read by :class:`~livedenoise.clients.control.ControlClient` and
rendered by the Prometheus page. One definition for all four, in ``clients/`` because both sides import it.

Plain dataclasses (the client install has no pydantic); ``to_dict``/``from_dict`` are the JSON form. ``from_dict``
names the field it cannot read.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, TypeVar

__all__ = [
    "StatusError",
    "WindowInfo",
    "ServedModel",
    "Endpoints",
    "LatencyHistogram",
    "StreamStatus",
    "Totals",
    "IngestStatus",
    "ControlStatus",
    "ServerStatus",
]

T = TypeVar("T")


class StatusError(ValueError):
    """A status document does not have the shape this version reads; the message names the field."""


def _get(obj: dict[str, Any], name: str, kind: type[T] | tuple[type, ...], where: str, default: Any = ...) -> Any:
    if name not in obj or obj[name] is None:
        if default is not ...:
            return default
        raise StatusError(f"status field '{where}.{name}' is missing")
    value = obj[name]
    if isinstance(value, bool) and kind in (int, float, (int, float)):
        raise StatusError(f"status field '{where}.{name}' is a boolean, expected a number")
    if not isinstance(value, kind):
        raise StatusError(f"status field '{where}.{name}' has type {type(value).__name__}")
    return value


@dataclass(frozen=True)
class WindowInfo:
    before: int
    after: int
    out_frames: int
    spatial_multiple: int

    @classmethod
    def from_dict(cls, obj: dict[str, Any]) -> WindowInfo:
        return cls(**{f.name: int(_get(obj, f.name, int, "model.window")) for f in fields(cls)})


@dataclass(frozen=True)
class ServedModel:
    id: str
    method: str
    window: WindowInfo
    path: str | None = None
    #: Estimates a series may pick with ``start.meta.estimate``, default first (empty: the model's one output).
    estimates: list[str] = field(default_factory=list)

    @classmethod
    def from_dict(cls, obj: dict[str, Any]) -> ServedModel:
        return cls(
            id=_get(obj, "id", str, "model"),
            method=_get(obj, "method", str, "model"),
            window=WindowInfo.from_dict(_get(obj, "window", dict, "model")),
            path=_get(obj, "path", str, "model", None),
            estimates=[str(e) for e in _get(obj, "estimates", list, "model", [])],
        )


@dataclass(frozen=True)
class Endpoints:
    frames: str
    pub: str
    control: str


@dataclass(frozen=True)
class LatencyHistogram:
    """Every frame latency since the stream appeared, counted in fixed buckets (ms): ``counts[i]`` frames took at
    most ``bounds_ms[i]`` and more than the bound before; the last count is above the last bound."""

    bounds_ms: list[float]
    counts: list[int]
    sum_ms: float
    count: int

    @classmethod
    def from_dict(cls, obj: dict[str, Any], where: str) -> LatencyHistogram:
        bounds = [float(b) for b in _get(obj, "bounds_ms", list, where)]
        counts = [int(c) for c in _get(obj, "counts", list, where)]
        if len(counts) != len(bounds) + 1 or bounds != sorted(bounds):
            raise StatusError(f"status field '{where}' needs increasing bounds_ms and one more count than bounds")
        return cls(
            bounds_ms=bounds,
            counts=counts,
            sum_ms=float(_get(obj, "sum_ms", (int, float), where)),
            count=int(_get(obj, "count", int, where)),
        )


@dataclass(frozen=True)
class StreamStatus:
    """One stream (camera): its latest series, counters, rates and latency quantiles (ms; None before data)."""

    series: str | None
    mode: str | None
    shape: list[int] | None
    dtype: str | None
    open: bool
    frames_in: int
    frames_out: int
    skipped: int
    errors: int
    rejected: int
    series_started: int
    backlog: int
    fps_in: float
    fps_out: float
    latency_ms_p50: float | None
    latency_ms_p99: float | None
    #: Absent from servers before it was reported.
    latency_histogram: LatencyHistogram | None = None

    @classmethod
    def from_dict(cls, obj: dict[str, Any], stream: str = "") -> StreamStatus:
        where = f"streams.{stream}"
        histogram = _get(obj, "latency_histogram", dict, where, None)
        return cls(
            series=_get(obj, "series", str, where, None),
            mode=_get(obj, "mode", str, where, None),
            shape=list(_get(obj, "shape", list, where, None) or []) or None,
            dtype=_get(obj, "dtype", str, where, None),
            open=bool(_get(obj, "open", bool, where)),
            **{name: int(_get(obj, name, int, where)) for name in _STREAM_INTS},
            fps_in=float(_get(obj, "fps_in", (int, float), where)),
            fps_out=float(_get(obj, "fps_out", (int, float), where)),
            latency_ms_p50=_optional_float(obj, "latency_ms_p50", where),
            latency_ms_p99=_optional_float(obj, "latency_ms_p99", where),
            latency_histogram=(
                None if histogram is None else LatencyHistogram.from_dict(histogram, f"{where}.latency_histogram")
            ),
        )


_STREAM_INTS = ("frames_in", "frames_out", "skipped", "errors", "rejected", "series_started", "backlog")


def _optional_float(obj: dict[str, Any], name: str, where: str) -> float | None:
    value = _get(obj, name, (int, float), where, None)
    return None if value is None else float(value)


@dataclass(frozen=True)
class Totals:
    """All streams together, since the ingest process started."""

    accepted_messages: int
    frames_in: int
    frames_out: int
    skipped: int
    errors: int
    rejected: int
    batches: int
    undeliverable: int
    expired_series: int
    active_streams: int
    buffered_bytes: int
    rejected_by_code: dict[str, int] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, obj: dict[str, Any]) -> Totals:
        counts = {f.name: int(_get(obj, f.name, int, "totals")) for f in fields(cls) if f.name != "rejected_by_code"}
        by_code = _get(obj, "rejected_by_code", dict, "totals", {})
        return cls(**counts, rejected_by_code={str(k): int(v) for k, v in by_code.items()})


@dataclass(frozen=True)
class IngestStatus:
    """What the ingest process reports about itself."""

    pid: int
    instance: str
    model: ServedModel | None
    provider: str
    uptime_s: float
    endpoints: Endpoints
    threads: dict[str, bool]
    authentication: str
    streams: dict[str, StreamStatus]
    totals: Totals
    precision: str  # the engine's arithmetic: fp32, or fp16 (TensorRT) / bf16 (OpenVINO) under `auto`

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, obj: dict[str, Any]) -> IngestStatus:
        return cls(**_ingest_fields(obj))


def _ingest_fields(obj: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise StatusError(f"a status is a JSON object, got {type(obj).__name__}")
    model = _get(obj, "model", dict, "status", None)
    streams = _get(obj, "streams", dict, "status")
    return {
        "pid": int(_get(obj, "pid", int, "status")),
        "instance": _get(obj, "instance", str, "status"),
        "model": ServedModel.from_dict(model) if model is not None else None,
        "provider": _get(obj, "provider", str, "status"),
        "uptime_s": float(_get(obj, "uptime_s", (int, float), "status")),
        "endpoints": Endpoints(
            **{
                k: str(_get(_get(obj, "endpoints", dict, "status"), k, str, "endpoints"))
                for k in ("frames", "pub", "control")
            }
        ),
        "threads": {str(k): bool(v) for k, v in _get(obj, "threads", dict, "status").items()},
        "authentication": _get(obj, "authentication", str, "status"),
        "streams": {str(k): StreamStatus.from_dict(v, str(k)) for k, v in streams.items()},
        "totals": Totals.from_dict(_get(obj, "totals", dict, "status")),
        "precision": _get(obj, "precision", str, "status", "fp32"),  # absent from servers before it was reported
    }


@dataclass(frozen=True)
class ControlStatus:
    """The control plane's own view: the registry's active model, registered models, jobs by state."""

    active_model: str | None
    models: int
    jobs: dict[str, int]


@dataclass(frozen=True)
class ServerStatus(IngestStatus):
    """``GET /v1/status``: the ingest process' status plus the control plane's section."""

    control: ControlStatus | None = None

    @classmethod
    def from_dict(cls, obj: dict[str, Any]) -> ServerStatus:
        control = _get(obj, "control", dict, "status", None)
        section = None
        if control is not None:
            section = ControlStatus(
                active_model=_get(control, "active_model", str, "control", None),
                models=int(_get(control, "models", int, "control")),
                jobs={str(k): int(v) for k, v in _get(control, "jobs", dict, "control").items()},
            )
        return cls(**_ingest_fields(obj), control=section)
