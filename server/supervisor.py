"""``serve(settings)``: the ingest process (spawned, watched, restarted) plus the control plane (uvicorn).

Process layout::

    main process ── uvicorn (control plane, main thread) ── ingest watchdog thread
         └── ingest process (multiprocessing 'spawn', own session) ── ZMQ ROUTER/PUB/control REP

The ingest child runs in its own session so a terminal's Ctrl-C reaches only the main process, which then
stops uvicorn first and the ingest process second (control ``shutdown``, then SIGTERM, then SIGKILL). If
the ingest process dies on its own, the watchdog logs it, starts a new one (with backoff) and reloads the
active model into it (uvicorn ``supervisors/multiprocess.py`` idea).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
import time
from multiprocessing.connection import Connection
from types import FrameType
from typing import Any

from livedenoise.clients.local_token import TOKEN_FILE, ensure_token
from livedenoise.clients.log_setup import configure_logging as configure_process_logging
from livedenoise.server.errors import LiveDenoiseError
from livedenoise.server.ingest.control import IngestControlClient
from livedenoise.server.ingest.liveness import IngestLiveness, IngestState
from livedenoise.server.registry import ModelRegistry
from livedenoise.server.settings import ServerSettings

__all__ = ["serve", "main", "IngestProcess", "IngestWatchdog", "configure_logging", "IngestStartError"]

logger = logging.getLogger(__name__)


class IngestStartError(RuntimeError):
    """The ingest process did not come up; the message says why and where its log is."""


def configure_logging(settings: ServerSettings, filename: str = "server.log") -> None:
    """Console + rotating file in ``settings.logs_dir`` at ``settings.log_level``; once per process."""
    configure_process_logging(settings.log_level, log_file=settings.logs_dir / filename)


def _ingest_child(settings: ServerSettings, conn: Connection, parent_pid: int) -> None:
    """Entry of the spawned ingest process: report endpoints on ``conn``, stop when the parent disappears."""
    os.setsid()  # terminal signals go to the supervisor only; it decides when ingest stops
    configure_logging(settings, "ingest.log")
    from livedenoise.server.ingest.service import IngestService, run_ingest

    def ready(service: IngestService) -> None:
        conn.send({
            "pid": os.getpid(), "frames": service.zmq_endpoint, "pub": service.pub_endpoint,
            "control": service.control_endpoint, "secret": service.control_secret,
        })  # fmt: skip
        conn.close()

        def orphan_watch() -> None:
            while not service.wait(1.0):
                if os.getppid() != parent_pid:
                    logging.getLogger(__name__).warning("supervisor %d is gone; ingest shuts down", parent_pid)
                    service.request_shutdown()
                    return

        threading.Thread(target=orphan_watch, name="orphan-watch", daemon=True).start()

    try:
        run_ingest(settings, ready=ready)
    except BaseException as exc:
        if not conn.closed:  # failed before ready: tell the supervisor why
            conn.send({"error": f"{type(exc).__name__}: {exc}"})
            conn.close()
        raise


class IngestProcess:
    """One spawned ingest process: start (wait until ready and answering ping) and stop."""

    def __init__(self, settings: ServerSettings, startup_timeout_s: float = 60.0) -> None:
        self.settings = settings
        self.startup_timeout_s = startup_timeout_s
        self.endpoints: dict[str, Any] = {}
        self._proc: multiprocessing.process.BaseProcess | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def is_alive(self) -> bool:
        return self._proc is not None and self._proc.is_alive()

    @property
    def exitcode(self) -> int | None:
        return self._proc.exitcode if self._proc is not None else None

    def start(self) -> dict[str, Any]:
        """Spawn the process; returns its endpoints once it answers ``ping``.

        Raises
        ------
        IngestStartError
            It exited, reported an error or stayed silent past ``startup_timeout_s``.
        """
        ctx = multiprocessing.get_context("spawn")
        receiver, sender = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=_ingest_child, args=(self.settings, sender, os.getpid()), name="ingest", daemon=False)
        proc.start()
        sender.close()
        self._proc = proc
        log = self.settings.logs_dir / "ingest.log"
        deadline = time.monotonic() + self.startup_timeout_s
        message: dict[str, Any] | None = None
        while time.monotonic() < deadline:
            if receiver.poll(0.1):
                try:
                    message = receiver.recv()
                except EOFError:
                    message = None
                break
            if not proc.is_alive():
                break
        receiver.close()
        if message is None or "error" in message:
            self._reap()
            why = (
                message["error"]
                if message
                else f"exited with code {proc.exitcode}"
                if proc.exitcode is not None
                else "did not report ready"
            )
            raise IngestStartError(f"ingest process failed to start: {why} (see {log})")
        client = IngestControlClient(message["control"], message["secret"], timeout_s=5.0)
        try:
            client.ping(timeout_s=max(1.0, deadline - time.monotonic()))
        except LiveDenoiseError as exc:
            self._reap()
            raise IngestStartError(f"ingest process started but does not answer ping: {exc} (see {log})") from None
        self.endpoints = message
        logger.info(
            "ingest process %d ready: frames %s, pub %s, control %s",
            proc.pid,
            message["frames"],
            message["pub"],
            message["control"],
        )
        return message

    def stop(self, timeout_s: float = 15.0) -> None:
        """Ask for ``shutdown`` on the control channel; SIGTERM, then SIGKILL, if it does not exit in time."""
        proc = self._proc
        if proc is None:
            return
        if proc.is_alive() and self.endpoints.get("control"):
            try:
                IngestControlClient(
                    self.endpoints["control"], self.endpoints["secret"], timeout_s=min(5.0, timeout_s)
                ).shutdown()
            except LiveDenoiseError as exc:
                logger.warning("ingest did not acknowledge shutdown (%s); terminating it", exc)
        proc.join(timeout_s)
        self._reap()

    def _reap(self) -> None:
        proc = self._proc
        if proc is None:
            return
        if proc.is_alive():
            proc.terminate()
            proc.join(5.0)
        if proc.is_alive():
            logger.warning("ingest process %s ignored SIGTERM; killing it", proc.pid)
            proc.kill()
            proc.join(5.0)
        if proc.exitcode not in (0, None):
            logger.info("ingest process %s exited with code %s", proc.pid, proc.exitcode)


class IngestWatchdog:
    """Keeps one working ingest process: restarts it (with backoff) when it dies, when one of its threads has
    died, or when it stops answering pings for longer than any command takes; then reloads the active model.

    The shared :class:`IngestControlClient` is re-pointed at the new control endpoint, so the app never
    holds a stale one. What it last saw is in :attr:`liveness` (``/v1/health``).
    """

    def __init__(
        self,
        settings: ServerSettings,
        registry: ModelRegistry,
        client: IngestControlClient,
        process: IngestProcess,
        *,
        check_interval_s: float = 0.5,
        ping_interval_s: float = 2.0,
        unresponsive_after_s: float = 180.0,
        max_backoff_s: float = 30.0,
        liveness: IngestLiveness | None = None,
    ) -> None:
        self.settings = settings
        self.registry = registry
        self.client = client
        self.process = process
        self.check_interval_s = check_interval_s
        self.ping_interval_s = ping_interval_s
        # A load_model may hold the control thread for up to 120 s (TensorRT builds): only silence longer
        # than that is a hung process.
        self.unresponsive_after_s = unresponsive_after_s
        self.max_backoff_s = max_backoff_s
        self.liveness = liveness or IngestLiveness()
        self.restarts = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ingest-watchdog", daemon=True)

    def start(self) -> None:
        if self.process.is_alive():  # IngestProcess.start() has had its first ping answered
            self.liveness.set(state=IngestState.OK, pid=self.process.pid, detail="started")
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=60)

    def _run(self) -> None:
        backoff = 1.0
        healthy_since = last_ping = last_answer = time.monotonic()
        while not self._stop.wait(self.check_interval_s):
            now = time.monotonic()
            if self.process.is_alive():
                if now - last_ping < self.ping_interval_s:
                    continue
                last_ping = now
                problem = self._check()
                if problem is None:
                    last_answer = now
                    if now - healthy_since > 60:
                        backoff = 1.0
                    continue
                if problem is IngestState.BUSY:
                    if now - last_answer < self.unresponsive_after_s:
                        continue
                    problem = IngestState.UNRESPONSIVE
                    self.liveness.set(state=problem, detail=f"no answer to pings for {now - last_answer:.0f} s")
                logger.error("ingest process %s: %s; restarting it", self.process.pid, self.liveness.get().detail)
                self.process.stop(timeout_s=10.0)
            else:
                detail = f"ingest process {self.process.pid} died unexpectedly (exit code {self.process.exitcode})"
                self.liveness.set(state=IngestState.DOWN, detail=detail)
                logger.error("%s; restarting it", detail)
            if self._stop.wait(min(backoff, self.max_backoff_s)):
                return
            backoff = min(backoff * 2, self.max_backoff_s)
            try:
                endpoints = self.process.start()
            except IngestStartError as exc:
                self.liveness.set(state=IngestState.DOWN, detail=str(exc))
                logger.error("%s; will retry", exc)
                continue
            self.client.endpoint, self.client.secret = endpoints["control"], endpoints["secret"]
            self.restarts += 1
            self.liveness.set(state=IngestState.OK, pid=self.process.pid, restarts=self.restarts, detail="restarted")
            healthy_since = last_ping = last_answer = time.monotonic()
            reload_active_model(self.registry, self.client)

    def _check(self) -> IngestState | None:
        """Ping the ingest process: None when every thread runs, else the state it is in (recorded)."""
        try:
            reply = self.client.ping(timeout_s=min(2.0, self.ping_interval_s))
        except LiveDenoiseError as exc:
            self.liveness.set(state=IngestState.BUSY, detail=f"ping: {exc.message}")
            return IngestState.BUSY
        threads = {str(k): bool(v) for k, v in dict(reply.get("threads") or {}).items()}
        dead = sorted(name for name, alive in threads.items() if not alive)
        if dead:
            self.liveness.set(
                state=IngestState.THREAD_DIED,
                pid=self.process.pid,
                threads=threads,
                detail=f"ingest thread(s) {', '.join(dead)} died",
            )
            return IngestState.THREAD_DIED
        self.liveness.set(state=IngestState.OK, pid=self.process.pid, threads=threads, detail="")
        return None


def reload_active_model(registry: ModelRegistry, client: IngestControlClient) -> str | None:
    """Load the registry's active model into a fresh ingest process; returns its id (None if none or it failed)."""
    model_id = registry.active_id()
    if model_id is None:
        return None
    try:
        client.load_model(model_id)
    except LiveDenoiseError as exc:
        logger.error("could not load the active model %s into the ingest process: %s", model_id, exc)
        return None
    logger.info("ingest serves the active model %s", model_id)
    return model_id


