"""The REP side of the ingest control channel (client and reply shapes: :mod:`.control`)."""

from __future__ import annotations

import hmac
import logging
import os
import threading
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

import zmq

from livedenoise.clients.protocol import ProtocolError, encode_json, parse_json
from livedenoise.server.errors import LiveDenoiseError
from livedenoise.server.ingest.control import Command
from livedenoise.server.registry import MODEL_ID_PATTERN

if TYPE_CHECKING:
    from livedenoise.server.ingest.service import IngestService

__all__ = ["ControlServer"]

logger = logging.getLogger(__name__)

POLL_MS = 100


class ControlServer:
    """Answers ``ping``/``status``/``load_model``/``preview``/``shutdown`` on a bound REP socket, in its own thread.

    ``load_model`` runs here (not in the router or the worker): the new engine is opened beside the
    serving one, and the reply is sent once the worker has switched to it.
    """

    def __init__(self, service: IngestService, socket: zmq.Socket[Any]) -> None:
        self.service = service
        self.socket = socket
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ingest-control", daemon=True)

    def start(self) -> None:
        self._thread.start()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout_s)

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                if not self.socket.poll(POLL_MS):
                    continue
                # REP must answer every request it reads, whatever it holds: read all its parts first.
                parts = self.socket.recv_multipart()
                if len(parts) != 1:
                    reply = _error("invalid_request", f"a control request is one JSON part; got {len(parts)} parts")
                else:
                    reply = self.handle(parts[0])
                self.socket.send(encode_json(reply))
        finally:
            self.socket.close(linger=500)

    def handle(self, raw: bytes) -> dict[str, Any]:
        """One request → one reply dict (never raises)."""
        try:
            request = parse_json(raw, "control request")
        except ProtocolError as exc:
            return _error("invalid_request", exc.message)
        if not isinstance(request, dict):
            return _error("invalid_request", "control request must be a JSON object")
        secret = request.get("secret")
        if not isinstance(secret, str) or not hmac.compare_digest(
            secret.encode(), self.service.control_secret.encode()
        ):
            return _error("unauthorized", "control requests need the ingest process' secret")
        try:
            cmd = Command(request.get("cmd"))
        except ValueError:
            return _error(
                "invalid_request", f"unknown command {request.get('cmd')!r}; known: {[c.value for c in Command]}"
            )
        try:
            if cmd is Command.PING:
                return {"ok": True, "pid": os.getpid(), "threads": self.service.threads()}
            if cmd is Command.STATUS:
                return {"ok": True, "status": self.service.status().to_dict()}
            if cmd is Command.LOAD_MODEL:
                model_id = request.get("model_id")
                if not isinstance(model_id, str) or not MODEL_ID_PATTERN.match(model_id):
                    return _error(
                        "invalid_request", "load_model needs 'model_id', a registered model id (m-<12 hex digits>)"
                    )
                return {"ok": True, "model": asdict(self.service.load_registered(model_id))}
            if cmd is Command.PREVIEW:
                seconds = request.get("seconds")
                if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not seconds >= 0:
                    return _error("invalid_request", "preview needs 'seconds', a number >= 0")
                return {"ok": True, **self.service.preview_raw(float(seconds))}
            self.service.request_shutdown()
            return {"ok": True}
        except LiveDenoiseError as exc:
            logger.warning("control %s failed: %s", cmd.value, exc.message)
            return _error(exc.code, exc.message)
        except Exception as exc:  # the control plane must get an answer, whatever went wrong
            logger.exception("control %s failed", cmd.value)
            return _error("internal", f"{cmd.value} failed: {exc!r}")


def _error(code: str, message: str) -> dict[str, Any]:
    return {"ok": False, "code": code, "message": message}
