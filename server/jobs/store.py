"""Job state in an embedded SQLite database (WAL), so it survives a server restart."""

from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from typing import Any

from livedenoise.server.errors import UnknownJob

__all__ = ["JobKind", "JobState", "JobRecord", "JobStore", "TERMINAL_STATES", "utc_now"]


class JobKind(str, Enum):
    TRAIN = "train"  # train one method and register (optionally activate) its model
    COMPARE = "compare"  # train several methods on the even frames, score them, write a report folder


class JobState(str, Enum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


TERMINAL_STATES = frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED})


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@dataclass
class JobRecord:
    """One job. ``data`` is the movie path. A ``train`` job's ``config`` is the trainer config (without
    ``method``); a ``compare`` job's is its request (``methods``, ``time_budget_s``, ``max_latency``, ``clean``,
    ``shared``, ``overrides``) and its ``method`` the compared methods, comma-separated."""

    id: str
    method: str
    data: str
    config: dict[str, Any] = field(default_factory=dict)
    state: JobState = JobState.QUEUED
    activate: bool = False
    name: str | None = None
    backend: str = "local"
    backend_ref: str | None = None  # e.g. the pid, so a restarted server can find a surviving process
    created: str = field(default_factory=utc_now)
    started: str | None = None
    finished: str | None = None
    progress: float = 0.0
    epoch: int | None = None
    epochs: int | None = None
    loss: float | None = None
    model_id: str | None = None
    activated: bool = False
    error: str | None = None
    # The trained model's held-out score beside the best classical filter's (the job's result.json).
    validation: dict[str, Any] | None = None
    kind: JobKind = JobKind.TRAIN
    # What a compare job is doing now: {"method", "index" (1-based), "total", "stage", "message"}.
    progress_detail: dict[str, Any] | None = None
    # A compare job's results.json (the table, the filters' scores, the recommendation).
    result: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["state"] = self.state.value
        out["kind"] = self.kind.value
        return out


_COLUMNS = [f.name for f in fields(JobRecord)]
_JSON_COLUMNS = ("config", "validation", "progress_detail", "result")
# Columns added after the first release, with their definitions: older databases get them at open.
_ADDED_COLUMNS = {
    "validation": "TEXT",
    "kind": "TEXT NOT NULL DEFAULT 'train'",
    "progress_detail": "TEXT",
    "result": "TEXT",
}
_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    method TEXT NOT NULL,
    data TEXT NOT NULL,
    config TEXT NOT NULL,
    state TEXT NOT NULL,
    activate INTEGER NOT NULL,
    name TEXT,
    backend TEXT NOT NULL,
    backend_ref TEXT,
    created TEXT NOT NULL,
    started TEXT,
    finished TEXT,
    progress REAL NOT NULL,
    epoch INTEGER,
    epochs INTEGER,
    loss REAL,
    model_id TEXT,
    activated INTEGER NOT NULL,
    error TEXT,
    validation TEXT,
    kind TEXT NOT NULL DEFAULT 'train',
    progress_detail TEXT,
    result TEXT
);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs (state);
"""


def _to_row(record: JobRecord) -> dict[str, Any]:
    row = asdict(record)
    row["state"] = record.state.value
    row["kind"] = record.kind.value
    row["config"] = json.dumps(record.config, sort_keys=True)
    for key in _JSON_COLUMNS[1:]:
        row[key] = None if row[key] is None else json.dumps(row[key], sort_keys=True)
    row["activate"] = int(record.activate)
    row["activated"] = int(record.activated)
    return row


def _from_row(row: sqlite3.Row) -> JobRecord:
    obj = dict(row)
    obj["state"] = JobState(obj["state"])
    obj["kind"] = JobKind(obj["kind"])
    obj["config"] = json.loads(obj["config"])
    for key in _JSON_COLUMNS[1:]:
        obj[key] = json.loads(obj[key]) if obj.get(key) else None
    obj["activate"] = bool(obj["activate"])
    obj["activated"] = bool(obj["activated"])
    return JobRecord(**obj)


class JobStore:
    """Thread-safe access to the ``jobs`` table (one connection, one lock)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None, timeout=10.0)
        self._conn.row_factory = sqlite3.Row
        with self._lock:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.executescript(_SCHEMA)
            # Databases written before a column existed get it (NULL, or 'train' for `kind`, for their jobs).
            columns = {r["name"] for r in self._conn.execute("PRAGMA table_info(jobs)")}
            for name, definition in _ADDED_COLUMNS.items():
                if name not in columns:
                    self._conn.execute(f"ALTER TABLE jobs ADD COLUMN {name} {definition}")

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def insert(self, record: JobRecord) -> None:
        row = _to_row(record)
        names = ", ".join(_COLUMNS)
        marks = ", ".join(f":{c}" for c in _COLUMNS)
        with self._lock:
            self._conn.execute(f"INSERT INTO jobs ({names}) VALUES ({marks})", row)

    def get(self, job_id: str) -> JobRecord:
        """The job ``job_id``; raises :class:`UnknownJob`."""
        with self._lock:
            row = self._conn.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            raise UnknownJob(f"no job with id {job_id!r}")
        return _from_row(row)

    def list(self, state: JobState | None = None, limit: int | None = None) -> list[JobRecord]:
        """Jobs, newest first, optionally only those in ``state``."""
        query = "SELECT * FROM jobs"
        args: list[Any] = []
        if state is not None:
            query += " WHERE state = ?"
            args.append(state.value)
        query += " ORDER BY created DESC, id DESC"
        if limit is not None:
            query += " LIMIT ?"
            args.append(int(limit))
        with self._lock:
            rows = self._conn.execute(query, args).fetchall()
        return [_from_row(r) for r in rows]

    def oldest_queued(self) -> JobRecord | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT * FROM jobs WHERE state = ? ORDER BY created ASC, id ASC LIMIT 1", (JobState.QUEUED.value,)
            ).fetchone()
        return None if row is None else _from_row(row)

    def update(self, job_id: str, *, expect: JobState | None = None, **changes: Any) -> bool:
        """Set ``changes`` on a job; with ``expect`` only if it is still in that state (returns whether it was)."""
        unknown = set(changes) - set(_COLUMNS) - {"state"}
        if unknown or "id" in changes:
            raise ValueError(f"cannot update job fields {sorted(unknown | ({'id'} & set(changes)))}")
        values = {k: (v.value if isinstance(v, Enum) else v) for k, v in changes.items()}
        for flag in ("activate", "activated"):
            if flag in values:
                values[flag] = int(bool(values[flag]))
        for key in _JSON_COLUMNS:
            if key in values and values[key] is not None:
                values[key] = json.dumps(values[key], sort_keys=True)
        assignments = ", ".join(f"{k} = :{k}" for k in values)
        query = f"UPDATE jobs SET {assignments} WHERE id = :_id"
        values["_id"] = job_id
        if expect is not None:
            query += " AND state = :_expect"
            values["_expect"] = expect.value
        with self._lock:
            cursor = self._conn.execute(query, values)
        return cursor.rowcount == 1

    def counts(self) -> dict[str, int]:
        """Number of jobs in each state (every state present, zero included)."""
        with self._lock:
            rows = self._conn.execute("SELECT state, COUNT(*) AS n FROM jobs GROUP BY state").fetchall()
        out = {s.value: 0 for s in JobState}
        out.update({r["state"]: int(r["n"]) for r in rows})
        return out
