"""The whole path through the real command line: simulate → train → denoise offline → serve → stream.

Every step is the `livedenoise` CLI in its own process; the server is a real `livedenoise serve`
(control plane + ingest process) on free local ports.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from livedenoise.clients.control import ControlClient, ControlError
from livedenoise.clients.movie_io import read_movie, write_movie
from livedenoise.clients.physical_scale import read_physical_scale

pytestmark = pytest.mark.slow

CLI = [sys.executable, "-m", "livedenoise.clients.cli"]


def _run(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"livedenoise {args[0]} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    return proc


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("e2e")
    # 37×45 is not a multiple of the network's 4: exercises reflect-padding end to end.
    _run("simulate", str(out), "--frames", "48", "--size", "37x45", "--photons", "3", "--seed", "3")
    _run(
        "train", str(out / "noisy.tif"), "--method", "deepcad_rt", "--out", str(out / "model.onnx"),
        "--epochs", "1", "--patch-t", "8", "--patch", "32", "--patches-per-epoch", "4", "--seed", "1",
    )  # fmt: skip
    return out


def test_train_saves_a_pickle_free_checkpoint_beside_the_model(trained: Path) -> None:
    from livedenoise.models.checkpoint import load_checkpoint

    restored = load_checkpoint(trained / "model.ckpt")
    assert restored.recipe.name == "deepcad_rt" and restored.config.method_config.patch_t == 8
    assert sorted(p.suffix for p in (trained / "model.ckpt").iterdir()) == [".json", ".safetensors"]


def test_simulate_writes_movie_and_ground_truth(trained: Path) -> None:
    noisy, clean = read_movie(trained / "noisy.tif"), read_movie(trained / "clean.tif")
    assert noisy.shape == clean.shape == (48, 37, 45)
    assert noisy.dtype == np.uint16
    params = json.loads((trained / "params.json").read_text())
    assert params["seed"] == 3


def test_served_stream_equals_offline_denoise(trained: Path, tmp_path: Path, free_port: Callable[[], int]) -> None:
    _run(
        "denoise",
        str(trained / "noisy.tif"),
        "--model",
        str(trained / "model.onnx"),
        "--out",
        str(tmp_path / "offline.tif"),
    )
    offline = read_movie(tmp_path / "offline.tif")
    assert offline.shape == (48, 37, 45) and offline.dtype == np.float32
    # The same movie as OME-Zarr in, OME-Zarr out: same pixels, and the scale and the model carried over.
    noisy_zarr = write_movie(
        tmp_path / "noisy.ome.zarr", read_movie(trained / "noisy.tif"), pixel_size_um=(0.8, 0.8), frame_interval_s=0.05
    )
    _run(
        "denoise", str(noisy_zarr), "--model", str(trained / "model.onnx"), "--out", str(tmp_path / "offline.ome.zarr")
    )
    np.testing.assert_array_equal(read_movie(tmp_path / "offline.ome.zarr"), offline)
    assert read_physical_scale(tmp_path / "offline.ome.zarr") == read_physical_scale(noisy_zarr)
    zattrs = json.loads((tmp_path / "offline.ome.zarr" / "zarr.json").read_text())["attributes"]["livedenoise"]
    assert zattrs["method"] == "deepcad_rt" and zattrs["source"] == str(noisy_zarr)

    ports = {name: free_port() for name in ("zmq", "pub", "http", "control")}
    server = subprocess.Popen(
        [
            *CLI, "serve", "--model", str(trained / "model.onnx"), "--home", str(tmp_path / "home"),
            "--zmq-port", str(ports["zmq"]), "--pub-port", str(ports["pub"]),
            "--http-port", str(ports["http"]), "--control-port", str(ports["control"]),
        ],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    try:
        with ControlClient(f"http://127.0.0.1:{ports['http']}", timeout=2.0) as control:
            deadline = time.monotonic() + 60
            status = None
            while time.monotonic() < deadline and (status is None or status.model is None):
                assert server.poll() is None, server.stdout.read() if server.stdout else ""
                try:
                    status = control.status()
                except ControlError:
                    time.sleep(0.3)
            assert status is not None and status.model is not None, "server never reported a loaded model"

            streamed = _run(
                "stream", str(trained / "noisy.tif"), "--to", f"tcp://127.0.0.1:{ports['zmq']}",
                "--out", str(tmp_path / "streamed.tif"), "--stream", "e2e",
            )  # fmt: skip
            summary = json.loads(streamed.stdout.strip().splitlines()[-1])
            assert summary["frames_in"] == summary["frames_out"] == 48
            assert summary["skipped"] == summary["errors"] == 0

            stream_status = control.status().streams["e2e"]
            assert stream_status.frames_in == stream_status.frames_out == 48

            # --out .ome.zarr grows frame by frame from the replies.
            streamed = _run(
                "stream", str(noisy_zarr), "--to", f"tcp://127.0.0.1:{ports['zmq']}",
                "--out", str(tmp_path / "streamed.ome.zarr"), "--stream", "e2e-zarr",
            )  # fmt: skip
            assert json.loads(streamed.stdout.strip().splitlines()[-1])["frames_out"] == 48
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            code = server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            raise
        finally:
            if server.stdout is not None:
                server.stdout.close()
    assert code == 0

    streamed_movie = read_movie(tmp_path / "streamed.tif")
    # Same engine, same windows: the served frames are the offline frames.
    np.testing.assert_allclose(streamed_movie, offline, rtol=1e-5, atol=1e-4 * float(np.abs(offline).max()))
    np.testing.assert_array_equal(read_movie(tmp_path / "streamed.ome.zarr"), streamed_movie)
    assert read_physical_scale(tmp_path / "streamed.ome.zarr").pixel_size_um == (0.8, 0.8)
    zattrs = json.loads((tmp_path / "streamed.ome.zarr" / "zarr.json").read_text())["attributes"]["livedenoise"]
    assert zattrs["stream"] == "e2e-zarr" and zattrs["model_id"] == status.model.id


def test_bad_movie_gives_one_clear_line(tmp_path: Path) -> None:
    bad = tmp_path / "broken.tif"
    bad.write_bytes(b"II*\x00 this is not a tiff")
    proc = subprocess.run(
        [*CLI, "stream", str(bad), "--to", "tcp://127.0.0.1:1"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2
    assert "broken.tif" in proc.stderr and "Traceback" not in proc.stderr
