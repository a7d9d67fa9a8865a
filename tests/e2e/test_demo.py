"""`livedenoise demo`, scaled down: the same code path as the full demo, on a movie small enough for CI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from livedenoise.clients.movie_io import read_movie

pytestmark = pytest.mark.slow


def test_demo_runs_end_to_end_and_reports(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    proc = subprocess.run(
        [
            sys.executable, "-m", "livedenoise.clients.cli", "demo", "--out", str(out),
            "--frames", "64", "--size", "40", "--fps", "200",
            "--epochs", "1", "--patches-per-epoch", "4", "--patch-t", "8", "--patch", "32",
        ],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    # A one-epoch model need not beat the baselines (exit 1 then); everything else must hold.
    assert proc.returncode in (0, 1), proc.stderr
    lines = proc.stdout.strip().splitlines()
    summary = json.loads(lines[-1])
    for key in (
        "frames_in",
        "frames_out",
        "psnr_noisy",
        "psnr_denoised",
        "psnr_best_baseline",
        "fps",
        "latency_ms_p50",
    ):
        assert key in summary, key
    assert summary["frames_in"] == summary["frames_out"] == 64
    assert (proc.returncode == 0) == (summary["psnr_denoised"] > summary["psnr_best_baseline"])
    assert any("PSNR" in line for line in lines[:-1]), "the table comes before the JSON line"
    for name in ("noisy.tif", "denoised.tif", "figure.png", "model.onnx"):
        assert (out / name).stat().st_size > 0, name
    denoised = read_movie(out / "denoised.tif")
    assert denoised.shape == (64, 40, 40) and np.isfinite(denoised).all()
