"""The inference thread: forms ready blocks across streams, runs the engine, emits replies in order.

One cycle:

1. Under the stream-table lock, visit active streams round-robin, taking at most one block per stream
   per pass, until ``max_batch`` blocks are taken or nothing more is ready. Per stream this also
   applies the live back-pressure policy (``skipped`` replies for dropped whole blocks), answers frames
   with ``error``/``no_model`` when no engine is loaded, and schedules the ``end`` reply of a finished
   series. Every accepted frame leaves its series' pending queue here exactly once, in arrival order.
2. Without the lock, run the engine once per group of windows with the same shape.
3. Emit every reply of the cycle in the order it was scheduled; per stream that is arrival order, and
   an ``end`` follows its series' last frame.

Engine swaps (hot swap) happen only between cycles, so every block is formed with, and run by, the
engine that was current when it was formed; replies carry that engine's ``model_id``.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import zmq
from numpy.typing import NDArray

from livedenoise.clients.model_spec import SpecError
from livedenoise.clients.protocol import ErrorCode, SkipReason, StreamMode
from livedenoise.clients.windowing import Block, stack_windows
from livedenoise.server.engine.base import MODEL_MISMATCH, Engine
from livedenoise.server.errors import EngineError
from livedenoise.server.ingest.replies import Reply, end_reply, error_reply, frame_reply, skipped_reply
from livedenoise.server.ingest.streams import PendingFrame, SeriesState, StreamState, StreamTable
from livedenoise.server.settings import ServerSettings

__all__ = ["InferenceWorker"]

logger = logging.getLogger(__name__)

IDLE_WAIT_S = 0.05


@dataclass
class _Job:
    """A formed block and the frames it answers."""

    state: StreamState
    series: SeriesState
    block: Block
    frames: list[PendingFrame]
    planes: slice  # the output planes of the series' estimate
    output: NDArray[np.float32] | None = None
    error: tuple[ErrorCode, str] | None = None  # (code, message)


@dataclass
class _Done:
    """A reply built at scheduling time (skipped, no_model error, end), counted under ``counter``."""

    state: StreamState
    reply: Reply
    counter: str | None = None


_Item = _Job | _Done


@dataclass
class _Swap:
    engine: Engine | None
    done: threading.Event = field(default_factory=threading.Event)


class InferenceWorker:
    """Owns the engine and the inproc PUSH socket replies leave through.

    Parameters
    ----------
    table
        The shared stream table.
    settings
        ``max_batch`` and ``live_max_backlog_frames``.
    context, reply_endpoint
        ZeroMQ context and the inproc endpoint the router's PULL socket is bound to.
    engine
        Initial engine (or None: frames are answered ``error``/``no_model``).
    """

    def __init__(
        self,
        table: StreamTable,
        settings: ServerSettings,
        context: zmq.Context[Any],
        reply_endpoint: str,
        engine: Engine | None = None,
        instance: str | None = None,
    ) -> None:
        self.table = table
        self.instance = instance  # carried by every reply
        self.settings = settings
        self._ctx = context
        self._endpoint = reply_endpoint
        self._engine = engine
        table.served_estimates = engine.spec.estimate_names if engine is not None else None
        self._swap: _Swap | None = None
        self._swap_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ingest-worker", daemon=True)
        self._rr = 0

    @property
    def engine(self) -> Engine | None:
        return self._engine

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        with self.table.cond:
            self.table.cond.notify_all()
        self._thread.join(timeout_s)
        if self._engine is not None:
            self._engine.close()

    def swap(self, engine: Engine | None, timeout_s: float = 30.0) -> bool:
        """Hand ``engine`` to the worker; True once it serves. False if the worker did not take it within
        ``timeout_s``: the request is then withdrawn, so it never takes effect later (the caller closes
        ``engine``). The previous engine is closed by the worker after a swap.
        """
        request = _Swap(engine)
        with self._swap_lock:
            self._swap = request
        with self.table.cond:
            self.table.cond.notify_all()
        if request.done.wait(timeout_s):
            return True
        with self._swap_lock:
            if self._swap is request:
                self._swap = None
                return False
        request.done.wait()  # taken in the meantime: it is being applied right now
        return True

    # -- the loop ----------------------------------------------------------------------------------------
    def _run(self) -> None:
        push = self._ctx.socket(zmq.PUSH)
        push.setsockopt(zmq.SNDHWM, 0)  # replies are never dropped between threads
        push.setsockopt(zmq.LINGER, 2000)
        push.connect(self._endpoint)
        try:
            while not self._stop.is_set():
                try:
                    self._cycle(push)
                except Exception:  # a bug costs at most this cycle, never the thread (failures in inference and
                    # in building replies are answered per frame inside the cycle)
                    logger.exception("inference worker: a cycle failed")
                    time.sleep(IDLE_WAIT_S)
        finally:
            push.close()

    def _cycle(self, push: zmq.Socket[Any]) -> None:
        self._apply_swap()
        with self.table.cond:
            items = self._schedule(self._engine)
            if not items:
                self.table.cond.wait(IDLE_WAIT_S)
                return
        try:
            self._infer([item for item in items if isinstance(item, _Job)])
        except Exception as exc:
            logger.exception("inference worker: inference bookkeeping failed")
            for item in items:
                if isinstance(item, _Job) and item.output is None and item.error is None:
                    item.error = (ErrorCode.INTERNAL, f"internal error during inference: {exc!r}")
        self._emit(push, items)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _apply_swap(self) -> None:
        with self._swap_lock:
            request, self._swap = self._swap, None
        if request is None:
            return
        old, self._engine = self._engine, request.engine
        with self.table.cond:
            self.table.served_estimates = request.engine.spec.estimate_names if request.engine is not None else None
        request.done.set()
        if old is not None and old is not request.engine:
            old.close()
        logger.info("engine swapped to %s", getattr(request.engine, "model_id", None))

    # -- 1. scheduling (under the table lock) ------------------------------------------------------------
    def _schedule(self, engine: Engine | None) -> list[_Item]:
        items: list[_Item] = []
        states = [state for state in self.table.streams.values() if state.series]
        if not states:
            return items
        self._rr = (self._rr + 1) % len(states)
        states = states[self._rr :] + states[: self._rr]
        blocks = 0
        progress = True
        while progress and blocks < self.settings.max_batch:
            progress = False
            for state in states:
                if blocks >= self.settings.max_batch:
                    break
                before = len(items)
                if self._advance(state, engine, items):
                    blocks += 1
                progress = progress or len(items) > before
        return items

    def _advance(self, state: StreamState, engine: Engine | None, items: list[_Item]) -> bool:
        """Schedule what is ready on ``state``'s oldest series; True when a block was taken."""
        while state.series:
            series = state.series[0]
            window = series.window
            if engine is None:
                for _ in window.skip_all():
                    frame = series.pending.popleft()
                    message = "no model is loaded; load one with POST /v1/models/{id}/load"
                    reply = error_reply(
                        series.identity, ErrorCode.NO_MODEL, message, stream=series.stream,
                        series=series.series, index=frame.index, t_ns=frame.t_ns, meta=frame.meta,
                        instance=self.instance,
                    )  # fmt: skip
                    items.append(_Done(state, reply, "errors"))
            else:
                spec = engine.spec.window
                planes, reads_after = self._estimate(series, engine)
                if series.mode is StreamMode.LIVE:
                    budget = self.settings.live_max_backlog_frames
                    for dropped in window.drop_oldest(spec, budget, reads_after):
                        for _ in dropped:
                            frame = series.pending.popleft()
                            reply = skipped_reply(
                                series.identity, series.stream, series.series, frame.index, frame.t_ns,
                                frame.meta, SkipReason.BACKLOG, self.instance,
                            )  # fmt: skip
                            items.append(_Done(state, reply, "skipped"))
                block = window.next_block(spec, reads_after)
                if block is not None:
                    frames = [series.pending.popleft() for _ in range(block.count)]
                    state.inflight += block.count
                    items.append(_Job(state, series, block, frames, planes))
                    return True
            if not window.done:
                return False
            state.series.popleft()
            items.append(
                _Done(
                    state,
                    end_reply(
                        series.identity, series.stream, series.series, series.end_meta, series.end_reason, self.instance
                    ),
                )
            )
        return False

    @staticmethod
    def _estimate(series: SeriesState, engine: Engine) -> tuple[slice, int]:
        """Output planes and future frames read of the estimate ``series`` asked for at ``start``; after a
        swap to a model without it, the model's default (logged once per series)."""
        try:
            return engine.spec.estimate(series.estimate)
        except SpecError as exc:
            if not series.estimate_fallback:
                series.estimate_fallback = True
                logger.warning(
                    "stream %.128r series %.128r: %s; serving its default estimate", series.stream, series.series, exc
                )
            return engine.spec.estimate(None)

    # -- 2. inference (no lock) --------------------------------------------------------------------------
    def _infer(self, jobs: list[_Job]) -> None:
        if not jobs:
            return
        engine = self._engine
        assert engine is not None
        groups: dict[tuple[int, ...], list[_Job]] = {}
        for job in jobs:
            groups.setdefault(job.block.shape, []).append(job)
        for shape, group in groups.items():
            try:
                output = engine.infer(stack_windows([job.block for job in group]))
            except EngineError as exc:
                code = ErrorCode.MODEL_MISMATCH if exc.code == MODEL_MISMATCH else ErrorCode.INFERENCE_FAILED
                logger.warning("engine %s failed on windows %s: %s", engine.model_id, shape, exc.message)
                for job in group:
                    job.error = (code, f"model {engine.model_id!r}: {exc.message}")
                continue
            except Exception as exc:  # any backend failure becomes a counted error reply, never a lost frame
                logger.exception("engine %s raised on windows %s", engine.model_id, shape)
                for job in group:
                    job.error = (ErrorCode.INFERENCE_FAILED, f"model {engine.model_id!r}: {exc!r}")
                continue
            for job, out in zip(group, output):
                job.output = out[job.planes]
        with self.table.cond:
            self.table.totals.inc("batches", len(groups))

    # -- 3. replies --------------------------------------------------------------------------------------
    def _emit(self, push: zmq.Socket[Any], items: list[_Item]) -> None:
        model_id = self._engine.model_id if self._engine is not None else ""
        for item in items:
            if isinstance(item, _Done):
                push.send_multipart(item.reply, copy=False)
                if item.counter is not None:
                    with self.table.cond:
                        item.state.counters.inc(item.counter)
                        self.table.totals.inc(item.counter)
                continue
            self._emit_job(push, item, model_id)

    def _emit_job(self, push: zmq.Socket[Any], job: _Job, model_id: str) -> None:
        series = job.series
        latencies: list[float] = []
        for i, frame in enumerate(job.frames):
            latency_ms = (time.monotonic() - frame.received) * 1000.0
            try:
                reply = self._job_reply(job, i, frame, model_id, latency_ms)
            except Exception as exc:  # the frame still gets its one reply, in order
                logger.exception("reply for stream %.128r index %d could not be built", series.stream, frame.index)
                reply = error_reply(
                    series.identity, ErrorCode.INTERNAL, f"internal error building the reply: {exc!r}",
                    stream=series.stream, series=series.series, index=frame.index, t_ns=frame.t_ns,
                    instance=self.instance,
                )  # fmt: skip
            else:
                if job.output is not None:
                    latencies.append(latency_ms)
            push.send_multipart(reply, copy=False)
        with self.table.cond:
            state = job.state
            state.inflight -= len(job.frames)
            if latencies:
                state.counters.inc("frames_out", len(latencies))
                self.table.totals.inc("frames_out", len(latencies))
                state.fps_out.tick(len(latencies))
                for value in latencies:
                    state.latency.add(value)
                    state.latency_buckets.add(value)
            errors = len(job.frames) - len(latencies)
            if errors:
                state.counters.inc("errors", errors)
                self.table.totals.inc("errors", errors)

    def _job_reply(self, job: _Job, i: int, frame: PendingFrame, model_id: str, latency_ms: float) -> Reply:
        series = job.series
        if job.output is not None:
            return frame_reply(
                series.identity, series.stream, series.series, frame.index, frame.t_ns, frame.meta,
                job.output[i], model_id, latency_ms, self.instance,
            )  # fmt: skip
        assert job.error is not None
        code, message = job.error
        return error_reply(
            series.identity, code, message, stream=series.stream, series=series.series,
            index=frame.index, t_ns=frame.t_ns, meta=frame.meta, instance=self.instance,
        )  # fmt: skip
