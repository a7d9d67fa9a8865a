from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from livedenoise.clients.model_spec import ModelSpec
from livedenoise.models.synthetic import simulate_calcium_movie

CONFIG = {
    "patch_t": 8,
    "patch_xy": 16,
    "batch_size": 1,
    "epochs": 2,
    "patches_per_epoch": 3,
    "base_channels": 4,
    "levels": 3,
    "device": "cpu",
}


def _job(tmp_path: Path, config: dict, movie: str | None = None) -> Path:
    job = tmp_path / "job"
    job.mkdir()
    if movie is None:
        np.save(tmp_path / "movie.npy", simulate_calcium_movie(frames=32, size=(16, 20), seed=0).noisy)
        movie = str(tmp_path / "movie.npy")
    doc = {"movie": movie, "config": config, "output": str(tmp_path / "out" / "model.onnx")}
    (job / "job.json").write_text(json.dumps(doc))
    return job


def _start(job: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "livedenoise.models.job_worker", str(job)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _events(job: Path) -> list[dict]:
    path = job / "progress.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@pytest.mark.slow
def test_job_worker_trains_and_exports(tmp_path: Path) -> None:
    job = _job(tmp_path, CONFIG)
    proc = _start(job)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err.decode()[-2000:]
    result = json.loads((job / "result.json").read_text())
    spec = ModelSpec.from_json(json.dumps(result["spec"]))
    assert Path(result["output"]).is_file() and len(result["history"]) == 2
    sess = ort.InferenceSession(result["output"], providers=["CPUExecutionProvider"])
    assert ModelSpec.from_metadata(sess.get_modelmeta().custom_metadata_map) == spec
    events = _events(job)
    kinds = [e["event"] for e in events]
    assert kinds[0] == "started" and kinds[-1] == "done" and "exporting" in kinds
    progress = [e for e in events if e["event"] == "progress"]
    assert progress[-1]["fraction"] == 1.0 and progress[-1]["epochs"] == 2
    assert all(set(e) >= {"epoch", "epochs", "fraction", "loss", "t"} for e in progress)
    assert "epoch 2/2" in (job / "train.log").read_text()


def test_job_worker_reports_failure(tmp_path: Path) -> None:
    job = _job(tmp_path, CONFIG, movie=str(tmp_path / "missing.npy"))
    proc = _start(job)
    proc.communicate(timeout=120)
    assert proc.returncode == 1
    assert "missing.npy" in json.loads((job / "result.json").read_text())["error"]
    assert _events(job)[-1]["event"] == "error"


@pytest.mark.slow
def test_sigterm_stops_cleanly(tmp_path: Path) -> None:
    job = _job(tmp_path, {**CONFIG, "epochs": 1000})
    proc = _start(job)
    deadline = time.monotonic() + 90
    while not any(e["event"] == "progress" for e in _events(job)):
        assert proc.poll() is None and time.monotonic() < deadline, "worker never reported progress"
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGTERM)
    proc.communicate(timeout=60)
    assert proc.returncode == 1
    result = json.loads((job / "result.json").read_text())
    assert result["cancelled"] is True and "cancelled" in result["error"]
    assert not (tmp_path / "out" / "model.onnx").exists()
