"""Training-job subprocess: ``python -m livedenoise.models.job_worker JOB_DIR``.

``JOB_DIR/job.json`` is ``{"movie": path (.tif/.tiff/.npy), "config": TrainConfig dict, "output": path.onnx}``.
The worker writes, in ``JOB_DIR``:

- ``train.log``: log lines (also on stderr);
- ``progress.jsonl``: one JSON event per line, appended and flushed: ``{"event": "started", "t": ...}``,
  ``{"event": "progress", "epoch", "epochs", "fraction" (0..1), "loss", "t"}`` (throttled to about one
  per second, plus every epoch end), ``{"event": "exporting", "t"}``, then ``{"event": "done", "t"}`` or
  ``{"event": "error", "error", "t"}``;
- ``result.json``: ``{"output", "spec" (ModelSpec dict), "history", "validation"}`` (the held-out score beside
  the best classical filter's, or null for a movie too short to hold frames out) and exit 0 on success;
  ``{"error": message}`` and exit 1 on failure; ``{"error": ..., "cancelled": true}`` and exit 1 when
  stopped by SIGTERM (checked between training steps).

A comparison (``"kind": "compare"`` in ``job.json``; without it the job trains) has ``config``
``{"methods", "time_budget_s", "max_latency", "clean", "shared", "overrides"}`` (the arguments of
:func:`livedenoise.models.compare.compare_methods`) and ``output`` the report folder. Its progress events carry
``method``, ``index`` (1-based), ``total``, ``stage`` (``train``, ``score``, ``skip``, ``done``) and ``message``
beside ``fraction`` (of the whole comparison) and, while a method trains, its ``epoch``, ``epochs`` and
``loss``. Its ``result.json`` is ``{"output": report folder, "result": results.json}``. SIGTERM stops it at the
next progress report (a training step or a method's next stage).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Any

from numpy.typing import NDArray

from livedenoise.clients.log_setup import configure_logging

__all__ = ["main", "run_job", "COMPARE"]

logger = logging.getLogger("livedenoise.models.job_worker")

_PROGRESS_INTERVAL_S = 1.0
COMPARE = "compare"
_TRAIN_SHARE = 0.9  # of a compared method's progress fraction


class _Cancelled(Exception):
    """Raised from a comparison's progress callback on SIGTERM.

    Deliberately neither ValueError nor RuntimeError: ``compare_methods`` records those as a failed method and
    goes on to the next one.
    """


def _read_movie(path: Path) -> NDArray[Any]:
    from livedenoise.clients.movie_io import read_movie

    return read_movie(path)


def _configure_logging(job_dir: Path) -> None:
    configure_logging(log_file=job_dir / "train.log", rotate=False)


class _Events:
    """Appends JSON events to ``progress.jsonl``, flushing each line so a reader never sees half a line."""

    def __init__(self, path: Path) -> None:
        self._fh = path.open("a", encoding="utf-8")
        self._last = 0.0

    def emit(self, event: str, **fields: Any) -> None:
        self._fh.write(json.dumps({"event": event, **fields, "t": time.time()}) + "\n")
        self._fh.flush()

    def progress(self, p: Any) -> None:
        now = time.monotonic()
        if p.epoch_done or now - self._last >= _PROGRESS_INTERVAL_S:
            self._last = now
            extra = {"val_gain_db": p.val_gain_db} if p.val_gain_db is not None else {}
            self.emit("progress", epoch=p.epoch, epochs=p.epochs, fraction=round(p.fraction, 6), loss=p.loss, **extra)

    def compare_progress(self, p: Any) -> None:
        """A comparison's report: every stage change, and training steps throttled as :meth:`progress`."""
        train = p.train
        # Of one method's share: training, then denoising and scoring (its last tenth, a rough guess).
        if p.stage in ("done", "skip"):
            done = 1.0
        elif p.stage == "score":
            done = _TRAIN_SHARE
        else:
            done = _TRAIN_SHARE * (float(train.fraction) if train is not None else 0.0)
        fields: dict[str, Any] = {
            "method": p.method,
            "index": p.index,
            "total": p.total,
            "stage": p.stage,
            "message": p.message,
            "fraction": round((p.index - 1 + done) / max(p.total, 1), 6),
        }
        if train is not None:
            now = time.monotonic()
            if not train.epoch_done and now - self._last < _PROGRESS_INTERVAL_S:
                return
            self._last = now
            fields.update(epoch=train.epoch, epochs=train.epochs, loss=train.loss)
        self.emit("progress", **fields)

    def close(self) -> None:
        self._fh.close()


def _write_result(job_dir: Path, doc: dict[str, Any]) -> None:
    tmp = job_dir / "result.json.tmp"
    tmp.write_text(json.dumps(doc, indent=2))
    os.replace(tmp, job_dir / "result.json")  # atomic: a reader sees the whole file or none


