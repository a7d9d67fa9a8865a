"""JobManager without a trainer: validation, queued cancel, restart recovery (real SQLite, real processes)."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from livedenoise.server.errors import Conflict, InvalidRequest, UnknownJob
from livedenoise.server.jobs.manager import RESTART_ERROR, JobManager
from livedenoise.server.jobs.store import JobKind, JobRecord, JobState, JobStore
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
    store.insert(
        JobRecord(id="j-crashed", method="deepcad_rt", data="x.npy", state=JobState.RUNNING, backend_ref=str(dead.pid))
    )
    store.insert(JobRecord(id="j-waiting", method="deepcad_rt", data="x.npy", state=JobState.QUEUED))
    store.close()

    # A pid that is alive but is not this job's worker (this test process) must not be adopted either.
    store = JobStore(settings.jobs_db)
    store.insert(
        JobRecord(
            id="j-reused-pid", method="deepcad_rt", data="x.npy", state=JobState.RUNNING, backend_ref=str(os.getpid())
        )
    )
    store.close()

    manager = JobManager(settings, ModelRegistry(settings.models_dir), max_running=1)
    manager.start()
    try:
        for job_id in ("j-crashed", "j-reused-pid"):
            job = manager.get(job_id)
            assert job.state is JobState.FAILED and job.error == RESTART_ERROR and job.finished
    finally:
        manager.close()


def test_a_job_that_finished_while_the_server_was_down_keeps_its_model(settings: ServerSettings, model_file) -> None:
    """Its process is gone, but it wrote its result: the restarted server registers the model instead of
    calling the job failed."""
    import json
    import shutil

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    job_dir = settings.jobs_dir / "j-finished"
    job_dir.mkdir(parents=True)
    output = job_dir / "model.onnx"
    shutil.copy(model_file(seed=4), output)
    (job_dir / "result.json").write_text(json.dumps({"output": str(output), "validation": {"model_gain_db": 9.5}}))
    store = JobStore(settings.jobs_db)
    store.insert(
        JobRecord(id="j-finished", method="deepcad_rt", data="x.npy", state=JobState.RUNNING, backend_ref=str(dead.pid))
    )
    store.close()

    manager = JobManager(settings, ModelRegistry(settings.models_dir))
    manager.start()
    try:
        job = manager.get("j-finished")
        assert job.state is JobState.SUCCEEDED and job.model_id is not None and job.validation == {"model_gain_db": 9.5}
        assert [m.id for m in manager.registry.list()] == [job.model_id]
    finally:
        manager.close()


def test_a_job_budget_above_the_server_limit_is_refused(settings: ServerSettings, movie: str) -> None:
    manager = JobManager(settings.model_copy(update={"job_max_seconds": 60}), ModelRegistry(settings.models_dir))
    try:
        with pytest.raises(InvalidRequest, match="time_budget_s.*LIVEDENOISE_JOB_MAX_SECONDS"):
            manager.submit("deepcad_rt", movie, {"time_budget_s": 120})
        assert manager.submit("deepcad_rt", movie, {"time_budget_s": 30}).state is JobState.QUEUED
    finally:
        manager.close()


def test_a_comparison_is_validated_queued_and_has_no_report_until_it_succeeds(
    settings: ServerSettings, manager: JobManager, movie: str
) -> None:
    with pytest.raises(InvalidRequest, match="unknown method 'n2v'"):
        manager.submit_compare(movie, methods=["ted", "n2v"])
    with pytest.raises(InvalidRequest, match="invalid training config for method 'ted': epochs"):
        manager.submit_compare(movie, methods=["ted"], overrides={"ted": {"epochs": 0}})
    with pytest.raises(InvalidRequest, match="field 'max_latency'"):
        manager.submit_compare(movie, methods=["ted"], max_latency=-2)

    job = manager.submit_compare(movie, config={"epochs": 1}, clean=movie, time_budget_s=600)

    assert job.kind is JobKind.COMPARE and job.state is JobState.QUEUED
    assert job.method.split(",") == job.config["methods"] and "deepcad_rt" in job.config["methods"]  # every method
    assert job.config["clean"] == job.data and job.config["shared"] == {"epochs": 1}
    with pytest.raises(Conflict, match="is queued; its report is there once it has succeeded") as info:
        manager.report(job.id)
    assert info.value.code == "no_report"
    trained = manager.submit("deepcad_rt", movie, {"epochs": 1})
    with pytest.raises(UnknownJob, match="is a train job; only compare jobs have a report") as lookup:
        manager.report(trained.id, archive=True)
    assert lookup.value.code == "no_report" and manager.get(trained.id).kind is JobKind.TRAIN


def test_a_comparison_that_finished_while_the_server_was_down_keeps_its_result(settings: ServerSettings) -> None:
    import json
    import zipfile

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    report = settings.jobs_dir / "j-compared" / "report"
    (report / "models").mkdir(parents=True)
    (report / "report.html").write_text("<!doctype html><p>ted</p>")
    (report / "models" / "ted.onnx").write_bytes(b"onnx")
    summary = {"recommendation": {"name": "ted", "kind": "method"}, "rows": []}
    (report.parent / "result.json").write_text(json.dumps({"output": str(report), "result": summary}))
    store = JobStore(settings.jobs_db)
    store.insert(
        JobRecord(
            id="j-compared", kind=JobKind.COMPARE, method="ted", data="x.npy", state=JobState.RUNNING,
            backend_ref=str(dead.pid),
        )
    )  # fmt: skip
    store.close()

    manager = JobManager(settings, ModelRegistry(settings.models_dir))
    manager.start()
    try:
        job = manager.get("j-compared")
        assert job.state is JobState.SUCCEEDED and job.result == summary and job.model_id is None
        assert manager.report(job.id) == report / "report.html"
        with zipfile.ZipFile(manager.report(job.id, archive=True)) as archive:
            assert sorted(archive.namelist()) == [
                "j-compared-compare/models/ted.onnx",
                "j-compared-compare/report.html",
            ]
        assert manager.registry.list() == []
    finally:
        manager.close()
