"""The control plane: ``create_app(settings, ...)`` builds a FastAPI app around a registry, a job manager
and an ingest control client. No module globals: every app owns what it was given or built."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.routing import APIRoute

from livedenoise.clients import __version__
from livedenoise.server.api.errors import install_error_handlers
from livedenoise.server.api.guard import RequestGuard
from livedenoise.server.api.history import StatusHistory
from livedenoise.server.api.preview import PreviewHub
from livedenoise.server.api.routes import dashboard, data, health, models, status
from livedenoise.server.api.routes import jobs as jobs_routes
from livedenoise.server.api.runtime import ModelServing, Runtime
from livedenoise.server.ingest.control import IngestControlClient
from livedenoise.server.ingest.liveness import IngestLiveness
from livedenoise.server.jobs.manager import JobManager
from livedenoise.server.registry import ModelRegistry
from livedenoise.server.settings import ServerSettings

__all__ = ["create_app"]

logger = logging.getLogger(__name__)

# The dashboard's status sampler gives up on one sample after this long (a model load holds the control channel).
HISTORY_TIMEOUT_S = 2.0


def _operation_id(route: APIRoute) -> str:
    # Clean names for generated clients (FastAPI template's custom_generate_unique_id).
    return f"{route.tags[0]}-{route.name}" if route.tags else route.name


def create_app(
    settings: ServerSettings,
    ingest: IngestControlClient | None = None,
    registry: ModelRegistry | None = None,
    jobs: JobManager | None = None,
    liveness: IngestLiveness | None = None,
) -> FastAPI:
    """Build the control-plane app.

    Parameters
    ----------
    settings
        Server settings (home, data root, token).
    ingest
        Control client of the ingest process; without one, status and model loading answer 503.
    registry, jobs
        Injected instances; by default they are built from ``settings``. A job manager built here is
        started and closed (running jobs stopped) with the app's lifespan; an injected one is the caller's.
    liveness
        The supervisor's view of the ingest process, reported by ``/v1/health``.
    """
    settings.ensure_dirs()
    registry = registry or ModelRegistry(settings.models_dir, max_bytes=settings.max_upload_bytes)
    owns_jobs = jobs is None
    serving = ModelServing(registry, ingest)
    if jobs is None:
        jobs = JobManager(settings, registry, on_activate=serving.load)
    runtime = Runtime(settings=settings, serving=serving, jobs=jobs, liveness=liveness)
    # The dashboard's charts and preview: a status sampler and a PUB subscriber, both beside the frame path.
    history = preview = None
    if ingest is not None:
        client = ingest
        history = StatusHistory(lambda: client.status(timeout_s=HISTORY_TIMEOUT_S))
        preview = PreviewHub(client, settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime.jobs.start()
        if history is not None and preview is not None:
            history.start()
            preview.start()
        logger.info("control plane ready (home %s, data root %s)", settings.home, settings.resolved_data_root)
        try:
            yield
        finally:
            if history is not None and preview is not None:
                await asyncio.to_thread(history.stop)
                await asyncio.to_thread(preview.stop)
            if owns_jobs:
                # Stopping running jobs waits for their processes: keep the event loop free meanwhile.
                await asyncio.to_thread(runtime.jobs.close)

    app = FastAPI(
        title="livedenoise control plane",
        version=__version__,
        lifespan=lifespan,
        generate_unique_id_function=_operation_id,
    )
    app.state.runtime = runtime
    app.state.history = history
    app.state.preview = preview
    app.add_middleware(RequestGuard, settings=settings)
    install_error_handlers(app)
    for module in (health, status, models, jobs_routes, data, dashboard):
        app.include_router(module.router)
    return app
