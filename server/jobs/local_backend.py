"""The ``local`` job backend: one ``python -m livedenoise.models.job_worker JOB_DIR`` subprocess per job.

The worker contract (written by ``models/job_worker.py``): it reads ``JOB_DIR/job.json``, appends JSON lines
to ``progress.jsonl``, logs to ``train.log``, writes ``result.json`` and exits 0 (success) or 1, and stops
cleanly on SIGTERM. The server never imports torch; it only starts the interpreter.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import resource
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from livedenoise.server.jobs.backend import BackendPoll, JobLaunch, JobLimits, JobLogs

__all__ = ["LocalBackend", "WORKER_MODULE", "REPORT_DIR"]

logger = logging.getLogger(__name__)

WORKER_MODULE = "livedenoise.models.job_worker"
MODEL_FILE = "model.onnx"
REPORT_DIR = "report"  # a compare job's report folder


@dataclass
class _Local:
    job_dir: Path
    pid: int
    proc: subprocess.Popen[bytes] | None  # None for a process adopted after a server restart
    offset: int = 0  # bytes of progress.jsonl already consumed


class LocalBackend:
    """Subprocess jobs under ``jobs_dir/<job id>/``."""

    name = "local"

    def __init__(self, jobs_dir: Path, python: str | None = None) -> None:
        self.jobs_dir = Path(jobs_dir)
        self.jobs_dir.mkdir(parents=True, exist_ok=True)
        self.python = python or sys.executable
        self._jobs: dict[str, _Local] = {}
        self._lock = threading.Lock()

    def job_dir(self, job_id: str) -> Path:
        return self.jobs_dir / job_id

    def start(self, launch: JobLaunch) -> str:
        job_dir = self.job_dir(launch.job_id)
        job_dir.mkdir(parents=True, exist_ok=True)
        for stale in ("progress.jsonl", "result.json"):
            (job_dir / stale).unlink(missing_ok=True)
        output = job_dir / (REPORT_DIR if launch.kind == "compare" else MODEL_FILE)
        job = {"kind": launch.kind, "movie": str(launch.movie), "config": launch.config, "output": str(output)}
        (job_dir / "job.json").write_text(json.dumps(job, indent=1, sort_keys=True))
        # A training job never needs the API's credentials: it reports through files, not the API.
        env = {k: v for k, v in os.environ.items() if k != "LIVEDENOISE_API_TOKEN"}
        env["PYTHONUNBUFFERED"] = "1"
        if launch.limits.threads is not None:
            # Fewer threads than cores leave the engine its own; passive waiting stops idle OpenMP threads from
            # spinning on the cores ingest needs.
            threads = str(launch.limits.threads)
            env.update(OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads, OMP_WAIT_POLICY="PASSIVE")
        with (job_dir / "worker.out").open("ab") as out:
            # A new session keeps a terminal's Ctrl-C away from the trainer: the manager stops it explicitly.
            proc = subprocess.Popen(
                [self.python, "-m", WORKER_MODULE, str(job_dir)],
                preexec_fn=functools.partial(_apply_limits, launch.limits),
                cwd=str(job_dir),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        with self._lock:
            self._jobs[launch.job_id] = _Local(job_dir=job_dir, pid=proc.pid, proc=proc)
        logger.info("job %s: started worker pid %d in %s", launch.job_id, proc.pid, job_dir)
        return str(proc.pid)

    def attach(self, job_id: str, ref: str | None) -> bool:
        job_dir = self.job_dir(job_id)
        try:
            pid = int(ref or "")
        except ValueError:
            return False
        if not _is_worker(pid, job_dir):
            return False
        offset = (job_dir / "progress.jsonl").stat().st_size if (job_dir / "progress.jsonl").exists() else 0
        with self._lock:
            self._jobs[job_id] = _Local(job_dir=job_dir, pid=pid, proc=None, offset=offset)
        logger.info("job %s: re-attached to surviving worker pid %d", job_id, pid)
        return True

    def poll(self, job_id: str) -> BackendPoll:
        job = self._get(job_id)
        returncode: int | None
        if job.proc is not None:
            returncode = job.proc.poll()
            running = returncode is None
        else:
            running = _is_worker(job.pid, job.job_dir)
            returncode = None
        # Read events after the exit check, so the last lines written before exit are never missed.
        events = self._read_events(job)
        if running:
            return BackendPoll(running=True, events=events)
        return BackendPoll(running=False, events=events, returncode=returncode, result=_read_result(job.job_dir))

    def stop(self, job_id: str, grace_s: float) -> None:
        job = self._get(job_id)
        logger.info("job %s: stopping worker pid %d", job_id, job.pid)
        if job.proc is not None:
            if job.proc.poll() is None:
                job.proc.terminate()
                try:
                    job.proc.wait(grace_s)
                except subprocess.TimeoutExpired:
                    logger.warning("job %s: worker ignored SIGTERM for %.1f s, killing it", job_id, grace_s)
                    _kill_group(job.pid)
                    job.proc.wait()
            return
        if not _is_worker(job.pid, job.job_dir):
            return
        os.kill(job.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline and _is_worker(job.pid, job.job_dir):
            time.sleep(0.05)
        if _is_worker(job.pid, job.job_dir):
            _kill_group(job.pid)

    def logs(self, job_id: str, tail: int) -> JobLogs:
        job_dir = self.job_dir(job_id)
        return JobLogs(log=_tail(job_dir / "train.log", tail), output=_tail(job_dir / "worker.out", tail))

    def result(self, job_id: str) -> dict[str, Any] | None:
        return _read_result(self.job_dir(job_id))

    def report_dir(self, job_id: str) -> Path:
        return self.job_dir(job_id) / REPORT_DIR

    def forget(self, job_id: str) -> None:
        with self._lock:
            self._jobs.pop(job_id, None)

    def _get(self, job_id: str) -> _Local:
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None:
            raise KeyError(f"local backend has no process for job {job_id!r}")
        return job

    @staticmethod
    def _read_events(job: _Local) -> list[dict[str, Any]]:
        path = job.job_dir / "progress.jsonl"
        try:
            with path.open("rb") as fh:
                fh.seek(job.offset)
                data = fh.read()
        except FileNotFoundError:
            return []
        end = data.rfind(b"\n")
        if end < 0:
            return []  # a line still being written is read next time
        job.offset += end + 1
        events = []
        for line in data[: end + 1].splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                logger.warning("ignoring malformed progress line in %s: %r", path, line[:200])
                continue
            if isinstance(event, dict):
                events.append(event)
        return events


def _apply_limits(limits: JobLimits) -> None:
    """In the child, before exec: run behind ingest, and cap memory where the device allows it."""
    os.nice(limits.nice)
    if limits.max_memory_bytes is not None:
        resource.setrlimit(resource.RLIMIT_AS, (limits.max_memory_bytes, limits.max_memory_bytes))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _read_result(job_dir: Path) -> dict[str, Any] | None:
    try:
        result = json.loads((job_dir / "result.json").read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        return {"error": f"result.json is unreadable: {exc}"}
    return result if isinstance(result, dict) else {"error": "result.json is not a JSON object"}


def _is_worker(pid: int, job_dir: Path) -> bool:
    """Whether ``pid`` is alive and is this job's worker (a reused pid is not)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    if stat.rsplit(")", 1)[-1].split()[0] == "Z":
        return False
    return WORKER_MODULE.encode() in cmdline and str(job_dir).encode() in cmdline


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _tail(path: Path, lines: int) -> str:
    try:
        with path.open("r", errors="replace") as fh:
            return "".join(deque(fh, maxlen=max(lines, 0)))
    except FileNotFoundError:
        return ""
