"""The job backend interface: where and how a training process runs (``local`` subprocess; ``ray`` later)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

__all__ = ["JobLimits", "JobLaunch", "BackendPoll", "JobLogs", "JobBackend"]


@dataclass(frozen=True)
class JobLimits:
    """Bounds of one training process (the wall-clock limit is enforced by the manager)."""

    nice: int = 10
    max_memory_bytes: int | None = None  # RLIMIT_AS; None where it would break the device (CUDA maps huge ranges)
    threads: int | None = None  # CPU threads of torch/OpenMP in the job (None: the runtime's default, every core)


@dataclass(frozen=True)
class JobLaunch:
    """What a backend needs to start one job: the movie and, for ``kind`` ``train``, the full TrainConfig dict
    (with ``method``); for ``compare``, the compare request (``methods``, ``time_budget_s``, ``max_latency``,
    ``clean``, ``shared``, ``overrides``)."""

    job_id: str
    movie: Path
    config: dict[str, Any]
    limits: JobLimits = field(default_factory=JobLimits)
    kind: str = "train"


@dataclass
class BackendPoll:
    """One look at a job: new progress events since the previous poll, and the result once it has exited.

    ``result`` is the worker's ``result.json`` (``{"output", "spec", "history"}`` for a training job,
    ``{"output", "result"}`` for a comparison, or ``{"error"}``), or None if it exited without writing one
    (crash, kill).
    """

    running: bool
    events: list[dict[str, Any]] = field(default_factory=list)
    returncode: int | None = None
    result: dict[str, Any] | None = None


@dataclass(frozen=True)
class JobLogs:
    log: str  # the trainer's own log (train.log)
    output: str  # whatever the process wrote to stdout/stderr (import errors, crashes)


class JobBackend(Protocol):
    """Runs training processes. Every method is called from the manager's threads, never concurrently for one job."""

    name: str

    def start(self, launch: JobLaunch) -> str:
        """Start the job; returns a reference (e.g. a pid) stored so a restarted server can :meth:`attach`."""
        ...

    def attach(self, job_id: str, ref: str | None) -> bool:
        """After a server restart: re-adopt the still-running job ``job_id``; False if it is gone."""
        ...

    def poll(self, job_id: str) -> BackendPoll:
        """New progress events and, once the process has exited, its exit status and result."""
        ...

    def stop(self, job_id: str, grace_s: float) -> None:
        """Ask the job to stop, wait up to ``grace_s`` and then kill it; returns once it has exited."""
        ...

    def logs(self, job_id: str, tail: int) -> JobLogs:
        """The last ``tail`` lines of the job's logs."""
        ...

    def result(self, job_id: str) -> dict[str, Any] | None:
        """The result a job left behind (after a server restart: did it finish while nobody watched?)."""
        ...

    def report_dir(self, job_id: str) -> Path:
        """Where a comparison's report folder is on this machine (the server serves it from there)."""
        ...

    def forget(self, job_id: str) -> None:
        """Drop in-memory state for a finished job (its files stay)."""
        ...
