"""A real control plane on 127.0.0.1: uvicorn on a thread (httpx's ``serve_in_thread`` pattern), a real
IngestService on random ports, a private LIVEDENOISE home, and tiny real ONNX models."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
import uvicorn

from livedenoise.clients.control import ControlClient
from livedenoise.clients.model_spec import WindowSpec
from livedenoise.server.api.app import create_app
from livedenoise.server.ingest.control import IngestControlClient
from livedenoise.server.ingest.service import IngestService
from livedenoise.server.settings import ServerSettings


class ThreadServer(uvicorn.Server):
    """uvicorn on a worker thread: no signal handling (the test process owns its signals)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    @property
    def port(self) -> int:
        return int(self.servers[0].sockets[0].getsockname()[1])


@contextlib.contextmanager
def serve_in_thread(app: Any) -> Iterator[str]:
    server = ThreadServer(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, name="uvicorn-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@pytest.fixture
def model_file(tmp_path: Path, onnx_models: ModuleType) -> Callable[..., Path]:
    def make(seed: int = 0) -> Path:
        return onnx_models.make_mix_model(tmp_path / f"mix-{seed}.onnx", WindowSpec(before=1, after=1), seed=seed)

    return make


@pytest.fixture
def settings(tmp_home: Path) -> ServerSettings:
    s = ServerSettings(home=tmp_home, data_root=tmp_home / "data", zmq_port=0, pub_port=0, control_port=0, http_port=0)
    s.ensure_dirs()
    return s


@pytest.fixture
def ingest(settings: ServerSettings) -> Iterator[IngestService]:
    service = IngestService(settings)
    service.start()
    yield service
    service.stop()


@pytest.fixture
def start_server(settings: ServerSettings, ingest: IngestService) -> Iterator[Callable[..., str]]:
    """Factory: start a control plane (same home each time, so restarts can be tested); returns its URL."""
    stack = contextlib.ExitStack()

    def start(*, token: str | None = None, with_ingest: bool = True, ingest_timeout_s: float = 10.0) -> str:
        s = settings.model_copy(update={"api_token": token}) if token else settings
        client = (
            IngestControlClient(ingest.control_endpoint, ingest.control_secret, timeout_s=ingest_timeout_s)
            if with_ingest
            else None
        )
        return stack.enter_context(serve_in_thread(create_app(s, ingest=client)))

    with stack:
        yield start


@pytest.fixture
def server(start_server: Callable[..., str]) -> str:
    return start_server()


@pytest.fixture
def client(server: str) -> Iterator[ControlClient]:
    with ControlClient(server, timeout=30.0) as c:
        yield c


@pytest.fixture
def tiny_movie(settings: ServerSettings) -> str:
    """A 24-frame 32x32 noisy uint16 movie inside the data root; returns its path relative to the root."""
    rng = np.random.default_rng(0)
    t, y, x = np.meshgrid(np.arange(24), np.arange(32), np.arange(32), indexing="ij")
    clean = 200 + 150 * np.exp(-((y - 16) ** 2 + (x - 12 - t / 4) ** 2) / 20)
    noisy = rng.poisson(clean).astype(np.uint16)
    (settings.resolved_data_root / "movies").mkdir(parents=True, exist_ok=True)
    np.save(settings.resolved_data_root / "movies" / "tiny.npy", noisy)
    return "movies/tiny.npy"


def wait_until(
    predicate: Callable[[], Any], timeout_s: float = 60.0, interval_s: float = 0.1, what: str = "condition"
) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail the test after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(interval_s)


@pytest.fixture
def wait() -> Callable[..., Any]:
    return wait_until


# Small enough for ~seconds on 2 CPU cores: 1 epoch of 2 patches of 8x16x16 through a 2-level, 4-channel U-Net.
TINY_CONFIG = {
    "epochs": 1,
    "patch_t": 8,
    "patch_xy": 16,
    "batch_size": 1,
    "patches_per_epoch": 2,
    "base_channels": 4,
    "levels": 2,
    "device": "cpu",
}
# Runs until cancelled (far more work than any test waits for).
LONG_CONFIG = {**TINY_CONFIG, "epochs": 500, "patches_per_epoch": 64}


@pytest.fixture
def tiny_config() -> dict[str, Any]:
    return dict(TINY_CONFIG)


@pytest.fixture
def long_config() -> dict[str, Any]:
    return dict(LONG_CONFIG)


def worker_processes(job_dir: Path) -> list[int]:
    """Pids of live worker processes for ``job_dir`` (from /proc)."""
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().split(b"\0")
            state = (proc / "stat").read_text().rsplit(")", 1)[-1].split()[0]
        except OSError:
            continue
        if str(job_dir).encode() in cmdline and b"livedenoise.models.job_worker" in cmdline and state != "Z":
            pids.append(int(proc.name))
    return pids


@pytest.fixture
def worker_pids() -> Callable[[Path], list[int]]:
    return worker_processes


@pytest.fixture
def serve_app() -> Callable[[Any], contextlib.AbstractContextManager[str]]:
    """``with serve_app(app) as url``: a real uvicorn server for an app the test builds itself."""
    return serve_in_thread
