"""CURVE authentication of the frames and PUB ports (ZeroMQ's ZAP, served by pyzmq's ThreadAuthenticator).

The server holds one key pair; a peer may connect only if its public key file lies in the allow-list folder.
ZAP then stamps every message with the peer's public key (``User-Id``), which is what owns a stream's series.
The allow-list is read at start: restart ingest after adding a client key. The server's own public key is
always on it: the control plane, which holds the server's key pair, watches the PUB port with it (the dashboard's
preview).
"""

from __future__ import annotations

import logging
from typing import Any

import zmq
from zmq.auth.thread import ThreadAuthenticator

from livedenoise.clients.keys import KeyPair, create_key_pair, load_key_pair
from livedenoise.server.settings import ServerSettings

__all__ = ["CurveServer", "peer_key"]

logger = logging.getLogger(__name__)


class CurveServer:
    """The server's key pair and the ZAP handler that checks clients against the allow-list."""

    def __init__(self, context: zmq.Context[Any], settings: ServerSettings) -> None:
        self.keys = _server_keys(settings)
        clients = settings.resolved_curve_clients_dir
        clients.mkdir(parents=True, exist_ok=True)
        allowed = sorted(p.name for p in clients.glob("*.key"))
        self._auth = ThreadAuthenticator(context, log=logging.getLogger("livedenoise.server.ingest.zap"))
        self._auth.start()
        self._auth.configure_curve(domain="*", location=str(clients))
        # The control plane connects with the server's own pair (it has no other), e.g. to watch the PUB port.
        self._auth.certs.setdefault("*", {})[self.keys.public] = True
        logger.info(
            "CURVE on: server key %s, %d allowed client key(s) in %s%s",
            settings.resolved_curve_secret_key, len(allowed), clients,
            "" if allowed else " (none yet: no client can connect until one is added and ingest restarted)",
        )  # fmt: skip

    def secure(self, sock: zmq.Socket[Any]) -> None:
        """Make ``sock`` a CURVE server (before ``bind``)."""
        sock.curve_server = True
        sock.curve_secretkey = self.keys.secret
        sock.curve_publickey = self.keys.public

    def stop(self) -> None:
        self._auth.stop()


def _server_keys(settings: ServerSettings) -> KeyPair:
    path = settings.resolved_curve_secret_key
    if not path.exists() and settings.curve_secret_key is None:  # the default location: create it once
        create_key_pair(path.parent, path.name.removesuffix(".key_secret"))
        logger.warning("created the server's CURVE key pair %s; give clients %s", path, path.with_suffix(".key"))
    return load_key_pair(path)


def peer_key(frame: zmq.Frame) -> str | None:
    """The authenticated public key (Z85) of the peer that sent ``frame``, or None without CURVE."""
    try:
        user = frame.get("User-Id")
    except (zmq.ZMQError, KeyError):
        return None
    return str(user) if user else None
