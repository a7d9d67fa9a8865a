"""Receive an upload into a temporary file beside its destination, hashing it on the way."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

__all__ = ["Spooled", "spooled"]

_CHUNK = 1 << 20


@dataclass(frozen=True)
class Spooled:
    path: Path
    sha256: str
    size: int


@contextmanager
def spooled(stream: IO[bytes], directory: Path, *, suffix: str = "") -> Iterator[Spooled]:
    """Copy ``stream`` to a temporary file in ``directory`` (same file system, so the caller can
    ``os.replace`` it into place atomically); whatever is still there on exit is removed."""
    fd, name = tempfile.mkstemp(prefix=".incoming-", suffix=suffix, dir=directory)
    path = Path(name)
    try:
        digest = hashlib.sha256()
        size = 0
        with os.fdopen(fd, "wb") as out:
            while chunk := stream.read(_CHUNK):
                digest.update(chunk)
                out.write(chunk)
                size += len(chunk)
        yield Spooled(path, digest.hexdigest(), size)
    finally:
        path.unlink(missing_ok=True)
