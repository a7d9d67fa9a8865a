"""A training job gets the CPU threads the settings leave it, and idle OpenMP threads that do not spin."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from livedenoise.server.jobs.backend import JobLaunch, JobLimits
from livedenoise.server.jobs.local_backend import LocalBackend
from livedenoise.server.settings import ServerSettings


def _env_dumping_python(tmp_path: Path) -> str:
    """A stand-in interpreter that records the environment it was started with (in the job's folder, its cwd)."""
    script = tmp_path / "fake-python"
    script.write_text("#!/bin/sh\nenv > env.txt\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return str(script)


def _started_env(tmp_path: Path, limits: JobLimits) -> dict[str, str]:
    backend = LocalBackend(tmp_path / "jobs", python=_env_dumping_python(tmp_path))
    backend.start(JobLaunch(job_id="j1", movie=tmp_path / "m.tif", config={}, limits=limits))
    proc = backend._jobs["j1"].proc
    assert proc is not None
    proc.wait(10)
    dump = backend.job_dir("j1") / "env.txt"
    return dict(line.split("=", 1) for line in dump.read_text().splitlines() if "=" in line)


def test_a_job_with_a_thread_limit_gets_it_and_passive_openmp(tmp_path: Path) -> None:
    env = _started_env(tmp_path, JobLimits(threads=3))
    assert (env["OMP_NUM_THREADS"], env["MKL_NUM_THREADS"], env["OMP_WAIT_POLICY"]) == ("3", "3", "PASSIVE")


def test_without_a_limit_the_environment_is_left_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert "OMP_NUM_THREADS" not in _started_env(tmp_path, JobLimits(threads=None))


@pytest.mark.parametrize(("job", "engine", "expected"), [(0, 0, -1), (0, 1, -1), (0, 64, 1), (5, 0, 5)])
def test_training_threads_leave_the_engine_its_cores(tmp_path: Path, job: int, engine: int, expected: int) -> None:
    settings = ServerSettings(home=tmp_path, job_threads=job, intra_op_threads=engine)
    cores = os.cpu_count() or 1
    want = max(1, cores - 1) if expected == -1 else expected
    assert settings.training_threads() == want
