"""The watchdog restarts an ingest process that is alive but no longer works (a dead thread, or silence for
longer than any command takes), not only one that exited; /v1/health reports what it saw."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from livedenoise.server.errors import IngestUnavailable
from livedenoise.server.ingest.liveness import IngestState
from livedenoise.server.registry import ModelRegistry
from livedenoise.server.settings import ServerSettings
from livedenoise.server.supervisor import IngestWatchdog


class FakeProcess:
    def __init__(self) -> None:
        self.pid, self.exitcode, self.alive, self.stops, self.starts = 100, None, True, 0, 0

    def is_alive(self) -> bool:
        return self.alive

    def stop(self, timeout_s: float = 15.0) -> None:
        self.stops += 1
        self.alive = False

    def start(self) -> dict[str, Any]:
        self.starts += 1
        self.pid += 1
        self.alive = True
        return {"control": f"tcp://127.0.0.1:{self.pid}", "secret": f"s{self.pid}"}


class FakeClient:
    """Ping answers from a script: a dict of threads, or an exception (no answer)."""

    def __init__(self, answers: list[dict[str, bool] | Exception]) -> None:
        self.answers = answers
        self.endpoint = "tcp://127.0.0.1:1"
        self.secret = "s"
        self.pings = 0

    def ping(self, timeout_s: float | None = None) -> dict[str, Any]:
        answer = self.answers[min(self.pings, len(self.answers) - 1)]
        self.pings += 1
        if isinstance(answer, Exception):
            raise answer
        return {"ok": True, "pid": 1, "threads": answer}


ALL = {"router": True, "worker": True, "control": True}


def _watchdog(tmp_path: Path, client: FakeClient, process: FakeProcess, **timing: float) -> IngestWatchdog:
    settings = ServerSettings(home=tmp_path / "home")
    registry = ModelRegistry(tmp_path / "models")
    return IngestWatchdog(settings, registry, client, process, check_interval_s=0.01, ping_interval_s=0.01,  # type: ignore[arg-type]
                          max_backoff_s=0.01, **timing)  # fmt: skip


def _until(predicate: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 10
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def test_a_dead_thread_restarts_the_process(tmp_path: Path) -> None:
    process = FakeProcess()
    client = FakeClient([ALL, {**ALL, "router": False}, ALL])
    watchdog = _watchdog(tmp_path, client, process)
    watchdog.start()
    try:
        _until(lambda: watchdog.restarts == 1 and client.pings >= 4, "a restart")
    finally:
        watchdog.stop()
    assert (process.stops, process.starts) == (1, 1)
    assert (client.endpoint, client.secret) == ("tcp://127.0.0.1:101", "s101")
    seen = watchdog.liveness.get()
    assert (seen.state, seen.restarts, seen.pid) == (IngestState.OK, 1, 101)


def test_a_busy_control_thread_is_not_restarted_until_it_is_silent_too_long(tmp_path: Path) -> None:
    process = FakeProcess()
    silent = IngestUnavailable("did not answer 'ping'")
    client = FakeClient([silent])
    watchdog = _watchdog(tmp_path, client, process, unresponsive_after_s=60.0)
    watchdog.start()
    try:
        _until(lambda: client.pings >= 5, "pings")
        assert watchdog.liveness.get().state is IngestState.BUSY and process.stops == 0
    finally:
        watchdog.stop()

    client = FakeClient([silent, silent, silent, silent, ALL])
    watchdog = _watchdog(tmp_path, client, FakeProcess(), unresponsive_after_s=0.02)
    watchdog.start()
    try:
        _until(lambda: watchdog.restarts == 1, "a restart of a silent process")
    finally:
        watchdog.stop()
