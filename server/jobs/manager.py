"""JobManager: submit, track, cancel jobs; register (and optionally activate) what training jobs export.

Two kinds of job run the same way: ``train`` (one method; its model is registered) and ``compare`` (several
methods trained on the even frames and scored on the odd ones, :mod:`livedenoise.models.compare`; its result
is the report folder, served by :meth:`JobManager.report`, and its ``results.json`` kept in the job).

States: ``queued → running → succeeded | failed | cancelled``. A monitor thread polls the backend, copies
progress events into the store, starts queued jobs when a slot is free and finalises finished ones: a
successful job's ONNX file is validated into the registry and, if the job asked for it, activated through
the ``on_activate`` callback (the app hot-swaps it into the ingest process) before the job is marked
``succeeded``, so a client that sees ``succeeded`` also sees the new model served.
"""

from __future__ import annotations

import logging
import re
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from livedenoise.server.errors import Conflict, InvalidRequest, LiveDenoiseError, UnknownJob
from livedenoise.server.jobs.backend import BackendPoll, JobBackend, JobLaunch, JobLimits, JobLogs
from livedenoise.server.jobs.data import TrainingData
from livedenoise.server.jobs.local_backend import LocalBackend
from livedenoise.server.jobs.report import zip_folder
from livedenoise.server.jobs.store import TERMINAL_STATES, JobKind, JobRecord, JobState, JobStore, utc_now
from livedenoise.server.registry import ModelRegistry
from livedenoise.server.settings import ServerSettings

__all__ = ["JobManager", "ActivateCallback", "RESTART_ERROR", "SHUTDOWN_ERROR"]

logger = logging.getLogger(__name__)

ActivateCallback = Callable[[str], Any]
RESTART_ERROR = "server restarted while the job ran"
SHUTDOWN_ERROR = "server stopped while the job ran"
_METHOD = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
# `method` is the request's own field; a second, different one in `config` would be ambiguous.
_RESERVED_CONFIG = frozenset({"method"})


def _age_s(started: str | None) -> float:
    """Seconds since an ISO timestamp (0 when unknown)."""
    if not started:
        return 0.0
    try:
        return max(0.0, (datetime.now(UTC) - datetime.fromisoformat(started)).total_seconds())
    except ValueError:
        return 0.0


def _validate_training_config(method: str, config: dict[str, Any]) -> Any:
    """Refuse a job whose config the trainer would refuse, before anything runs (torch-free)."""
    from pydantic import ValidationError

    from livedenoise.models.config import TrainConfig

    try:
        return TrainConfig.model_validate({"method": method, **config})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'] if p not in ('method_config', method)) or 'config'}: "
            f"{err['msg'].removeprefix('Value error, ')}"
            for err in exc.errors()
        )
        raise InvalidRequest(f"invalid training config for method {method!r}: {problems}") from None
    except ValueError as exc:  # an unknown method: the message lists the known ones
        raise InvalidRequest(f"field 'method': {exc}") from None


def _validate_compare(
    methods: Sequence[str] | None, shared: dict[str, Any], overrides: dict[str, dict[str, Any]]
) -> tuple[list[str], list[Any]]:
    """The compared methods (every method when None) and their TrainConfigs, checked as the comparison will."""
    from livedenoise.models.catalogue import list_methods, method_info

    names = list(methods) if methods else list_methods()
    for name in names:
        if not isinstance(name, str) or not _METHOD.match(name):
            raise InvalidRequest(f"field 'methods' must list method names like 'deepcad_rt', got {name!r}")
        try:
            method_info(name)
        except ValueError as exc:  # the message lists the known methods
            raise InvalidRequest(f"field 'methods': {exc}") from None
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise InvalidRequest(f"field 'methods' lists {', '.join(twice)} twice")
    stray = sorted(set(overrides) - set(names))
    if stray:
        raise InvalidRequest(
            f"field 'overrides' sets {', '.join(stray)}, which is not compared (methods: {', '.join(names)})"
        )
    for where, fields in [("config", shared), *((f"overrides.{m}", o) for m, o in overrides.items())]:
        if not isinstance(fields, dict):
            raise InvalidRequest(f"field '{where}' must be an object of training fields")
        reserved = sorted(set(fields) & _RESERVED_CONFIG)
        if reserved:
            raise InvalidRequest(f"field '{where}' may not set {reserved}: the comparison sets it for each method")
    return names, [_validate_training_config(m, {**shared, **overrides.get(m, {})}) for m in names]


