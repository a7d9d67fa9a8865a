"""/v1/health: 200 while the ingest process serves, 503 ``degraded`` with the supervisor's view otherwise."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from livedenoise.server.api.app import create_app
from livedenoise.server.ingest.liveness import IngestLiveness, IngestState
from livedenoise.server.settings import ServerSettings

ALL = {"router": True, "worker": True, "control": True}


@pytest.mark.parametrize(
    ("state", "code", "status"),
    [(IngestState.OK, 200, "ok"), (IngestState.BUSY, 200, "ok"), (IngestState.THREAD_DIED, 503, "degraded"),
     (IngestState.DOWN, 503, "degraded")],
)  # fmt: skip
def test_health_reports_the_ingest_state(
    tmp_path: Path, serve_app: Callable[..., Any], state: IngestState, code: int, status: str
) -> None:
    liveness = IngestLiveness()
    liveness.set(state=state, pid=7, threads={**ALL, "worker": state is not IngestState.THREAD_DIED}, detail="x")
    settings = ServerSettings(home=tmp_path / "home", data_root=tmp_path / "data")
    with serve_app(create_app(settings, liveness=liveness)) as url:
        response = httpx.get(f"{url}/v1/health", timeout=10)
    assert response.status_code == code
    body = response.json()
    assert body["status"] == status and body["ingest"]["state"] == state.value and body["ingest"]["pid"] == 7


def test_health_without_a_supervised_ingest_is_ok(client: Any) -> None:
    assert client.health() == {"status": "ok", "version": client.health()["version"], "ingest": None}
