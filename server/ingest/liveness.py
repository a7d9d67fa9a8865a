"""What the supervisor last learned about the ingest process, for ``/v1/health`` (read without blocking).

The watchdog pings the ingest process every few seconds; the ping reply says whether each of its threads
(router, worker, control) still runs. A process that is alive with a dead thread accepts no frames or answers
none, so the watchdog restarts it, and health reports it until then.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field, replace
from enum import Enum

__all__ = ["IngestState", "IngestHealth", "IngestLiveness"]


class IngestState(str, Enum):
    STARTING = "starting"  # not yet answered a ping
    OK = "ok"  # alive, every thread runs
    BUSY = "busy"  # alive, the control thread is busy (loading a model) and has not answered the last ping
    THREAD_DIED = "thread_died"  # alive, a thread has died: being restarted
    UNRESPONSIVE = "unresponsive"  # alive, has not answered pings for longer than any command takes: being restarted
    DOWN = "down"  # the process is not running: being restarted


#: States in which the ingest serves frames (health is "ok").
SERVING = frozenset({IngestState.OK, IngestState.BUSY})


@dataclass(frozen=True)
class IngestHealth:
    state: IngestState = IngestState.STARTING
    pid: int | None = None
    threads: dict[str, bool] = field(default_factory=dict)
    restarts: int = 0
    detail: str = ""
    checked_at: float = 0.0  # time.time() of the last check

    @property
    def serving(self) -> bool:
        return self.state in SERVING


class IngestLiveness:
    """A thread-safe holder of the latest :class:`IngestHealth`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._health = IngestHealth()

    def get(self) -> IngestHealth:
        with self._lock:
            return self._health

    def set(self, **changes: object) -> IngestHealth:
        with self._lock:
            self._health = replace(self._health, checked_at=time.time(), **changes)  # type: ignore[arg-type]
            return self._health
