"""`livedenoise compare` through the real command line: two tiny methods on an 8-bit TIFF of odd frame size,
the report folder and the recommendation; bad input is one clear line and a non-zero exit."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from livedenoise.clients.movie_io import write_movie
from livedenoise.models.synthetic import simulate_calcium_movie

pytestmark = pytest.mark.slow

CLI = [sys.executable, "-m", "livedenoise.clients.cli"]

# Tiny method fields (as in test_methods_end_to_end.TINY) passed as --set METHOD.KEY=VALUE; shared fields as KEY=VALUE.
SETTINGS = [
    "epochs=2", "patches_per_epoch=8", "device=cpu", "seed=1",
    "deepcad_rt.patch_t=8", "deepcad_rt.patch_xy=16", "deepcad_rt.batch_size=4", "deepcad_rt.base_channels=4",
    "deepcad_rt.levels=2",
    "support.pre_post_frame=3", "support.patch_xy=16", "support.batch_size=4", "support.unet_channels=[4,8,16]",
    "support.blind_channels=8", "support.depth=3",
]  # fmt: skip


def _compare(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, "compare", *args], capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def movies(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("compare-cli")
    sim = simulate_calcium_movie(frames=40, size=(23, 31), seed=4, photons=4.0)
    scale = 250.0 / float(sim.noisy.max())
    noisy = np.clip(sim.noisy * scale, 0, 255).astype(np.uint8)
    write_movie(root / "noisy.tif", noisy)
    write_movie(root / "clean.tif", (sim.clean * scale).astype(np.float32))
    write_movie(root / "short.tif", noisy[:20])
    (root / "corrupt.tif").write_bytes(b"II*\x00not really a tiff")
    return root


def test_compare_writes_the_report_and_recommends(movies: Path) -> None:
    out = movies / "report"
    settings = [arg for s in SETTINGS for arg in ("--set", s)]
    proc = _compare(
        str(movies / "noisy.tif"), "--methods", "deepcad_rt,support", "--clean", str(movies / "clean.tif"),
        "--max-latency", "8", "--out", str(out), *settings,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "recommendation:" in proc.stdout and "deepcad_rt" in proc.stdout and "support" in proc.stdout
    assert "[1/2] deepcad_rt: train" in proc.stderr and "[2/2] support: done" in proc.stderr  # progress per method
    assert {"report.html", "report.png", "results.json", "results.csv", "models"} <= {p.name for p in out.iterdir()}
    data = json.loads((out / "results.json").read_text())
    assert data["movie_shape"] == [40, 23, 31] and data["movie_dtype"] == "uint8"
    methods = {r["name"]: r for r in data["rows"] if r["kind"] == "method"}
    assert set(methods) == {"deepcad_rt", "support"}
    for row in methods.values():
        assert row["skipped"] is None and row["score_db"] is not None and row["frames_per_s"] > 0
        assert row["psnr_db"] is not None and row["latency_frames"] <= 8 and (out / row["model"]).is_file()
    rec = data["recommendation"]
    assert rec["name"] in {r["name"] for r in data["rows"]} and rec["reason"]
    assert rec["name"] in (out / "report.html").read_text()


def test_compare_takes_a_signed_16_bit_tiff_with_negative_values(movies: Path, tmp_path: Path) -> None:
    """A background-subtracted int16 movie (negative values): read, trained on, scored, reported as int16."""
    sim = simulate_calcium_movie(frames=36, size=(21, 19), seed=6, photons=4.0)
    signed = (sim.noisy.astype(np.int32) - int(np.median(sim.noisy)) - 3).astype(np.int16)
    assert signed.min() < 0
    write_movie(tmp_path / "signed.tif", signed)
    settings = [arg for s in SETTINGS if not s.startswith("support.") for arg in ("--set", s)]
    proc = _compare(str(tmp_path / "signed.tif"), "--methods", "deepcad_rt", "--out", str(tmp_path / "r"), *settings)
    assert proc.returncode == 0, proc.stderr
    data = json.loads((tmp_path / "r" / "results.json").read_text())
    assert data["movie_shape"] == [36, 21, 19] and data["movie_dtype"] == "int16"
    row = next(r for r in data["rows"] if r["name"] == "deepcad_rt")
    assert row["skipped"] is None and np.isfinite(row["score_db"])


def test_default_out_folder_is_named_after_the_movie(movies: Path, tmp_path: Path) -> None:
    proc = subprocess.run(
        [*CLI, "compare", str(movies / "short.tif"), "--methods", "srdtrans"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "short-compare" / "report.html").is_file()
    assert "at least 32" in proc.stdout  # skipped, with the reason, in the table


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.tif"], "no such movie file"),
        (["corrupt.tif"], "corrupt"),
        (["noisy.tif", "--methods", "deepcad_rt,nope"], "unknown method 'nope'"),
        (["noisy.tif", "--methods", "deepcad_rt", "--clean", "short.tif"], "clean movie has shape"),
        (["noisy.tif", "--methods", "deepcad_rt", "--set", "deepcad_rt.patch_xy=30"], "patch_xy"),
    ],
)
def test_bad_input_is_one_line_and_a_non_zero_exit(movies: Path, args: list[str], message: str) -> None:
    proc = _compare(*[str(movies / a) if a.endswith(".tif") else a for a in args], "--out", str(movies / "bad"))
    assert proc.returncode != 0
    # tifffile's own warning on a broken file is logged on the line above (movie_io lets it through)
    errors = [line for line in proc.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and errors[0].startswith("livedenoise compare: error:") and message in errors[0]
    assert "Traceback" not in proc.stderr
