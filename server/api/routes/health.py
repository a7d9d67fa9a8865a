"""Liveness: answers as long as the control plane runs (it does not ask the ingest process)."""

from __future__ import annotations

from fastapi import APIRouter

from livedenoise.clients import __version__
from livedenoise.server.api.schemas import HealthPublic

router = APIRouter(tags=["health"])


@router.get("/v1/health", response_model=HealthPublic)
def health() -> HealthPublic:
    """The control plane is up."""
    return HealthPublic(version=__version__)
