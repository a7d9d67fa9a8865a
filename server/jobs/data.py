"""Training data: paths confined to the data root, and uploads stored under it.

A job names its movie either as a path (relative to the data root, or absolute but inside it) or as the
id of an upload (``d-`` + 12 hex digits of its sha256, kept in ``<data root>/uploads/``). Paths are
resolved with symlinks followed, so neither ``..`` nor a symlink can reach outside the root.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

from livedenoise.server.errors import InvalidRequest
from livedenoise.server.spool import spooled

__all__ = ["DataRecord", "TrainingData", "MOVIE_SUFFIXES", "movie_suffix"]

logger = logging.getLogger(__name__)

MOVIE_SUFFIXES = (".npy", ".tif", ".tiff", ".zarr", ".zarr.zip")
# An OME-Zarr movie is a folder; zipped (one file) it can be uploaded too.
_FOLDER_SUFFIXES = (".zarr",)
_UPLOAD_SUFFIXES = (".npy", ".tif", ".tiff", ".zarr.zip")


def movie_suffix(name: str, allowed: tuple[str, ...] = MOVIE_SUFFIXES) -> str | None:
    """The movie suffix ``name`` ends with (the longest that matches, case-insensitive), or ``None``."""
    lower = name.lower()
    return next((s for s in sorted(allowed, key=len, reverse=True) if lower.endswith(s)), None)


def _escapes(folder: Path, root: Path) -> Path | None:
    """The first entry under ``folder`` that is a symlink leading outside ``root`` (a store must not)."""
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in (*dirnames, *filenames):
            entry = Path(dirpath) / name
            if entry.is_symlink() and not entry.resolve().is_relative_to(root):
                return entry
    return None


_UPLOAD_ID = re.compile(r"^d-[0-9a-f]{12}$")


@dataclass(frozen=True)
class DataRecord:
    id: str
    path: str  # relative to the data root
    size: int
    sha256: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class TrainingData:
    """The data root: resolves what a job may read and stores uploads."""

    def __init__(self, root: Path, *, max_bytes: int | None = None) -> None:
        self.root = Path(root)
        self.max_bytes = max_bytes
        self.root.mkdir(parents=True, exist_ok=True)
        self.uploads = self.root / "uploads"

    def resolve(self, value: str) -> Path:
        """The real path of the movie ``value`` names; raises :class:`InvalidRequest` naming the problem."""
        if not isinstance(value, str) or not value.strip():
            raise InvalidRequest(
                "field 'data' must be a path under the data root or an uploaded data id, got an empty value"
            )
        root = self.root.resolve()
        if _UPLOAD_ID.match(value):
            matches = sorted(self.uploads.glob(f"{value}.*")) if self.uploads.is_dir() else []
            if not matches:
                raise InvalidRequest(f"no uploaded data with id {value!r} (upload it with POST /v1/data)")
            return matches[0].resolve()
        candidate = Path(value)
        if not candidate.is_absolute():
            candidate = root / candidate
        try:
            # Non-strict first, so a path outside the root is refused without revealing whether it exists.
            resolved = candidate.resolve()
        except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop
            raise InvalidRequest(f"data {value!r} cannot be resolved: {exc}") from None
        if not resolved.is_relative_to(root):
            raise InvalidRequest(
                f"data {value!r} resolves outside the data root {str(root)!r}; training data must live under it"
            )
        if not resolved.exists():
            raise InvalidRequest(f"data {value!r} does not exist under the data root {str(root)!r}")
        suffix = movie_suffix(resolved.name)
        if suffix in _FOLDER_SUFFIXES:
            if not resolved.is_dir():
                raise InvalidRequest(f"data {value!r} is not a folder; an OME-Zarr movie is a .zarr folder")
            escape = _escapes(resolved, root)
            if escape is not None:
                raise InvalidRequest(f"data {value!r} holds a symlink leading outside the data root: {escape.name!r}")
            return resolved
        if not resolved.is_file():
            raise InvalidRequest(f"data {value!r} is not a file")
        if suffix is None:
            raise InvalidRequest(
                f"data {value!r} has suffix {resolved.suffix!r}; expected one of {list(MOVIE_SUFFIXES)}"
            )
        return resolved

    def store_upload(self, stream: IO[bytes], filename: str) -> DataRecord:
        """Store an uploaded movie under ``uploads/`` by content id; a duplicate returns the same id."""
        suffix = movie_suffix(Path(filename or "").name, _UPLOAD_SUFFIXES)
        if suffix is None:
            raise InvalidRequest(
                f"uploaded file {filename!r} must end in one of {list(_UPLOAD_SUFFIXES)} "
                "(zip an OME-Zarr folder to upload it)"
            )
        self.uploads.mkdir(parents=True, exist_ok=True)
        with spooled(stream, self.uploads, suffix=suffix, max_bytes=self.max_bytes) as upload:
            if upload.size == 0:
                raise InvalidRequest(f"uploaded file {filename!r} is empty")
            size, sha = upload.size, upload.sha256
            data_id = "d-" + sha[:12]
            final = self.uploads / f"{data_id}{suffix}"
            if not final.exists():
                os.replace(upload.path, final)
                logger.info("stored training data %s (%s, %d bytes)", data_id, filename, size)
        return DataRecord(id=data_id, path=str(final.relative_to(self.root)), size=size, sha256=sha)
