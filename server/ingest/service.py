"""The ingest service: sockets, threads and lifecycle, plus :func:`run_ingest`, the process entry point.

Threads: the router (ROUTER + PUB, never runs inference), the inference worker (engine) and the control
server (REP, loads new engines beside the serving one). They share one :class:`StreamTable`.
"""

from __future__ import annotations

import logging
import os
import secrets
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any, Protocol

import zmq

from livedenoise.clients.log_setup import configure_logging
from livedenoise.clients.protocol import MAX_HEADER_BYTES, EndReason, ErrorCode
from livedenoise.clients.status import Endpoints, IngestStatus, ServedModel, WindowInfo
from livedenoise.server.engine.base import Engine
from livedenoise.server.engine.loader import load_engine
from livedenoise.server.errors import EngineError, UnknownModel
from livedenoise.server.ingest.auth import CurveServer
from livedenoise.server.ingest.control_server import ControlServer
from livedenoise.server.ingest.replies import end_reply, error_reply
from livedenoise.server.ingest.router import Router
from livedenoise.server.ingest.streams import StreamTable
from livedenoise.server.ingest.worker import InferenceWorker
from livedenoise.server.model_check import refuse_external_data
from livedenoise.server.settings import ServerSettings

__all__ = ["IngestService", "run_ingest"]

logger = logging.getLogger(__name__)

# Replies queued inside ZeroMQ per peer before the router parks them in accounted memory (kept small: what
# sits in the pipe is outside max_buffered_bytes; a peer that reads at camera rate keeps it near empty).
ROUTER_SNDHWM = 32


class _EventLike(Protocol):
    def set(self) -> None: ...


def _bind(sock: zmq.Socket[Any], host: str, port: int) -> str:
    sock.bind(f"tcp://{host}:{port if port else '*'}")
    return sock.getsockopt_string(zmq.LAST_ENDPOINT)


