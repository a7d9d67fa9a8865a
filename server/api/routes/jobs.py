"""Job endpoints: submit (train or compare), list, inspect, logs, cancel, a comparison's report."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status
from fastapi.responses import FileResponse

from livedenoise.server.api.deps import Authorized, RuntimeDep
from livedenoise.server.api.schemas import JobCreate, JobLogsPublic, JobPublic, JobsPublic
from livedenoise.server.jobs.store import JobKind, JobState

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])


@router.post("", response_model=JobPublic, status_code=status.HTTP_201_CREATED, dependencies=[Authorized])
def submit_job(body: JobCreate, runtime: RuntimeDep) -> JobPublic:
    """Queue a training job or a comparison of methods on a movie under the data root (or an uploaded one)."""
    if body.kind is JobKind.COMPARE:
        job = runtime.jobs.submit_compare(
            body.data,
            methods=body.methods,
            time_budget_s=body.time_budget_s,
            max_latency=body.max_latency,
            config=body.config,
            overrides=body.overrides,
            clean=body.clean,
        )
    else:
        assert body.method is not None  # JobCreate requires it for a train job
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


class _ZipResponse(FileResponse):
    media_type = "application/zip"


# The page is self-contained (inline CSS, the figure as a data: URI, no script): forbid everything else, so a
# report served from the API's origin can never run code there.
_REPORT_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; sandbox"


@router.get(
    "/{job_id}/report",
    response_class=FileResponse,
    responses={200: {"content": {"text/html": {}}, "description": "the self-contained report page"}},
)
def job_report(job_id: str, runtime: RuntimeDep) -> FileResponse:
    """A finished comparison's ``report.html`` (404 for another kind of job, 409 until it has succeeded)."""
    return FileResponse(
        runtime.jobs.report(job_id),
        media_type="text/html; charset=utf-8",
        headers={"Content-Security-Policy": _REPORT_CSP},
    )


@router.get(
    "/{job_id}/report.zip",
    response_class=_ZipResponse,
    responses={200: {"content": {"application/zip": {}}, "description": "the whole report folder"}},
)
def job_report_zip(job_id: str, runtime: RuntimeDep) -> FileResponse:
    """A finished comparison's report folder (page, figure, results.json/csv, models) as one zip archive."""
    path = runtime.jobs.report(job_id, archive=True)
    return _ZipResponse(path, filename=f"{job_id}-compare.zip")
