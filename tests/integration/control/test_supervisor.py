"""`serve(settings)` as a real process tree: supervisor + spawned ingest process, SIGTERM, ingest restart."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from livedenoise.clients.control import ControlClient, ControlError


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0]
    except OSError:
        return True
    return state == "Z"


def _env(home: Path, http_port: int, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIVEDENOISE_")}
    env.update(
        LIVEDENOISE_HOME=str(home),
        LIVEDENOISE_HTTP_PORT=str(http_port),
        LIVEDENOISE_ZMQ_PORT="0",
        LIVEDENOISE_PUB_PORT="0",
        LIVEDENOISE_CONTROL_PORT="0",
        PYTHONUNBUFFERED="1",
        **extra,
    )
    return env


def _wait_status(
    control: ControlClient, proc: subprocess.Popen[bytes], timeout_s: float, pid_not: int | None = None
) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"server exited with code {proc.returncode}"
        try:
            status = control.status()
            if status.model and status.pid != pid_not:
                return status
        except ControlError:
            pass
        time.sleep(0.2)
    pytest.fail(f"server did not serve a model within {timeout_s} s")


@pytest.mark.slow
def test_serve_starts_both_processes_restarts_ingest_and_stops_on_sigterm(
    tmp_path: Path, free_port, model_file
) -> None:
    home, port = tmp_path / "home", free_port()
    log = (tmp_path / "server.out").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "livedenoise.server.supervisor"],
        env=_env(home, port, LIVEDENOISE_MODEL=str(model_file(seed=11))),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        with ControlClient(f"http://127.0.0.1:{port}", timeout=5) as control:
            status = _wait_status(control, proc, 60)
            health = control.health()
            assert health["status"] == "ok" and health["ingest"]["state"] == "ok"
            assert health["ingest"]["pid"] == status.pid

            # No LIVEDENOISE_API_TOKEN: the server made one, private to its user, and requires it.
            token_file = home / "api_token"
            assert (token_file.stat().st_mode & 0o777) == 0o600
            load = f"http://127.0.0.1:{port}/v1/models/m-000000000000/load"
            assert httpx.post(load).status_code == 401
            assert (
                httpx.post(load, headers={"Authorization": f"Bearer {token_file.read_text().strip()}"}).status_code
                == 404
            )
            ingest_pid = status.pid
            assert ingest_pid != proc.pid and not _gone(ingest_pid)
            model_id = status.model.id
            assert status.control.active_model == model_id and [m.id for m in control.models()] == [model_id]

            # The ingest process dies: the supervisor starts a new one and serves the active model again.
            os.kill(ingest_pid, signal.SIGKILL)
            restarted = _wait_status(control, proc, 60, pid_not=ingest_pid)
            assert restarted.model.id == model_id and restarted.pid != ingest_pid
            new_ingest_pid = restarted.pid

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        deadline = time.monotonic() + 10
        while not _gone(new_ingest_pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _gone(new_ingest_pid), "the ingest process outlived the supervisor"
        with pytest.raises(httpx.TransportError):
            httpx.get(f"http://127.0.0.1:{port}/v1/health", timeout=2)
        assert (home / "logs" / "server.log").read_text().count("ingest process") >= 2
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()


def test_serve_refuses_an_invalid_model_with_a_clear_message(tmp_path: Path, free_port, onnx_models) -> None:
    bad = onnx_models.write_corrupt_model(tmp_path / "bad.onnx")
    out = subprocess.run(
        [sys.executable, "-m", "livedenoise.server.supervisor"],
        env=_env(tmp_path / "home", free_port(), LIVEDENOISE_MODEL=str(bad)),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode != 0
    assert "livedenoise server failed: not a valid ONNX model" in out.stderr
