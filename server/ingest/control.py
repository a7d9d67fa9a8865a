"""Control channel between the control plane and the ingest process (ZeroMQ REQ/REP, JSON, loopback).

Requests are ``{"cmd": <Command>, "secret": <the ingest's secret>, ...}``; every reply is ``{"ok": true, ...}``
or ``{"ok": false, "code": <error code>, "message": <text>}``. The secret is made by the ingest process at start
and handed to its supervisor over the private ready pipe, so another local user who reaches the loopback port
can neither load models nor shut ingest down.

- ``ping``                → ``{"ok": true, "pid": int, "threads": {...}}``
- ``status``              → ``{"ok": true, "status": {...}}`` (see ``IngestService.status``)
- ``load_model`` model_id → ``{"ok": true, "model": {...}}`` once the new engine serves (hot swap); only a
  registered model id (``m-<12 hex>``), opened from the registry folder: never a path
- ``preview`` seconds     → ``{"ok": true, "seconds": float, "pub": str, "instance": str, "authentication": str}``:
  raw preview copies of accepted frames are published on PUB (decimated, see :mod:`.router`) for that long
  (at most 60 s; 0 stops); the reply says where PUB is and whether it takes CURVE keys
- ``shutdown``            → ``{"ok": true}``, then the ingest process flushes and exits
"""

from __future__ import annotations

import json
from enum import Enum
from typing import Any

import zmq

from livedenoise.clients.status import IngestStatus, ServedModel
from livedenoise.server.errors import IngestUnavailable, error_class

__all__ = ["Command", "IngestControlClient"]


class Command(str, Enum):
    PING = "ping"
    STATUS = "status"
    LOAD_MODEL = "load_model"
    PREVIEW = "preview"
    SHUTDOWN = "shutdown"


class IngestControlClient:
    """Blocking REQ client; a fresh socket per call so a timed-out request never wedges the next one."""

    def __init__(
        self, endpoint: str, secret: str, *, timeout_s: float = 10.0, context: zmq.Context[Any] | None = None
    ) -> None:
        self.endpoint = endpoint
        self.secret = secret
        self.timeout_s = timeout_s
        self._ctx = context or zmq.Context.instance()

    def request(self, cmd: Command, timeout_s: float | None = None, **fields: Any) -> dict[str, Any]:
        timeout_ms = int(1000 * (self.timeout_s if timeout_s is None else timeout_s))
        sock = self._ctx.socket(zmq.REQ)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.RCVTIMEO, timeout_ms)
        sock.setsockopt(zmq.SNDTIMEO, timeout_ms)
        try:
            sock.connect(self.endpoint)
            sock.send_json({"cmd": cmd.value, "secret": self.secret, **fields})
            reply = json.loads(sock.recv())
        except zmq.Again:
            raise IngestUnavailable(
                f"ingest process at {self.endpoint} did not answer {cmd.value!r} within {timeout_ms} ms"
            ) from None
        finally:
            sock.close()
        if not reply.get("ok"):
            error = error_class(reply.get("code"))
            raise error(str(reply.get("message", "ingest command failed")), code=reply.get("code"))
        return dict(reply)

    def ping(self, timeout_s: float | None = None) -> dict[str, Any]:
        return self.request(Command.PING, timeout_s)

    def status(self, timeout_s: float | None = None) -> IngestStatus:
        return IngestStatus.from_dict(self.request(Command.STATUS, timeout_s)["status"])

    def preview(self, seconds: float, timeout_s: float | None = None) -> dict[str, Any]:
        """Ask for raw preview copies on PUB for ``seconds``; the reply names the PUB endpoint and its auth."""
        return self.request(Command.PREVIEW, timeout_s, seconds=seconds)

    def load_model(self, model_id: str, timeout_s: float = 120.0) -> ServedModel:
        """Hot-swap the registered model ``model_id`` (from the registry folder) into the ingest process."""
        return ServedModel.from_dict(self.request(Command.LOAD_MODEL, timeout_s, model_id=model_id)["model"])

    def shutdown(self) -> None:
        self.request(Command.SHUTDOWN)