class JobManager:
    """Training jobs for one server.

    Parameters
    ----------
    settings
        Where the job database, job folders and data root live.
    registry
        Where successful jobs' models are registered.
    backend
        Runs the processes; defaults to :class:`LocalBackend` under ``settings.jobs_dir``.
    on_activate
        Called with a model id when a job with ``activate=True`` succeeds; raises if the model cannot be served.
    max_running
        Jobs that run at once; the others wait ``queued``.
    """

    def __init__(
        self,
        settings: ServerSettings,
        registry: ModelRegistry,
        *,
        backend: JobBackend | None = None,
        store: JobStore | None = None,
        on_activate: ActivateCallback | None = None,
        max_running: int = 1,
        poll_interval_s: float = 0.2,
        stop_grace_s: float = 10.0,
    ) -> None:
        if max_running < 1:
            raise ValueError(f"max_running must be >= 1, got {max_running}")
        self.settings = settings
        self.registry = registry
        self.backend: JobBackend = backend or LocalBackend(settings.jobs_dir)
        self.store = store or JobStore(settings.jobs_db)
        self.data = TrainingData(settings.resolved_data_root, max_bytes=settings.max_upload_bytes)
        self.on_activate = on_activate
        self.max_running = max_running
        self.poll_interval_s = poll_interval_s
        self.stop_grace_s = stop_grace_s
        self._lock = threading.RLock()
        self._running: set[str] = set()
        self._cancelling: set[str] = set()
        self._deadlines: dict[str, float] = {}  # job id -> time.monotonic() after which it is stopped
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ---- lifecycle ----------------------------------------------------------------------------------
    def start(self) -> None:
        """Recover jobs left ``running`` by a previous server, then start the monitor thread."""
        if self._thread is not None:
            return
        for job in self.store.list(JobState.RUNNING):
            if job.backend == self.backend.name and self.backend.attach(job.id, job.backend_ref):
                with self._lock:
                    self._running.add(job.id)
                    self._deadlines[job.id] = time.monotonic() + max(
                        0.0, self.settings.job_max_seconds - _age_s(job.started)
                    )
                continue
            result = self.backend.result(job.id) if job.backend == self.backend.name else None
            if result is not None and result.get("output"):  # it finished while no server watched: keep its model
                logger.info("job %s finished while the server was down; registering its result", job.id)
                self._finalize(job.id, BackendPoll(running=False, result=result))
                continue
            logger.warning("job %s was running when the server stopped and its process is gone", job.id)
            error = str(result["error"]) if result and result.get("error") else RESTART_ERROR
            self.store.update(job.id, expect=JobState.RUNNING, state=JobState.FAILED, error=error, finished=utc_now())
        self._stop.clear()
        self._thread = threading.Thread(target=self._monitor, name="job-monitor", daemon=True)
        self._thread.start()

    def close(self, stop_running: bool = True) -> None:
        """Stop the monitor; with ``stop_running`` also stop running jobs (recorded ``failed``)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
        if stop_running:
            with self._lock:
                running = sorted(self._running)
            for job_id in running:
                try:
                    poll = self.backend.poll(job_id)
                    if not poll.running:  # it finished between the last tick and now: keep its result
                        self._apply_events(job_id, poll.events)
                        self._finalize(job_id, poll)
                    else:
                        self.backend.stop(job_id, self.stop_grace_s)
                except Exception as exc:  # shutting down: record the job, whatever went wrong
                    logger.warning("job %s: could not stop or finalise it cleanly: %s", job_id, exc)
                self.store.update(
                    job_id, expect=JobState.RUNNING, state=JobState.FAILED, error=SHUTDOWN_ERROR, finished=utc_now()
                )
                self.backend.forget(job_id)
            with self._lock:
                self._running.clear()
        self.store.close()

    # ---- requests -----------------------------------------------------------------------------------
    def _check_budget(self, train: Any, where: str) -> None:
        """Refuse a training budget above the server's per-job limit (the job would be killed before it ends)."""
        if train.time_budget_s is not None and train.time_budget_s > self.settings.job_max_seconds:
            raise InvalidRequest(
                f"{where} {train.time_budget_s:g} s is above this server's job limit of "
                f"{self.settings.job_max_seconds:g} s (LIVEDENOISE_JOB_MAX_SECONDS)"
            )

    def submit(
        self,
        method: str,
        data: str,
        config: dict[str, Any] | None = None,
        *,
        activate: bool = False,
        name: str | None = None,
    ) -> JobRecord:
        """Queue a training job; raises :class:`InvalidRequest` naming a bad field."""
        if not isinstance(method, str) or not _METHOD.match(method):
            raise InvalidRequest(
                f"field 'method' must be a method name like 'deepcad_rt' (lowercase, digits, _), got {method!r}"
            )
        config = dict(config or {})
        reserved = sorted(set(config) & _RESERVED_CONFIG)
        if reserved:
            raise InvalidRequest(
                f"field 'config' may not set {reserved}: they are set by the server (use the request's fields)"
            )
        train = _validate_training_config(method, config)
        self._check_budget(train, "field 'time_budget_s':")
        movie = self.data.resolve(data)
        job = JobRecord(
            id="j-" + uuid.uuid4().hex[:12],
            method=method,
            data=str(movie),
            config=config,
            activate=bool(activate),
            name=name,
            backend=self.backend.name,
        )
        self.store.insert(job)
        logger.info("job %s queued: method %s, data %s, config %s", job.id, method, movie, config)
        self._wake()
        return job

    def submit_compare(
        self,
        data: str,
        *,
        methods: Sequence[str] | None = None,
        time_budget_s: float | None = None,
        max_latency: int | None = None,
        config: dict[str, Any] | None = None,
        overrides: dict[str, dict[str, Any]] | None = None,
        clean: str | None = None,
    ) -> JobRecord:
        """Queue a comparison of ``methods`` (every method when None) on ``data``.

        ``config`` holds training fields for every method, ``overrides`` per method (``{method: {field: value}}``);
        each method's fields are validated as its TrainConfig now, so a bad one is refused before anything runs.
        """
        shared, per_method = dict(config or {}), dict(overrides or {})
        names, configs = _validate_compare(methods, shared, per_method)
        if time_budget_s is not None and not (0 < time_budget_s <= self.settings.job_max_seconds):
            raise InvalidRequest(
                f"field 'time_budget_s' must be above 0 and at most this server's job limit of "
                f"{self.settings.job_max_seconds:g} s (LIVEDENOISE_JOB_MAX_SECONDS), got {time_budget_s:g}"
            )
        for name, train in zip(names, configs, strict=True):
            self._check_budget(train, f"{name}: 'time_budget_s'")
        if max_latency is not None and (
            isinstance(max_latency, bool) or not isinstance(max_latency, int) or max_latency < 0
        ):
            raise InvalidRequest(f"field 'max_latency' must be a whole number of frames >= 0, got {max_latency!r}")
        movie = self.data.resolve(data)
        clean_path = None if clean is None else str(self.data.resolve(clean))
        job = JobRecord(
            id="j-" + uuid.uuid4().hex[:12],
            kind=JobKind.COMPARE,
            method=",".join(names),
            data=str(movie),
            config={
                "methods": names,
                "time_budget_s": time_budget_s,
                "max_latency": max_latency,
                "clean": clean_path,
                "shared": shared,
                "overrides": per_method,
            },
            backend=self.backend.name,
        )
        self.store.insert(job)
        logger.info("job %s queued: compare %s on %s, config %s", job.id, job.method, movie, job.config)
        self._wake()
        return job

    def get(self, job_id: str) -> JobRecord:
        return self.store.get(job_id)

    def report(self, job_id: str, archive: bool = False) -> Path:
        """A succeeded comparison's ``report.html``, or with ``archive`` its whole report folder as a zip.

        Raises :class:`UnknownJob` (404) for an unknown job, one that is not a comparison or whose report is
        gone, and :class:`Conflict` (409) while it has not succeeded; with code ``no_report`` for all but an
        unknown job (``unknown_job``).
        """
        job = self.store.get(job_id)
        if job.kind is not JobKind.COMPARE:
            raise UnknownJob(
                f"job {job_id} is a {job.kind.value} job; only compare jobs have a report", code="no_report"
            )
        if job.state is not JobState.SUCCEEDED:
            why = {
                JobState.QUEUED: "is queued",
                JobState.RUNNING: f"is running ({job.progress:.0%})",
            }.get(job.state, f"{job.state.value}" + (f": {job.error}" if job.error else ""))
            raise Conflict(f"job {job_id} {why}; its report is there once it has succeeded", code="no_report")
        if job.backend != self.backend.name:
            raise Conflict(f"job {job_id} ran on backend {job.backend!r}, not {self.backend.name!r}", code="no_report")
        folder = self.backend.report_dir(job_id)
        html = folder / "report.html"
        if not html.is_file():
            raise UnknownJob(f"the report of job {job_id} is no longer on this server ({folder})", code="no_report")
        return zip_folder(folder, f"{job_id}-compare") if archive else html

    def list(self, state: JobState | None = None, limit: int | None = None) -> list[JobRecord]:
        return self.store.list(state, limit)

    def counts(self) -> dict[str, int]:
        return self.store.counts()

    def logs(self, job_id: str, tail: int = 200) -> JobLogs:
        job = self.store.get(job_id)
        if job.backend != self.backend.name:
            return JobLogs(log="", output=f"job ran on backend {job.backend!r}, not {self.backend.name!r}")
        return self.backend.logs(job_id, tail)

    def cancel(self, job_id: str) -> JobRecord:
        """Cancel a queued or running job (a running one is stopped before this returns)."""
        with self._lock:
            job = self.store.get(job_id)
            if job.state in TERMINAL_STATES:
                raise Conflict(f"job {job_id} is already {job.state.value}")
            if job.state is JobState.QUEUED:
                self.store.update(job_id, expect=JobState.QUEUED, state=JobState.CANCELLED, finished=utc_now())
                logger.info("job %s cancelled while queued", job_id)
                return self.store.get(job_id)
            if job_id not in self._running:
                raise Conflict(f"job {job_id} has finished training and is being finalised; it cannot be cancelled")
            self._cancelling.add(job_id)
        self._stop_running(job_id, JobState.CANCELLED)
        logger.info("job %s cancelled while running", job_id)
        self._wake()
        return self.store.get(job_id)

    # ---- monitor ------------------------------------------------------------------------------------
    def _wake(self) -> None:
        # The monitor polls often enough; starting queued jobs right away keeps submit → running snappy.
        if self._thread is not None:
            self._start_queued()

    def _monitor(self) -> None:
        while not self._stop.wait(self.poll_interval_s):
            try:
                self._tick()
            except Exception:  # the monitor must outlive any single bad job
                logger.exception("job monitor tick failed")

    def _tick(self) -> None:
        self._enforce_deadlines()
        finished: list[tuple[str, BackendPoll]] = []
        with self._lock:
            watched = sorted(self._running - self._cancelling)
        for job_id in watched:
            with self._lock:
                if job_id in self._cancelling or job_id not in self._running:
                    continue
                try:
                    poll = self.backend.poll(job_id)
                except (KeyError, OSError) as exc:
                    logger.error("job %s: its process can no longer be watched: %s", job_id, exc)
                    poll = BackendPoll(
                        running=False, result={"error": f"the job's process could not be watched: {exc}"}
                    )
                self._apply_events(job_id, poll.events)
                if not poll.running:
                    self._running.discard(job_id)
                    self._deadlines.pop(job_id, None)
                    finished.append((job_id, poll))
        for job_id, poll in finished:
            try:
                self._finalize(job_id, poll)
            except Exception as exc:  # a job must never stay `running` because its bookkeeping failed
                logger.exception("job %s: finalising failed", job_id)
                self.store.update(
                    job_id,
                    expect=JobState.RUNNING,
                    state=JobState.FAILED,
                    error=f"finalising the job failed: {exc}",
                    finished=utc_now(),
                )
            self.backend.forget(job_id)
        self._start_queued()

    def _start_queued(self) -> None:
        with self._lock:
            while len(self._running) < self.max_running and not self._stop.is_set():
                job = self.store.oldest_queued()
                if job is None:
                    return
                if job.kind is JobKind.COMPARE:
                    overrides = job.config.get("overrides") or {}
                    devices = [
                        job.config.get("shared", {}).get("device"),
                        *(o.get("device") for o in overrides.values()),
                    ]
                    launch = JobLaunch(
                        job_id=job.id, movie=Path(job.data), config=job.config, kind=JobKind.COMPARE.value,
                        limits=self._limits(devices),
                    )  # fmt: skip
                else:
                    launch = JobLaunch(
                        job_id=job.id, movie=Path(job.data), config={**job.config, "method": job.method},
                        limits=self._limits([job.config.get("device")]),
                    )  # fmt: skip
                try:
                    ref = self.backend.start(launch)
                except (OSError, ValueError) as exc:
                    logger.error("job %s could not start: %s", job.id, exc)
                    self.store.update(
                        job.id,
                        state=JobState.FAILED,
                        error=f"could not start the training process: {exc}",
                        finished=utc_now(),
                    )
                    continue
                self.store.update(
                    job.id, expect=JobState.QUEUED, state=JobState.RUNNING, started=utc_now(), backend_ref=ref
                )
                self._running.add(job.id)
                self._deadlines[job.id] = time.monotonic() + self.settings.job_max_seconds

    def _limits(self, devices: Sequence[str | None]) -> JobLimits:
        # RLIMIT_AS breaks CUDA (it reserves huge address ranges): cap memory only where training runs on the CPU.
        gpu_here = Path("/dev/nvidia0").exists()
        on_gpu = any(str(d).startswith("cuda") or (d in (None, "auto") and gpu_here) for d in (devices or [None]))
        return JobLimits(
            nice=self.settings.job_nice,
            max_memory_bytes=None if on_gpu else self.settings.job_max_memory_bytes,
            threads=self.settings.training_threads(),
        )

    def _enforce_deadlines(self) -> None:
        now = time.monotonic()
        with self._lock:
            late = [
                j
                for j, deadline in self._deadlines.items()
                if now > deadline and j in self._running and j not in self._cancelling
            ]
        for job_id in late:
            limit = self.settings.job_max_seconds
            logger.warning("job %s ran longer than %.0f s; stopping it", job_id, limit)
            with self._lock:
                self._cancelling.add(job_id)
            error = f"the job ran longer than the server's limit of {limit:.0f} s (LIVEDENOISE_JOB_MAX_SECONDS)"
            self._stop_running(job_id, JobState.FAILED, error)

    def _stop_running(self, job_id: str, state: JobState, error: str | None = None) -> None:
        """Stop a running job's process (marked cancelling by the caller) and record it as ``state``."""
        try:
            self.backend.stop(job_id, self.stop_grace_s)
        finally:
            with self._lock:
                self._cancelling.discard(job_id)
                self._running.discard(job_id)
                self._deadlines.pop(job_id, None)
                changes: dict[str, Any] = {"error": error} if error else {}
                self.store.update(job_id, expect=JobState.RUNNING, state=state, finished=utc_now(), **changes)
                self.backend.forget(job_id)

    def _apply_events(self, job_id: str, events: Sequence[dict[str, Any]]) -> None:
        changes: dict[str, Any] = {}
        for event in events:
            if event.get("event") != "progress":
                continue
            if isinstance(event.get("stage"), str):  # a comparison: which method, which stage
                changes["progress_detail"] = {k: event.get(k) for k in ("method", "index", "total", "stage", "message")}
                if "epoch" not in event:  # a method's stage, not its training: its training figures are not current
                    changes.update(epoch=None, epochs=None, loss=None)
            if isinstance(event.get("fraction"), (int, float)):
                changes["progress"] = min(max(float(event["fraction"]), 0.0), 1.0)
            for key in ("epoch", "epochs"):
                if isinstance(event.get(key), int):
                    changes[key] = event[key]
            if isinstance(event.get("loss"), (int, float)):
                changes["loss"] = float(event["loss"])
        if changes:
            self.store.update(job_id, **changes)

    def _finalize(self, job_id: str, poll: BackendPoll) -> None:
        job = self.store.get(job_id)
        result = poll.result or {}
        output = result.get("output")
        if not output or poll.returncode not in (0, None):
            error = result.get("error") or self._crash_message(job_id, poll.returncode)
            logger.warning("job %s failed: %s", job_id, error)
            self.store.update(
                job_id, expect=JobState.RUNNING, state=JobState.FAILED, error=str(error), finished=utc_now()
            )
            return
        if job.kind is JobKind.COMPARE:
            summary = result.get("result")
            if not isinstance(summary, dict):
                self.store.update(
                    job_id, state=JobState.FAILED, error="the comparison wrote no results", finished=utc_now()
                )
                return
            self.store.update(job_id, state=JobState.SUCCEEDED, finished=utc_now(), progress=1.0, result=summary)
            logger.info("job %s succeeded: recommended %s", job_id, summary.get("recommendation", {}).get("name"))
            return
        try:
            record = self.registry.add_path(Path(output), name=job.name or f"{job.method}-{job.id}")
        except LiveDenoiseError as exc:
            logger.warning("job %s exported an unusable model: %s", job_id, exc)
            self.store.update(
                job_id, state=JobState.FAILED, error=f"exported model is invalid: {exc.message}", finished=utc_now()
            )
            return
        changes: dict[str, Any] = {"model_id": record.id, "progress": 1.0}
        if isinstance(result.get("validation"), dict):
            changes["validation"] = result["validation"]
        if job.activate:
            if self.on_activate is None:
                changes["error"] = f"model {record.id} registered but not activated: this server has no ingest process"
            else:
                try:
                    self.on_activate(record.id)
                    changes["activated"] = True
                except Exception as exc:  # the model is trained and registered whatever the ingest process says
                    message = exc.message if isinstance(exc, LiveDenoiseError) else f"{type(exc).__name__}: {exc}"
                    logger.warning("job %s: activating model %s failed: %s", job_id, record.id, message)
                    changes["error"] = f"model {record.id} registered but activation failed: {message}"
        self.store.update(job_id, state=JobState.SUCCEEDED, finished=utc_now(), **changes)
        logger.info(
            "job %s succeeded: model %s%s", job_id, record.id, " (activated)" if changes.get("activated") else ""
        )

    def _crash_message(self, job_id: str, returncode: int | None) -> str:
        output = self.backend.logs(job_id, 5).output.strip().splitlines()
        last = f": {output[-1].strip()}" if output else ""
        return f"training process exited with code {returncode} without a result{last}"
