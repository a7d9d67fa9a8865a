"""Where a server keeps its state and its API token on this machine.

``serve`` creates a random token on first start when ``LIVEDENOISE_API_TOKEN`` is not set and writes it, 0600,
to ``HOME/api_token``; the user who runs the server reads it from there (``read_token``) and hands it to clients.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

__all__ = ["TOKEN_FILE", "default_home", "read_token", "ensure_token"]

TOKEN_FILE = "api_token"


def default_home() -> Path:
    """``LIVEDENOISE_HOME``, else the per-user data directory (XDG on Linux), so two users never share state."""
    explicit = os.environ.get("LIVEDENOISE_HOME")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "livedenoise"


def read_token(home: Path | None = None) -> str | None:
    """The token a local server wrote, or None (no file, or not readable by this user)."""
    path = (home or default_home()) / TOKEN_FILE
    try:
        token = path.read_text().strip()
    except OSError:
        return None
    return token or None


def ensure_token(home: Path) -> str:
    """The token in ``home``, created (random, 0600) when there is none."""
    existing = read_token(home)
    if existing is not None:
        return existing
    home.mkdir(parents=True, exist_ok=True)
    path = home / TOKEN_FILE
    token = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(token + "\n")
    return token