class _StopRequested(Exception):
    """SIGTERM arrived outside uvicorn's own signal handling."""


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    raise _StopRequested(signum)


def serve(settings: ServerSettings) -> None:
    """Run the ingest process and the control plane until Ctrl-C or SIGTERM, then stop both.

    With ``settings.model`` the file is registered (validated) and served from the start; otherwise the
    registry's active model, if any, is served again.

    Raises
    ------
    InvalidModel
        ``settings.model`` is not a usable model (nothing is started).
    IngestStartError
        The ingest process could not start.
    """
    import uvicorn

    from livedenoise.server.api.app import create_app

    configure_logging(settings)
    settings.ensure_dirs()
    if not settings.api_token:  # mutating endpoints are never open: a token is made once and kept in the home
        settings = settings.model_copy(update={"api_token": ensure_token(settings.home)})
        logger.info("API token: %s (local clients read it; give it to remote ones)", settings.home / TOKEN_FILE)
    registry = ModelRegistry(settings.models_dir, max_bytes=settings.max_upload_bytes)
    initial = registry.add_path(settings.model).id if settings.model is not None else None

    # SIGTERM behaves like Ctrl-C from here on: unwind into the `finally` below. While uvicorn runs it
    # captures both signals itself and re-raises them through these handlers once it has shut down.
    previous = signal.signal(signal.SIGTERM, _raise_stop)
    process = IngestProcess(settings)
    watchdog: IngestWatchdog | None = None
    try:
        endpoints = process.start()
        client = IngestControlClient(endpoints["control"], endpoints["secret"], timeout_s=10.0)
        if initial is not None:
            client.load_model(initial)
            registry.set_active(initial)
            logger.info("serving model %s from %s", initial, settings.model)
        else:
            reload_active_model(registry, client)
        watchdog = IngestWatchdog(settings, registry, client, process)
        watchdog.start()
        app = create_app(settings, ingest=client, registry=registry, liveness=watchdog.liveness)
        config = uvicorn.Config(
            app, host=settings.bind, port=settings.http_port, log_config=None, timeout_graceful_shutdown=10
        )
        logger.info(
            "control plane on http://%s:%d, frames on %s", settings.bind, settings.http_port, endpoints["frames"]
        )
        uvicorn.Server(config).run()
    except (KeyboardInterrupt, _StopRequested):
        logger.info("stop requested")
    finally:
        if watchdog is not None:
            watchdog.stop()
        process.stop()
        signal.signal(signal.SIGTERM, previous)
        logger.info("livedenoise server stopped")


def main() -> None:
    """``python -m livedenoise.server.supervisor``: settings from the ``LIVEDENOISE_*`` environment."""
    try:
        settings = ServerSettings()
    except ValueError as exc:
        raise SystemExit(f"invalid server settings: {exc}") from None
    try:
        serve(settings)
    except (LiveDenoiseError, IngestStartError) as exc:
        raise SystemExit(f"livedenoise server failed: {exc}") from None


if __name__ == "__main__":
    main()
