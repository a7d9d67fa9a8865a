"""Request and response bodies (request shapes are separate from stored records, as in the FastAPI template)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from livedenoise.clients.status import ServedModel
from livedenoise.server.jobs.backend import JobLogs
from livedenoise.server.jobs.data import DataRecord
from livedenoise.server.jobs.store import JobRecord, JobState
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
    """A training job. ``data`` is a path under the data root or the id of an upload (POST /v1/data)."""

    model_config = ConfigDict(extra="forbid")

    method: str = Field(description="training recipe, e.g. 'deepcad_rt'")
    data: str = Field(description="movie path relative to the data root, or an uploaded data id 'd-…'")
    config: dict[str, Any] = Field(
        default_factory=dict,
        description="training config, flat: the method's own fields and the shared ones (time_budget_s, epochs, lr, seed, …); "
        "validated at submit (livedenoise methods lists the methods)",
    )
    activate: bool = Field(False, description="serve the model as soon as the job succeeds")
    name: str | None = Field(None, description="name of the registered model (default: '<method>-<job id>')")


class JobPublic(BaseModel):
    id: str
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
