"""The soak benchmark (benchmarks/soak.py) in miniature, so it keeps working: honest cameras that reconnect and a
hostile peer, against a real ingest process; every camera frame answered, the hostile traffic refused."""

from __future__ import annotations

import argparse
import importlib
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[3] / "benchmarks"


def test_a_short_soak_answers_every_camera_frame(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(BENCHMARKS))  # the spawned ingest process imports `soak` by name too
    soak = importlib.import_module("soak")
    args = argparse.Namespace(
        frames=800, streams=2, fps=400.0, size=32, series_frames=100, reconnect_every=2, bad_rate=100.0
    )
    report = soak.run(args)
    assert report["frames sent (cameras)"] == report["frames answered (cameras)"] == report["frames out"] == 800
    assert report["errors"] == 0 and report["client errors"] == 0
    assert report["refused"] > 0  # the hostile peer was there, and was refused
