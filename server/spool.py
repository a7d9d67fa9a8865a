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

from livedenoise.server.errors import UploadTooLarge

__all__ = ["Spooled", "spooled"]

_CHUNK = 1 << 20


@dataclass(frozen=True)
class Spooled:
    path: Path
    sha256: str
    size: int


@contextmanager
def spooled(stream: IO[bytes], directory: Path, *, suffix: str = "", max_bytes: int | None = None) -> Iterator[Spooled]:
    """Copy ``stream`` to a temporary file in ``directory`` (same file system, so the caller can
    ``os.replace`` it into place atomically); whatever is still there on exit is removed.

    Raises :class:`UploadTooLarge` as soon as more than ``max_bytes`` arrive (nothing is kept).
    """
    fd, name = tempfile.mkstemp(prefix=".incoming-", suffix=suffix, dir=directory)
    path = Path(name)
    try:
        digest = hashlib.sha256()
        size = 0
        with os.fdopen(fd, "wb") as out:
            while chunk := stream.read(_CHUNK):
                size += len(chunk)
                if max_bytes is not None and size > max_bytes:
                    raise UploadTooLarge(
                        f"upload is larger than the limit of {max_bytes} bytes (LIVEDENOISE_MAX_UPLOAD_BYTES)"
                    )
                digest.update(chunk)
                out.write(chunk)
        yield Spooled(path, digest.hexdigest(), size)
    finally:
        path.unlink(missing_ok=True)