def _run_compare(job: Path, spec_doc: dict[str, Any], events: _Events, stop: threading.Event) -> int:
    """The comparison of ``job.json``: ``compare_methods`` writing its report folder to ``output``."""
    from livedenoise.models.compare import compare_methods

    config = spec_doc["config"]
    if not isinstance(config, dict):
        raise ValueError('job.json "config" of a comparison must be an object')
    movie_path = Path(spec_doc["movie"])
    movie = _read_movie(movie_path)
    clean = _read_movie(Path(config["clean"])) if config.get("clean") else None
    out = Path(spec_doc["output"])
    logger.info(
        "job %s: comparing %s on %s %s %s", job.name, config.get("methods"), movie_path, movie.shape, movie.dtype
    )

    def progress(p: Any) -> None:
        if stop.is_set():
            raise _Cancelled("stopped by the server")
        events.compare_progress(p)

    try:
        result = compare_methods(
            movie,
            config.get("methods"),
            config.get("time_budget_s"),
            out,
            clean=clean,
            max_latency=config.get("max_latency"),
            progress=progress,
            overrides=config.get("overrides") or {},
            shared=config.get("shared") or {},
            movie_name=movie_path.name,
        )
    except _Cancelled as exc:
        logger.info("job cancelled: %s", exc)
        events.emit("error", error=str(exc), cancelled=True)
        _write_result(job, {"error": f"cancelled: {exc}", "cancelled": True})
        return 1
    # results.json as written (regions included), so the job's result is exactly the report's summary.
    summary = json.loads((out / result.files["json"]).read_text(encoding="utf-8"))
    _write_result(job, {"output": str(out), "result": summary})
    events.emit("done")
    logger.info("job done: %s; recommended %s", out, result.recommendation.name)
    return 0


def run_job(job_dir: str | Path, stop: threading.Event | None = None) -> int:
    """Run the job described by ``job_dir/job.json``; return the process exit code (0 ok, 1 failed)."""
    job = Path(job_dir)
    stop = stop or threading.Event()
    events = _Events(job / "progress.jsonl")
    events.emit("started", pid=os.getpid())
    try:
        # Imported here so that a bad job.json is reported without paying for torch's import first.
        spec_doc = json.loads((job / "job.json").read_text())
        if not isinstance(spec_doc, dict) or not {"movie", "config", "output"} <= spec_doc.keys():
            raise ValueError('job.json must be an object with "movie", "config" and "output"')
        if spec_doc.get("kind", "train") == COMPARE:
            return _run_compare(job, spec_doc, events, stop)
        if spec_doc.get("kind", "train") != "train":
            raise ValueError(f"job.json \"kind\" must be 'train' or 'compare', got {spec_doc['kind']!r}")
        from livedenoise.models.config import TrainConfig
        from livedenoise.models.pipeline import train_and_export
        from livedenoise.models.trainer import TrainingStopped

        config = TrainConfig(**spec_doc["config"])
        movie = _read_movie(Path(spec_doc["movie"]))
        logger.info(
            "job %s: movie %s %s %s, config %s",
            job.name,
            spec_doc["movie"],
            movie.shape,
            movie.dtype,
            config.to_json_dict(),
        )

        def progress(p: Any) -> None:
            events.progress(p)
            if p.fraction >= 1.0 and p.epoch_done:
                events.emit("exporting")

        try:
            result, spec = train_and_export(
                movie, config, spec_doc["output"], progress=progress, should_stop=stop.is_set
            )
        except TrainingStopped as exc:
            logger.info("job cancelled: %s", exc)
            events.emit("error", error=str(exc), cancelled=True)
            _write_result(job, {"error": f"cancelled: {exc}", "cancelled": True})
            return 1
        validation = result.validation.to_dict() if result.validation is not None else None
        _write_result(
            job,
            {
                "output": str(spec_doc["output"]),
                "spec": json.loads(spec.to_json()),
                "history": result.history,
                "validation": validation,
            },
        )
        events.emit("done")
        logger.info("job done: %s", spec_doc["output"])
        return 0
    except Exception as exc:  # the job boundary: every failure becomes result.json + exit 1
        logger.exception("job failed")
        message = f"{type(exc).__name__}: {exc}"
        events.emit("error", error=message)
        _write_result(job, {"error": message})
        return 1
    finally:
        events.close()


def main(argv: list[str] | None = None) -> int:
    """Entry point: ``python -m livedenoise.models.job_worker JOB_DIR``."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        sys.stderr.write("usage: python -m livedenoise.models.job_worker JOB_DIR\n")
        return 2
    job_dir = Path(args[0])
    if not (job_dir / "job.json").is_file():
        sys.stderr.write(f"{job_dir}: no job.json in the job directory\n")
        return 2
    _configure_logging(job_dir)
    stop = threading.Event()

    def on_term(signum: int, frame: FrameType | None) -> None:
        logger.info("received signal %d: stopping after the current step", signum)
        stop.set()

    signal.signal(signal.SIGTERM, on_term)
    return run_job(job_dir, stop)


if __name__ == "__main__":
    sys.exit(main())
