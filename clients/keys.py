"""CURVE key pairs for ZeroMQ authentication (``livedenoise keys``), and how a client socket uses them.

A key pair is two files, as ZeroMQ's own tools write them: ``NAME.key`` (the public key, safe to copy to the
server's allow-list) and ``NAME.key_secret`` (public and secret key; keep it private, mode 0600). A server
has one pair; every client has its own, and the server accepts exactly the clients whose public key files lie
in its allow-list folder (``LIVEDENOISE_CURVE_CLIENTS_DIR``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import zmq
import zmq.auth

__all__ = ["KeyPair", "ClientKeys", "create_key_pair", "load_public_key", "load_key_pair"]


@dataclass(frozen=True)
class KeyPair:
    public: bytes  # Z85, 40 characters
    secret: bytes  # Z85, 40 characters


@dataclass(frozen=True)
class ClientKeys:
    """What a client needs to reach a CURVE server: the server's public key and its own pair."""

    server_public: bytes
    client: KeyPair

    @classmethod
    def from_files(cls, server_key: str | Path, client_key: str | Path) -> ClientKeys:
        """``server_key``: the server's ``.key`` (public) file; ``client_key``: this client's ``.key_secret``."""
        return cls(load_public_key(server_key), load_key_pair(client_key))

    def apply(self, sock: zmq.Socket[Any]) -> None:
        """Make ``sock`` a CURVE client of the server (before ``connect``)."""
        sock.curve_serverkey = self.server_public
        sock.curve_publickey = self.client.public
        sock.curve_secretkey = self.client.secret


def create_key_pair(directory: str | Path, name: str) -> tuple[Path, Path]:
    """Write ``name.key`` and ``name.key_secret`` (0600) into ``directory``; refuses to overwrite a pair."""
    if not name or "/" in name or name.startswith("."):
        raise ValueError(f"key name {name!r} must be a plain file name")
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    public, secret = folder / f"{name}.key", folder / f"{name}.key_secret"
    for path in (public, secret):
        if path.exists():
            raise FileExistsError(f"{path} exists; choose another name or remove it first")
    old = os.umask(0o077)  # the secret file is never readable by others, not even briefly
    try:
        made_public, made_secret = zmq.auth.create_certificates(str(folder), name)
    finally:
        os.umask(old)
    os.chmod(made_public, 0o644)
    os.chmod(made_secret, 0o600)
    return Path(made_public), Path(made_secret)


def load_public_key(path: str | Path) -> bytes:
    """The public key of a ``.key`` or ``.key_secret`` file; errors name the file."""
    public, _ = _load(path)
    return public


def load_key_pair(path: str | Path) -> KeyPair:
    """Both keys of a ``.key_secret`` file; errors name the file and what is missing."""
    public, secret = _load(path)
    if secret is None:
        raise ValueError(f"{path} holds no secret key: pass the .key_secret file of the pair")
    return KeyPair(public, secret)


def _load(path: str | Path) -> tuple[bytes, bytes | None]:
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"key file {p} does not exist (create a pair with `livedenoise keys create`)")
    try:
        public, secret = zmq.auth.load_certificate(str(p))
    except (ValueError, OSError) as exc:
        raise ValueError(f"{p} is not a ZeroMQ CURVE key file: {exc}") from None
    if public is None or len(public) != 40:
        raise ValueError(f"{p} holds no valid public key")
    return public, secret
