"""Serving state: ``/v1/status`` (JSON, from the ingest control channel) and ``/metrics`` (Prometheus)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse

from livedenoise.server.api.deps import RuntimeDep
from livedenoise.server.errors import IngestUnavailable
from livedenoise.server.prometheus import CONTENT_TYPE, render_metrics

router = APIRouter(tags=["status"])


@router.get("/v1/status")
def status(runtime: RuntimeDep) -> dict[str, Any]:
    """Ingest state (streams, rates, latency, counters, model, provider) plus the control plane's view."""
    ingest = runtime.ingest_status()
    return {
        **ingest,
        "control": {
            "active_model": runtime.registry.active_id(),
            "models": len(runtime.registry.list()),
            "jobs": runtime.jobs.counts(),
        },
    }


@router.get("/metrics", response_class=PlainTextResponse)
def metrics(runtime: RuntimeDep) -> PlainTextResponse:
    """Prometheus text exposition; still answers (with ``livedenoise_ingest_up 0``) when ingest is down."""
    try:
        ingest: dict[str, Any] | None = runtime.ingest_status()
    except IngestUnavailable:
        ingest = None
    text = render_metrics(ingest, jobs=runtime.jobs.counts(), models_registered=len(runtime.registry.list()))
    return PlainTextResponse(text, media_type=CONTENT_TYPE)
