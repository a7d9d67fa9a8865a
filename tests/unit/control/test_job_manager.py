"""JobManager without a trainer: validation, queued cancel, restart recovery (real SQLite, real processes)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from livedenoise.server.errors import Conflict, InvalidRequest, UnknownJob
from livedenoise.server.jobs.manager import RESTART_ERROR, JobManager
from livedenoise.server.jobs.store import JobRecord, JobState, JobStore
from livedenoise.server.registry import ModelRegistry
from livedenoise.server.settings import ServerSettings


@pytest.fixture
def movie(settings: ServerSettings) -> str:
    np.save(settings.resolved_data_root / "m.npy", np.zeros((8, 16, 16), np.uint16))
    return "m.npy"


@pytest.fixture
def manager(settings: ServerSettings):
    m = JobManager(settings, ModelRegistry(settings.models_dir))
    yield m  # not started: jobs stay queued
    m.close()


def test_submit_validates_fields(manager: JobManager, movie: str) -> None:
    with pytest.raises(InvalidRequest, match="field 'method'"):
        manager.submit("Not A Method!", movie)
    with pytest.raises(InvalidRequest, match=r"may not set \['method'\]"):
        manager.submit("deepcad_rt", movie, {"method": "support"})
    with pytest.raises(InvalidRequest, match="outside the data root"):
        manager.submit("deepcad_rt", "../../etc/passwd")
    assert manager.list() == []


def test_queued_job_is_cancelled_and_cannot_be_cancelled_twice(manager: JobManager, movie: str, settings) -> None:
    job = manager.submit("deepcad_rt", movie, {"epochs": 1}, activate=True, name="n")
    assert job.state is JobState.QUEUED and job.data == str((settings.resolved_data_root / movie).resolve())

    cancelled = manager.cancel(job.id)

    assert cancelled.state is JobState.CANCELLED and cancelled.finished
    with pytest.raises(Conflict, match="already cancelled"):
        manager.cancel(job.id)
    with pytest.raises(UnknownJob):
        manager.cancel("j-nope")
    assert manager.counts()["cancelled"] == 1


def test_running_job_whose_process_is_gone_fails_at_restart(settings: ServerSettings) -> None:
    # A real process that has exited: its pid is exactly what a crashed server leaves in the database.
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    store = JobStore(settings.jobs_db)
    store.insert(JobRecord(id="j-crashed", method="deepcad_rt", data="x.npy", state=JobState.RUNNING, backend_ref=str(dead.pid)))
    store.insert(JobRecord(id="j-waiting", method="deepcad_rt", data="x.npy", state=JobState.QUEUED))
    store.close()

    # A pid that is alive but is not this job's worker (this test process) must not be adopted either.
    store = JobStore(settings.jobs_db)
    store.insert(JobRecord(id="j-reused-pid", method="deepcad_rt", data="x.npy", state=JobState.RUNNING, backend_ref=str(os.getpid())))
    store.close()

    manager = JobManager(settings, ModelRegistry(settings.models_dir), max_running=1)
    manager.start()
    try:
        for job_id in ("j-crashed", "j-reused-pid"):
            job = manager.get(job_id)
            assert job.state is JobState.FAILED and job.error == RESTART_ERROR and job.finished
    finally:
        manager.close()
