"""Health: the control plane answers, and the ingest process (as the supervisor last saw it) serves.

Never blocks on the ingest process: it reads the watchdog's latest check, so it answers while a model loads.
"""

from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter, Request, Response

from livedenoise.clients import __version__
from livedenoise.server.api.schemas import HealthPublic, IngestHealthPublic

router = APIRouter(tags=["health"])


@router.get(
    "/v1/health",
    response_model=HealthPublic,
    responses={503: {"model": HealthPublic, "description": "the ingest process is down or being restarted"}},
)
def health(request: Request, response: Response) -> HealthPublic:
    """``ok`` while the control plane runs and the ingest process serves frames; 503 ``degraded`` otherwise."""
    liveness = request.app.state.runtime.liveness
    if liveness is None:  # no supervised ingest process (embedded control plane)
        return HealthPublic(version=__version__)
    seen = liveness.get()
    ingest = IngestHealthPublic(**{**asdict(seen), "state": seen.state.value})
    if not seen.serving:
        response.status_code = 503
        return HealthPublic(status="degraded", version=__version__, ingest=ingest)
    return HealthPublic(version=__version__, ingest=ingest)
