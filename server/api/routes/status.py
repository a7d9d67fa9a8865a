"""Serving state: ``/v1/status`` (JSON, from the ingest control channel) and ``/metrics`` (Prometheus)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse

from livedenoise.clients.status import IngestStatus, ServerStatus
from livedenoise.server.api.deps import RuntimeDep
from livedenoise.server.errors import IngestUnavailable
from livedenoise.server.prometheus import CONTENT_TYPE, render_metrics

router = APIRouter(tags=["status"])


@router.get("/v1/status", response_model=ServerStatus)
def status(runtime: RuntimeDep) -> ServerStatus:
    """Ingest state (streams, rates, latency, counters, model, provider, threads) plus the control plane's view."""
    return runtime.status()


@router.get("/metrics", response_class=PlainTextResponse)
def metrics(runtime: RuntimeDep) -> PlainTextResponse:
    """Prometheus text exposition; still answers (with ``livedenoise_ingest_up 0``) when ingest is down."""
    try:
        ingest: IngestStatus | None = runtime.ingest_status()
    except IngestUnavailable:
        ingest = None
    text = render_metrics(ingest, jobs=runtime.jobs.counts(), models_registered=len(runtime.registry.list()))
    return PlainTextResponse(text, media_type=CONTENT_TYPE)
