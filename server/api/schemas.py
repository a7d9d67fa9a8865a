"""Request and response bodies (request shapes are separate from stored records, as in the FastAPI template)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from livedenoise.clients.status import ServedModel
from livedenoise.server.jobs.backend import JobLogs
from livedenoise.server.jobs.data import DataRecord
from livedenoise.server.jobs.store import JobKind, JobRecord, JobState
from livedenoise.server.registry import ModelRecord

__all__ = [
    "ErrorDetail",
    "ErrorBody",
    "HealthPublic",
    "ModelPublic",
    "ModelsPublic",
    "ModelLoaded",
    "JobCreate",
    "JobPublic",
    "JobsPublic",
    "JobLogsPublic",
    "DataPublic",
]


class ErrorDetail(BaseModel):
    code: str
    message: str
    details: list[dict[str, Any]] | None = None


class ErrorBody(BaseModel):
    error: ErrorDetail


class IngestHealthPublic(BaseModel):
    """What the supervisor last saw of the ingest process (it pings every few seconds)."""

    state: Literal["starting", "ok", "busy", "thread_died", "unresponsive", "down"]
    pid: int | None = None
    threads: dict[str, bool] = Field(default_factory=dict, description="router, worker, control: running")
    restarts: int = 0
    detail: str = ""
    checked_at: float = Field(0.0, description="unix time of the last check")


class HealthPublic(BaseModel):
    """``ok`` (HTTP 200) while the control plane runs and the ingest process, where there is one, serves;
    ``degraded`` (HTTP 503) while the ingest process is down, has a dead thread or is being restarted."""

    status: Literal["ok", "degraded"] = "ok"
    version: str
    ingest: IngestHealthPublic | None = None


class ModelPublic(BaseModel):
    id: str
    name: str
    filename: str
    size: int
    sha256: str
    spec: dict[str, Any]
    created: str
    source: str = ""
    active: bool = False

    @classmethod
    def of(cls, record: ModelRecord, active_id: str | None) -> ModelPublic:
        return cls(**record.to_dict(), active=record.id == active_id)


class ModelsPublic(BaseModel):
    models: list[ModelPublic]
    active: str | None


class ModelLoaded(BaseModel):
    model: ModelPublic
    ingest: ServedModel = Field(description="what the ingest process reported about the engine it now serves")


class JobCreate(BaseModel):
    """A job on a movie. ``data`` is a path under the data root or the id of an upload (POST /v1/data).

    ``kind`` ``train`` (the default) trains ``method``; ``compare`` trains ``methods`` (every method when
    omitted) on the movie's even frames, scores them and the classical filters on the odd frames and writes a
    report (GET /v1/jobs/{id}/report).
    """

    model_config = ConfigDict(extra="forbid")

    kind: JobKind = Field(JobKind.TRAIN, description="'train' (one method, a model) or 'compare' (a report)")
    method: str | None = Field(None, description="train: training recipe, e.g. 'deepcad_rt'")
    data: str = Field(description="movie path relative to the data root, or an uploaded data id 'd-…'")
    config: dict[str, Any] = Field(
        default_factory=dict,
        description="training config, flat: the method's own fields and the shared ones (time_budget_s, epochs, lr, seed, …); "
        "validated at submit (livedenoise methods lists the methods). compare: fields for every method",
    )
    activate: bool = Field(False, description="train: serve the model as soon as the job succeeds")
    name: str | None = Field(None, description="train: name of the registered model (default: '<method>-<job id>')")
    methods: list[str] | None = Field(None, description="compare: the methods to compare (default: every method)")
    time_budget_s: float | None = Field(
        None, gt=0, description="compare: seconds for the whole comparison (default: each method's own budget)"
    )
    max_latency: int | None = Field(
        None, ge=0, description="compare: recommend only estimates reading at most this many future frames"
    )
    overrides: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="compare: training fields for one method, {method: {field: value}}"
    )
    clean: str | None = Field(None, description="compare: ground truth of the same shape (adds PSNR and SSIM)")

    @model_validator(mode="after")
    def _fields_of_its_kind(self) -> JobCreate:
        if self.kind is JobKind.TRAIN:
            if self.method is None:
                raise ValueError("field 'method' is required for a train job")
            given = [f for f in _COMPARE_ONLY if f in self.model_fields_set]
        else:
            given = [f for f in _TRAIN_ONLY if f in self.model_fields_set]
        if given:
            other = "compare" if self.kind is JobKind.TRAIN else "train"
            raise ValueError(f"field(s) {', '.join(given)} belong to {other} jobs, not to {self.kind.value} jobs")
        return self


_COMPARE_ONLY = ("methods", "time_budget_s", "max_latency", "overrides", "clean")
_TRAIN_ONLY = ("method", "activate", "name")


class JobPublic(BaseModel):
    id: str
    kind: JobKind = JobKind.TRAIN
    state: JobState
    method: str
    data: str
    config: dict[str, Any]
    activate: bool
    name: str | None
    backend: str
    created: str
    started: str | None
    finished: str | None
    progress: float
    epoch: int | None
    epochs: int | None
    loss: float | None
    model_id: str | None
    activated: bool
    error: str | None
    validation: dict[str, Any] | None = Field(
        None, description="held-out score of the trained model beside the best classical filter's (dB of PSNR gain)"
    )
    progress_detail: dict[str, Any] | None = Field(
        None, description="compare: the method in progress, {method, index (1-based), total, stage, message}"
    )
    result: dict[str, Any] | None = Field(
        None, description="compare: the report's results.json: rows, the filters' scores and the recommendation"
    )

    @classmethod
    def of(cls, record: JobRecord) -> JobPublic:
        fields = record.to_dict()
        fields.pop("backend_ref", None)
        return cls(**fields)


class JobsPublic(BaseModel):
    jobs: list[JobPublic]
    counts: dict[str, int]


class JobLogsPublic(BaseModel):
    id: str
    log: str
    output: str

    @classmethod
    def of(cls, job_id: str, logs: JobLogs) -> JobLogsPublic:
        return cls(id=job_id, log=logs.log, output=logs.output)


class DataPublic(BaseModel):
    id: str
    path: str
    size: int
    sha256: str

    @classmethod
    def of(cls, record: DataRecord) -> DataPublic:
        return cls(**record.to_dict())
