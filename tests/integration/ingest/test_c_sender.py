"""The C example sender (docs/examples/sender.c), built with the system's compiler and libzmq and run against a
real server: plain and with CURVE keys. Skipped where no C compiler or libzmq headers exist."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from livedenoise.clients.keys import create_key_pair, load_key_pair, load_public_key
from livedenoise.clients.model_spec import WindowSpec
from livedenoise.server.engine.loader import load_engine
from livedenoise.server.engine.offline import denoise_movie
from livedenoise.server.ingest.service import IngestService
from livedenoise.server.settings import ServerSettings

SOURCE = Path(__file__).resolve().parents[3] / "docs" / "examples" / "sender.c"
FRAMES, HEIGHT, WIDTH = 100, 24, 20


@pytest.fixture(scope="module")
def sender(tmp_path_factory: pytest.TempPathFactory) -> Path:
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None or not Path("/usr/include/zmq.h").exists():
        pytest.skip("needs a C compiler and libzmq headers (Debian: libzmq3-dev)")
    binary = tmp_path_factory.mktemp("c") / "sender"
    subprocess.run([compiler, "-O2", "-Wall", "-Werror", "-o", str(binary), str(SOURCE), "-lzmq"], check=True)
    return binary


def _movie() -> np.ndarray:
    i, y, x = np.meshgrid(np.arange(FRAMES), np.arange(HEIGHT), np.arange(WIDTH), indexing="ij")
    return ((i * 7 + y * 3 + x) % 4096).astype(np.uint16)


def _run(binary: Path, endpoint: str, *keys: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(binary), endpoint, "cam-c", str(FRAMES), str(HEIGHT), str(WIDTH), *keys],
                          capture_output=True, text=True, timeout=120)  # fmt: skip


def _check(done: subprocess.CompletedProcess[str], model: Path) -> None:
    assert done.returncode == 0, done.stderr
    words = done.stdout.split()
    counts = dict(zip(words[0:12:2], map(int, words[1:12:2])))
    assert counts == {"frames": FRAMES, "replies": FRAMES, "frame": FRAMES, "skipped": 0, "errors": 0, "refused": 0}
    expected = denoise_movie(load_engine(model, "cpu", "mix"), _movie()).astype(np.float64).sum()
    assert float(words[13]) == pytest.approx(expected, rel=1e-5)


def test_the_c_sender_streams_a_series(
    sender: Path,
    settings: ServerSettings,
    tmp_path: Path,
    onnx_models: ModuleType,
    run_service: Callable[..., IngestService],
) -> None:
    model = onnx_models.make_mix_model(tmp_path / "mix.onnx", WindowSpec(2, 2, 1))
    service = run_service(settings, model, "mix")
    _check(_run(sender, service.zmq_endpoint), model)


def test_the_c_sender_with_curve_keys(
    sender: Path,
    settings: ServerSettings,
    tmp_path: Path,
    onnx_models: ModuleType,
    run_service: Callable[..., IngestService],
) -> None:
    model = onnx_models.make_mix_model(tmp_path / "mix.onnx", WindowSpec(2, 2, 1))
    _, server_secret = create_key_pair(tmp_path / "keys", "server")
    rig_public, rig_secret = create_key_pair(tmp_path / "keys", "rig")
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    shutil.copy(rig_public, allowed)
    service = run_service(
        settings.model_copy(update={"curve_secret_key": server_secret, "curve_clients_dir": allowed}), model, "mix"
    )
    rig = load_key_pair(rig_secret)
    keys = (load_public_key(server_secret).decode(), rig.public.decode(), rig.secret.decode())
    _check(_run(sender, service.zmq_endpoint, *keys), model)


def test_documented_edge_cases(
    settings: ServerSettings, run_service: Callable[..., IngestService], make_sender: Callable[..., Any]
) -> None:
    """What an integrator found silent in the document, now stated there and checked here."""
    service = run_service(settings)
    s = make_sender(service.zmq_endpoint)
    header = b'{"proto":"frames/1","type":"frame","stream":"cam","series":"x","index":3,"dtype":"<u2","shape":[4,4]}'
    s.raw([header + b"\0", b"\0" * 32])  # a trailing NUL: not JSON
    reply = s.recv()
    assert (reply.header.code, reply.header.stream, reply.header.index) == ("bad_json", "?", None)
    s.raw([header, b"\0" * 30])  # wrong size on a stream with no open series: the payload is checked first
    assert s.recv().header.code == "payload_size"
    s.raw([header.replace(b'"index":3', b'"index":"3"'), b"\0" * 32])  # a refusal echoes what it could read
    reply = s.recv()
    assert (reply.header.code, reply.header.index, reply.header.stream) == ("bad_field", None, "cam")
    s.start("cam", "a", (4, 4), "<u2")
    s.start("cam", "b", (4, 4), "<u2")  # closes "a": its end reply has no meta field at all (= empty)
    reply = s.recv()
    assert reply.type == "end" and reply.header.series == "a" and b'"meta"' not in reply.raw_header
