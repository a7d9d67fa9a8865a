"""What the routes act on: settings, registry, jobs and the ingest control client, with the few operations
that span them (serving a model touches the registry and the ingest process together)."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field, fields

from livedenoise.clients.status import ControlStatus, IngestStatus, ServedModel, ServerStatus
from livedenoise.server.errors import IngestUnavailable
from livedenoise.server.ingest.control import IngestControlClient
from livedenoise.server.ingest.liveness import IngestLiveness
from livedenoise.server.jobs.manager import JobManager
from livedenoise.server.registry import ModelRecord, ModelRegistry
from livedenoise.server.settings import ServerSettings

__all__ = ["ModelServing", "Runtime"]

logger = logging.getLogger(__name__)


@dataclass
class ModelServing:
    """What serves models: the registry and the ingest process, changed together under one lock, so
    ``active.json`` always names what the ingest process serves. Jobs activate their models through it."""

    registry: ModelRegistry
    ingest: IngestControlClient | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def require_ingest(self) -> IngestControlClient:
        if self.ingest is None:
            raise IngestUnavailable("this control plane runs without an ingest process")
        return self.ingest

    def load(self, model_id: str) -> tuple[ModelRecord, ServedModel]:
        """Hot-swap ``model_id`` into the ingest process, then mark it active; on failure nothing changes."""
        with self._lock:
            record = self.registry.get(model_id)
            served = self.require_ingest().load_model(model_id)
            self.registry.set_active(model_id)
        logger.info("model %s (%s) is now served", model_id, record.name)
        return record, served

    def delete(self, model_id: str) -> ModelRecord:
        with self._lock:
            return self.registry.delete(model_id)


@dataclass
class Runtime:
    """What the routes act on. Dependencies point one way: routes -> Runtime -> (jobs -> serving, serving)."""

    settings: ServerSettings
    serving: ModelServing
    jobs: JobManager
    liveness: IngestLiveness | None = None  # the supervisor's view of the ingest process, for /v1/health

    @property
    def registry(self) -> ModelRegistry:
        return self.serving.registry

    @property
    def ingest(self) -> IngestControlClient | None:
        return self.serving.ingest

    def load_model(self, model_id: str) -> tuple[ModelRecord, ServedModel]:
        return self.serving.load(model_id)

    def delete_model(self, model_id: str) -> ModelRecord:
        return self.serving.delete(model_id)

    def ingest_status(self) -> IngestStatus:
        return self.serving.require_ingest().status()

    def status(self) -> ServerStatus:
        """The ingest status with the control plane's section."""
        ingest = self.ingest_status()
        control = ControlStatus(
            active_model=self.registry.active_id(), models=len(self.registry.list()), jobs=self.jobs.counts()
        )
        return ServerStatus(**{f.name: getattr(ingest, f.name) for f in fields(ingest)}, control=control)
