"""Model registry: validated ONNX files on disk, addressed by content, plus the persisted active model.

Layout of ``models_dir``::

    m-<sha12>.onnx     the model, stored under its content id (a duplicate upload returns the same id)
    m-<sha12>.json     its record (name, original file name, size, sha256, spec, created)
    active.json        {"model_id": ...}: the model the ingest process should serve

Every file is written to a temporary name in ``models_dir`` first and renamed, so a crash never
leaves a half-written model under a real id. A file is validated (ONNX Runtime opens it and its
embedded :class:`~livedenoise.clients.model_spec.ModelSpec` parses) before anything is stored.
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
import threading
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from livedenoise.clients.model_spec import ModelSpec
from livedenoise.server.errors import Conflict, InvalidModel, UnknownModel
from livedenoise.server.spool import spooled

__all__ = ["ModelRecord", "ModelRegistry", "validate_model_file", "MODEL_ID_PATTERN"]

logger = logging.getLogger(__name__)

MODEL_ID_PATTERN = re.compile(r"^m-[0-9a-f]{12}$")
_ACTIVE_FILE = "active.json"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class ModelRecord:
    """One registered model. ``filename`` is the stored file in ``models_dir``; ``source`` the uploaded name."""

    id: str
    name: str
    filename: str
    size: int
    sha256: str
    spec: dict[str, Any]
    created: str
    source: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, obj: dict[str, Any]) -> ModelRecord:
        return cls(
            id=str(obj["id"]),
            name=str(obj["name"]),
            filename=str(obj["filename"]),
            size=int(obj["size"]),
            sha256=str(obj["sha256"]),
            spec=dict(obj["spec"]),
            created=str(obj["created"]),
            source=str(obj.get("source", "")),
        )


def validate_model_file(path: Path) -> ModelSpec:
    """Check ``path`` before it is registered: self-contained (no external data), opened by ONNX Runtime in a
    child process with memory and CPU limits, with a valid embedded spec (:mod:`livedenoise.server.model_check`).

    Raises
    ------
    InvalidModel
        The file is not ONNX, uses external data, cannot be loaded within the limits, has no valid spec, or
        lacks the spec's input/output.
    """
    from livedenoise.server.model_check import check_model_file

    return check_model_file(path)


class ModelRegistry:
    """Validated models in ``models_dir``; thread-safe (one lock around every change)."""

    def __init__(self, models_dir: Path, *, max_bytes: int | None = None) -> None:
        self.models_dir = Path(models_dir)
        self.max_bytes = max_bytes
        self.models_dir.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()

    # ---- adding -------------------------------------------------------------------------------------
    def add_bytes(self, data: bytes, name: str | None = None, source: str = "") -> ModelRecord:
        """Validate and store ``data``; returns the (possibly already existing) record."""
        import io

        return self.add_stream(io.BytesIO(data), name=name, source=source)

    def add_path(self, path: Path, name: str | None = None) -> ModelRecord:
        """Validate and copy the model file at ``path`` into the registry."""
        path = Path(path)
        if not path.is_file():
            raise InvalidModel(f"model file {str(path)!r} does not exist or is not a file")
        with path.open("rb") as fh:
            return self.add_stream(fh, name=name, source=path.name)

    def add_stream(self, stream: IO[bytes], name: str | None = None, source: str = "") -> ModelRecord:
        """Copy ``stream`` to a temporary file while hashing it, validate it, then rename it into place."""
        with spooled(stream, self.models_dir, suffix=".onnx", max_bytes=self.max_bytes) as upload:
            if upload.size == 0:
                raise InvalidModel("model file is empty")
            spec = validate_model_file(upload.path)
            model_id = "m-" + upload.sha256[:12]
            with self._lock:
                existing = self._read_record(model_id)
                if existing is not None and self.path_of(model_id).is_file():
                    logger.info("model %s already registered as %r", model_id, existing.name)
                    return existing
                record = ModelRecord(
                    id=model_id,
                    name=name or (Path(source).stem if source else spec.method),
                    filename=f"{model_id}.onnx",
                    size=upload.size,
                    sha256=upload.sha256,
                    spec=json.loads(spec.to_json()),
                    created=_now(),
                    source=source,
                )
                os.replace(upload.path, self.models_dir / record.filename)
                self._write_json(self.models_dir / f"{model_id}.json", record.to_dict())
            logger.info(
                "registered model %s (%s, %d bytes, method %s)", model_id, record.name, upload.size, spec.method
            )
            return record

    # ---- reading ------------------------------------------------------------------------------------
    def list(self) -> list[ModelRecord]:
        """All models, oldest first."""
        records = []
        for path in sorted(self.models_dir.glob("m-*.onnx")):
            record = self._read_record(path.stem)
            if record is not None:
                records.append(record)
        return sorted(records, key=lambda r: (r.created, r.id))

    def get(self, model_id: str) -> ModelRecord:
        """The record of ``model_id``; raises :class:`UnknownModel`."""
        record = self._read_record(model_id) if MODEL_ID_PATTERN.match(model_id) else None
        if record is None or not self.path_of(model_id).is_file():
            raise UnknownModel(f"no model with id {model_id!r}")
        return record

    def path_of(self, model_id: str) -> Path:
        """Path of the stored ONNX file (it may not exist: use :meth:`get` to check)."""
        if not MODEL_ID_PATTERN.match(model_id):
            raise UnknownModel(f"no model with id {model_id!r} (ids look like 'm-' + 12 hex digits)")
        return self.models_dir / f"{model_id}.onnx"

    # ---- active model -------------------------------------------------------------------------------
    def active_id(self) -> str | None:
        """The persisted active model id, or None (also when its file has since gone)."""
        path = self.models_dir / _ACTIVE_FILE
        try:
            model_id = json.loads(path.read_text()).get("model_id")
        except FileNotFoundError:
            return None
        except (OSError, ValueError, AttributeError):
            logger.warning("ignoring unreadable %s", path)
            return None
        if (
            not isinstance(model_id, str)
            or not MODEL_ID_PATTERN.match(model_id)
            or not self.path_of(model_id).is_file()
        ):
            return None
        return model_id

    def set_active(self, model_id: str) -> ModelRecord:
        """Record ``model_id`` as the served model (call once the ingest process serves it)."""
        with self._lock:
            record = self.get(model_id)
            self._write_json(self.models_dir / _ACTIVE_FILE, {"model_id": model_id, "since": _now()})
        return record

    # ---- removing -----------------------------------------------------------------------------------
    def delete(self, model_id: str) -> ModelRecord:
        """Remove a model; the active model cannot be deleted (:class:`Conflict`)."""
        with self._lock:
            record = self.get(model_id)
            if self.active_id() == model_id:
                raise Conflict(f"model {model_id} is the active model; load another model before deleting it")
            self.path_of(model_id).unlink(missing_ok=True)
            (self.models_dir / f"{model_id}.json").unlink(missing_ok=True)
        logger.info("deleted model %s (%s)", model_id, record.name)
        return record

    # ---- helpers ------------------------------------------------------------------------------------
    def _read_record(self, model_id: str) -> ModelRecord | None:
        path = self.models_dir / f"{model_id}.json"
        try:
            return ModelRecord.from_dict(json.loads(path.read_text()))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError):
            logger.warning("model record %s is unreadable; the model is hidden until re-uploaded", path)
            return None

    def _write_json(self, path: Path, obj: dict[str, Any]) -> None:
        fd, tmp_name = tempfile.mkstemp(prefix=".tmp-", suffix=".json", dir=self.models_dir)
        try:
            with os.fdopen(fd, "w") as out:
                json.dump(obj, out, indent=1, sort_keys=True)
            os.replace(tmp_name, path)
        finally:
            Path(tmp_name).unlink(missing_ok=True)
