"""Training job endpoints: submit, list, inspect, logs, cancel."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from livedenoise.server.api.deps import Authorized, RuntimeDep
from livedenoise.server.api.schemas import JobCreate, JobLogsPublic, JobPublic, JobsPublic
from livedenoise.server.jobs.store import JobState

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])


@router.post("", response_model=JobPublic, status_code=status.HTTP_201_CREATED, dependencies=[Authorized])
def submit_job(body: JobCreate, runtime: RuntimeDep) -> JobPublic:
    """Queue a training job on a movie under the data root (or an uploaded one)."""
    job = runtime.jobs.submit(body.method, body.data, body.config, activate=body.activate, name=body.name)
    return JobPublic.of(runtime.jobs.get(job.id))


@router.get("", response_model=JobsPublic)
def list_jobs(
    runtime: RuntimeDep,
    state: Annotated[JobState | None, Query(description="only jobs in this state")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> JobsPublic:
    """Jobs, newest first, with counts by state."""
    return JobsPublic(jobs=[JobPublic.of(j) for j in runtime.jobs.list(state, limit)], counts=runtime.jobs.counts())


@router.get("/{job_id}", response_model=JobPublic)
def get_job(job_id: str, runtime: RuntimeDep) -> JobPublic:
    """State, progress (fraction, epoch, loss), resulting model and error of one job."""
    return JobPublic.of(runtime.jobs.get(job_id))


@router.get("/{job_id}/logs", response_model=JobLogsPublic)
def job_logs(job_id: str, runtime: RuntimeDep, tail: Annotated[int, Query(ge=1, le=100_000)] = 200) -> JobLogsPublic:
    """The last ``tail`` lines of the trainer log and of the process output."""
    return JobLogsPublic.of(job_id, runtime.jobs.logs(job_id, tail))


@router.post("/{job_id}/cancel", response_model=JobPublic, dependencies=[Authorized])
def cancel_job(job_id: str, runtime: RuntimeDep) -> JobPublic:
    """Cancel a queued or running job; returns once its process has stopped."""
    return JobPublic.of(runtime.jobs.cancel(job_id))