class IngestService:
    """The frames/1 ingest process' machinery, startable in-process (tests) or via :func:`run_ingest`.

    Parameters
    ----------
    settings
        Ports (0 = a free port), limits, provider, default mode.
    model_path, model_id
        Model served from the start (id defaults to the file stem); without one, frames are answered
        ``error``/``no_model`` until ``load_model``.
    engine
        An already opened engine to serve instead of ``model_path`` (embedding, tests).
    """

    def __init__(
        self,
        settings: ServerSettings,
        model_path: Path | None = None,
        model_id: str | None = None,
        *,
        engine: Engine | None = None,
    ) -> None:
        self.settings = settings
        self.table = StreamTable(settings)
        self._initial = (Path(model_path) if model_path is not None else None, model_id, engine)
        self._model_path: Path | None = None
        self._load_lock = threading.Lock()
        self._shutdown = threading.Event()
        self._ctx: zmq.Context[Any] | None = None
        self._router: Router | None = None
        self._worker: InferenceWorker | None = None
        self._control: ControlServer | None = None
        self._curve: CurveServer | None = None
        self._started_at = 0.0
        self._reply_endpoint = ""
        self.swap_timeout_s = 30.0
        # Control requests must carry this; it leaves the process only through the supervisor's ready pipe.
        self.control_secret = secrets.token_hex(16)
        # On every reply: a client that sees it change knows the server restarted and what it had lost.
        self.instance = secrets.token_hex(6)
        self.zmq_endpoint = ""
        self.pub_endpoint = ""
        self.control_endpoint = ""

    # -- lifecycle ---------------------------------------------------------------------------------------
    def start(self) -> None:
        """Open the initial engine, bind the sockets and start the threads (endpoints are set on return)."""
        path, model_id, engine = self._initial
        if engine is None and path is not None:
            engine = self._open(path, model_id or path.stem)
            self._model_path = path
        s = self.settings
        ctx = self._ctx = zmq.Context()
        self._curve = CurveServer(ctx, s) if s.curve_enabled else None
        frontend = ctx.socket(zmq.ROUTER)
        # A message part larger than a frame (plus a header) closes the connection before it is buffered.
        frontend.setsockopt(zmq.MAXMSGSIZE, s.max_frame_bytes + MAX_HEADER_BYTES)
        # Replies a peer does not read stop at its pipe's high-water mark; the router then parks them, counted
        # against max_buffered_bytes. ROUTER_MANDATORY makes a full or vanished peer an error, never a silent drop.
        frontend.setsockopt(zmq.SNDHWM, ROUTER_SNDHWM)
        frontend.setsockopt(zmq.ROUTER_MANDATORY, 1)
        pub = ctx.socket(zmq.PUB)
        pub.setsockopt(zmq.SNDHWM, 1000)
        control = ctx.socket(zmq.REP)
        replies = ctx.socket(zmq.PULL)
        replies.setsockopt(zmq.RCVHWM, 0)
        if self._curve is not None:
            self._curve.secure(frontend)
            self._curve.secure(pub)
        reply_endpoint = self._reply_endpoint = f"inproc://ingest-replies-{id(self)}"
        try:
            self.zmq_endpoint = _bind(frontend, s.bind, s.zmq_port)
            self.pub_endpoint = _bind(pub, s.bind, s.pub_port)
            self.control_endpoint = _bind(control, "127.0.0.1", s.control_port)
            replies.bind(reply_endpoint)
        except zmq.ZMQError:
            for sock in (frontend, pub, control, replies):
                sock.close(linger=0)
            if self._curve is not None:
                self._curve.stop()
            ctx.term()
            raise
        # Sockets are created here and handed to their threads; Thread.start() is the memory barrier
        # ZeroMQ asks for when a socket changes threads.
        self._worker = InferenceWorker(self.table, s, ctx, reply_endpoint, engine, instance=self.instance)
        self._router = Router(
            self.table, frontend, pub, replies, authenticated=self._curve is not None, instance=self.instance
        )
        self._control = ControlServer(self, control)
        self._started_at = time.monotonic()
        self._router.start()
        self._worker.start()
        self._control.start()
        logger.info(
            "ingest listening on %s (pub %s, control %s), model %s",
            self.zmq_endpoint, self.pub_endpoint, self.control_endpoint, engine.model_id if engine else None,
        )  # fmt: skip

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop reading, answer every accepted frame (flushing open series), then close everything.

        Frames still unanswered after ``timeout_s`` get an ordered ``error`` reply with code ``shutdown`` and
        their series an ``end`` reply (reason ``shutdown``): the client knows what was lost.
        """
        if self._ctx is None:
            return
        assert self._router is not None and self._worker is not None and self._control is not None
        self._router.pause_input()
        self.table.end_all()
        deadline = time.monotonic() + timeout_s
        while not self.table.idle() and time.monotonic() < deadline:
            time.sleep(0.01)
        self._worker.stop()
        self._answer_abandoned(timeout_s)
        self._router.stop()
        self._control.stop()
        self._shutdown.set()
        if self._curve is not None:
            self._curve.stop()
        self._ctx.term()
        self._ctx = None
        logger.info("ingest stopped")

    def _answer_abandoned(self, timeout_s: float) -> None:
        """After the worker stopped: an explicit `shutdown` error for every frame it did not answer."""
        abandoned = self.table.take_unanswered()
        if not abandoned:
            return
        assert self._ctx is not None
        frames = sum(len(pending) for _, pending in abandoned)
        logger.warning(
            "ingest stopped with %d frames unanswered after %.1f s: answering them `shutdown`", frames, timeout_s
        )
        push = self._ctx.socket(zmq.PUSH)
        push.setsockopt(zmq.SNDHWM, 0)
        push.connect(self._reply_endpoint)
        message = "the server stopped before this frame was denoised; send it again after the restart"
        try:
            for series, pending in abandoned:
                for frame in pending:
                    push.send_multipart(error_reply(
                        series.identity, ErrorCode.SHUTDOWN, message, stream=series.stream, series=series.series,
                        index=frame.index, t_ns=frame.t_ns, meta=frame.meta, instance=self.instance,
                    ))  # fmt: skip
                reason = series.end_reason or (None if series.ended else EndReason.SHUTDOWN)
                push.send_multipart(end_reply(
                    series.identity, series.stream, series.series, series.end_meta, reason, self.instance
                ))  # fmt: skip
        finally:
            push.close(linger=2000)

    def request_shutdown(self) -> None:
        """Ask whoever waits in :meth:`wait` (e.g. :func:`run_ingest`) to stop the service."""
        self._shutdown.set()

    def wait(self, timeout_s: float | None = None) -> bool:
        """Block until shutdown is requested; False on timeout."""
        return self._shutdown.wait(timeout_s)

    def __enter__(self) -> IngestService:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- models ------------------------------------------------------------------------------------------
    def _open(self, path: Path, model_id: str) -> Engine:
        cache = self.settings.home / "trt_cache"
        return load_engine(
            path,
            self.settings.provider,
            model_id,
            self.settings.intra_op_threads,
            cache_dir=cache,
            precision=self.settings.precision,
            max_batch=self.settings.max_batch,
            max_side=self.settings.trt_max_side,
        )

    def load_model(self, path: str | Path, model_id: str) -> ServedModel:
        """Hot swap: open ``path`` beside the serving engine, switch between batches, return its info.

        Raises
        ------
        InvalidModel
            The file is not a usable model (the serving engine is untouched).
        EngineError
            The provider failed, or the worker did not take the engine in time.
        """
        if self._worker is None:
            raise EngineError("the ingest service is not started")
        with self._load_lock:
            engine = self._open(Path(path), model_id)
            if not self._worker.swap(engine, timeout_s=self.swap_timeout_s):
                engine.close()  # withdrawn: the serving engine stays, now and later
                raise EngineError(
                    f"the inference worker did not take model {model_id!r} within {self.swap_timeout_s:.0f} s; "
                    "the swap was cancelled and the previous model still serves"
                )
            self._model_path = Path(path)
        info = self.model_info()
        assert info is not None
        return info

    def load_registered(self, model_id: str) -> ServedModel:
        """Hot swap to a model of the registry folder, by id (the control channel never takes a path)."""
        path = self.settings.models_dir / f"{model_id}.onnx"
        if not path.is_file():
            raise UnknownModel(f"model {model_id!r} is not in the registry ({self.settings.models_dir})")
        refuse_external_data(path)  # registered files were checked; one planted in the folder was not
        return self.load_model(path, model_id)

    def model_info(self) -> ServedModel | None:
        engine = self._worker.engine if self._worker is not None else None
        if engine is None:
            return None
        w = engine.spec.window
        window = WindowInfo(
            before=w.before, after=w.after, out_frames=w.out_frames, spatial_multiple=w.spatial_multiple
        )
        path = str(self._model_path) if self._model_path is not None else None
        return ServedModel(
            id=engine.model_id,
            method=engine.spec.method,
            window=window,
            path=path,
            estimates=list(engine.spec.estimate_names),
        )

    # -- preview -----------------------------------------------------------------------------------------
    def preview_raw(self, seconds: float) -> dict[str, Any]:
        """Publish decimated raw copies of accepted frames on PUB for ``seconds`` (the dashboard's lease)."""
        if self._router is None:
            raise EngineError("the ingest service is not started")
        return {
            "seconds": self._router.preview_raw(seconds),
            "pub": self.pub_endpoint,
            "instance": self.instance,
            "authentication": "curve" if self._curve is not None else "none",
        }

    # -- status ------------------------------------------------------------------------------------------
    def threads(self) -> dict[str, bool]:
        """Whether each of the service's threads runs; a dead one means ingest must be restarted."""
        parts = {"router": self._router, "worker": self._worker, "control": self._control}
        return {name: part is not None and part.alive for name, part in parts.items()}

    def status(self) -> IngestStatus:
        """Model, provider, uptime, threads, per-stream counters/rates/latency and totals."""
        engine = self._worker.engine if self._worker is not None else None
        streams, totals = self.table.snapshot()
        return IngestStatus(
            pid=os.getpid(),
            instance=self.instance,
            model=self.model_info(),
            provider=engine.provider if engine is not None else self.settings.provider.value,
            uptime_s=round(time.monotonic() - self._started_at, 3) if self._started_at else 0.0,
            endpoints=Endpoints(frames=self.zmq_endpoint, pub=self.pub_endpoint, control=self.control_endpoint),
            threads=self.threads(),
            authentication="curve" if self._curve is not None else "none",
            streams=streams,
            totals=totals,
            precision=getattr(engine, "precision", "fp32"),
        )


def run_ingest(
    settings: ServerSettings,
    model_path: Path | None = None,
    model_id: str | None = None,
    ready: _EventLike | Callable[[IngestService], None] | None = None,
) -> None:
    """Run the ingest service until ``shutdown`` (control channel), SIGTERM or SIGINT.

    Meant as a ``multiprocessing`` (spawn) target; also usable on a thread (signal handlers are only
    installed on the main thread).

    Parameters
    ----------
    ready
        Signalled once the sockets are bound: an object with ``set()`` (e.g. ``multiprocessing.Event``)
        is set; a callable is called with the started :class:`IngestService` (to read its endpoints).
    """
    if not logging.getLogger().handlers:  # run directly, not by the supervisor (which configured it already)
        configure_logging(settings.log_level)
    service = IngestService(settings, model_path, model_id)
    service.start()
    previous: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():

        def _on_signal(signum: int, frame: FrameType | None) -> None:
            logger.info("signal %d: shutting down", signum)
            service.request_shutdown()

        for sig in (signal.SIGTERM, signal.SIGINT):
            previous[sig] = signal.signal(sig, _on_signal)
    try:
        if ready is not None:
            if hasattr(ready, "set"):
                ready.set()
            else:
                ready(service)
        service.wait()
    finally:
        service.stop()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
