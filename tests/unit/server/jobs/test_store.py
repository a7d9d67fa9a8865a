"""JobStore: SQLite persistence, conditional transitions, counts."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from livedenoise.server.errors import UnknownJob
from livedenoise.server.jobs.store import JobKind, JobRecord, JobState, JobStore


def test_round_trip_and_persistence(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "jobs.sqlite")
    job = JobRecord(id="j-1", method="deepcad_rt", data="/d/m.npy", config={"epochs": 2, "lr": 1e-3}, activate=True)
    store.insert(job)
    assert store.update("j-1", expect=JobState.QUEUED, state=JobState.RUNNING, progress=0.5, epoch=1, loss=0.25)
    store.close()

    reopened = JobStore(tmp_path / "jobs.sqlite")
    got = reopened.get("j-1")
    assert got.state is JobState.RUNNING and got.progress == 0.5 and got.epoch == 1 and got.loss == 0.25
    assert got.config == {"epochs": 2, "lr": 1e-3} and got.activate is True and got.activated is False
    assert (tmp_path / "jobs.sqlite-wal").exists() or reopened._conn.execute("PRAGMA journal_mode").fetchone()[
        0
    ] == "wal"


def test_conditional_update_only_from_expected_state(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "jobs.sqlite")
    store.insert(JobRecord(id="j-2", method="m", data="x"))
    assert not store.update("j-2", expect=JobState.RUNNING, state=JobState.FAILED)
    assert store.get("j-2").state is JobState.QUEUED
    with pytest.raises(ValueError, match="nonsense"):
        store.update("j-2", nonsense=1)


def test_list_order_filter_and_counts(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "jobs.sqlite")
    for i, state in enumerate([JobState.QUEUED, JobState.RUNNING, JobState.QUEUED]):
        store.insert(JobRecord(id=f"j-{i}", method="m", data="x", state=state, created=f"2024-01-0{i + 1}"))
    assert [j.id for j in store.list()] == ["j-2", "j-1", "j-0"]
    assert [j.id for j in store.list(JobState.QUEUED)] == ["j-2", "j-0"]
    assert store.oldest_queued().id == "j-0"
    assert store.counts() == {"queued": 2, "running": 1, "succeeded": 0, "failed": 0, "cancelled": 0}
    with pytest.raises(UnknownJob, match="j-9"):
        store.get("j-9")


def test_concurrent_writers(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "jobs.sqlite")
    store.insert(JobRecord(id="j-c", method="m", data="x"))

    def bump(n: int) -> None:
        for k in range(50):
            store.update("j-c", epoch=n * 100 + k)

    threads = [threading.Thread(target=bump, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert store.get("j-c").epoch % 100 == 49


def test_a_database_from_before_compare_jobs_is_migrated(tmp_path: Path) -> None:
    """Jobs written before ``kind``, ``progress_detail`` and ``result`` existed read back as train jobs."""
    conn = sqlite3.connect(tmp_path / "jobs.sqlite")
    conn.execute(
        "CREATE TABLE jobs (id TEXT PRIMARY KEY, method TEXT NOT NULL, data TEXT NOT NULL, config TEXT NOT NULL, "
        "state TEXT NOT NULL, activate INTEGER NOT NULL, name TEXT, backend TEXT NOT NULL, backend_ref TEXT, "
        "created TEXT NOT NULL, started TEXT, finished TEXT, progress REAL NOT NULL, epoch INTEGER, "
        "epochs INTEGER, loss REAL, model_id TEXT, activated INTEGER NOT NULL, error TEXT)"
    )
    conn.execute(
        "INSERT INTO jobs VALUES ('j-old', 'ted', 'm.npy', '{}', 'succeeded', 0, NULL, 'local', NULL, "
        "'2024-01-01T00:00:00+00:00', NULL, NULL, 1.0, NULL, NULL, NULL, 'm-1', 0, NULL)"
    )
    conn.commit()
    conn.close()

    store = JobStore(tmp_path / "jobs.sqlite")
    old = store.get("j-old")
    assert old.kind is JobKind.TRAIN and old.progress_detail is None and old.result is None
    detail = {"method": "ted", "index": 1, "total": 2, "stage": "train", "message": ""}
    store.insert(JobRecord(id="j-new", method="ted,sn2n", data="m.npy", kind=JobKind.COMPARE))
    assert store.update("j-new", progress_detail=detail, result={"recommendation": {"name": "ted"}})
    new = store.get("j-new")
    assert new.kind is JobKind.COMPARE and new.progress_detail == detail and new.to_dict()["kind"] == "compare"
    assert new.result == {"recommendation": {"name": "ted"}}
