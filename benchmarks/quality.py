"""Denoising quality of every registered method against the classical filters, printed as one table.

Movies (the project's own simulators, with ground truth):

- ``calcium``: 600 x 128 x 128 two-photon-like calcium imaging at ~2 photons/pixel (seed 1: not the demo's);
- ``voltage``: 1 kHz voltage imaging, ring footprints, spikes of 1-3 frames, ~8 photons/pixel, sCMOS noise.

Each method trains with its defaults (its own time budget, scaled by ``--budget-scale``) on the noisy movie,
is exported to ONNX and denoises the movie through the serving engine (the same windows as a streamed
series). Scores: PSNR and SSIM against the ground truth, **trace fidelity** (Pearson r of each cell's
footprint-weighted trace against the ground truth's, and again after removing a 21-frame moving average: the
fast events), training seconds, denoising frames/s, and the model's own held-out score from training
beside the best classical filter's (:mod:`livedenoise.models.validation`). Every filter of the classical bank
is scored on the same movie; the table shows the raw movie, the best filter by PSNR and the 3-D Gaussian
σ(2,1,1).

Real recordings (``../shared/data/real``, no ground truth): the held-out protocol of
:mod:`livedenoise.models.heldout`: train on the even frames A, denoise A, score against the odd frames B;
the best classical filter is scored on the same A and B.

    python benchmarks/quality.py [--methods deepcad_rt,support] [--movies calcium,voltage,real]
                                 [--budget-scale 1.0] [--full] [--out benchmarks/results]

``--full`` runs every method at 4x its budget on longer movies (a GPU machine); the default run is sized for
a 2-core CPU.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from livedenoise.clients.movie_io import MOVIE_SUFFIXES, read_movie
from livedenoise.models import metrics
from livedenoise.models.catalogue import list_methods
from livedenoise.models.config import TrainConfig
from livedenoise.models.heldout import best_filter, heldout_gain_db, score_filters, split_even_odd
from livedenoise.models.pipeline import train_and_export
from livedenoise.models.synthetic import SyntheticMovie, simulate_calcium_movie
from livedenoise.models.synthetic_voltage import simulate_voltage_movie
from livedenoise.models.traces import trace_fidelity
from livedenoise.server.engine.loader import load_engine
from livedenoise.server.engine.offline import denoise_movie

logger = logging.getLogger("quality")

REAL_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real"
REFERENCE_FILTER = "gaussian_3d(2,1,1)"


@dataclass
class Row:
    movie: str
    estimate: str
    psnr: float | None = None
    ssim: float | None = None
    r: float | None = None
    r_highpass: float | None = None
    heldout_db: float | None = None  # ground-truth-free score (PSNR gain over raw)
    heldout_floor: str = ""  # the best filter by the held-out score, and its score
    heldout_floor_db: float | None = None
    train_s: float | None = None
    fps: float | None = None
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def _movies(names: list[str], full: bool) -> dict[str, SyntheticMovie]:
    out: dict[str, SyntheticMovie] = {}
    if "calcium" in names:
        out["calcium"] = simulate_calcium_movie(frames=1200 if full else 600, size=128, seed=1, photons=2.0)
    if "voltage" in names:
        out["voltage"] = simulate_voltage_movie(
            frames=2000 if full else 1000, size=128 if full else 96, seed=1, photons=8.0
        )
    return out


def _score(movie_name: str, estimate_name: str, estimate: NDArray[Any], movie: SyntheticMovie) -> Row:
    row = Row(
        movie_name, estimate_name, psnr=metrics.psnr(estimate, movie.clean), ssim=metrics.ssim(estimate, movie.clean)
    )
    if movie.footprints is not None:
        fid = trace_fidelity(estimate, movie.clean, movie.footprints)
        row.r, row.r_highpass = fid.r, fid.r_highpass
    return row


def _train(method: str, noisy: NDArray[Any], work: Path, budget_scale: float, seed: int) -> tuple[Any, Path, float]:
    base = TrainConfig(method=method, seed=seed)
    budget = float(base.budget_s or 0.0) * budget_scale
    config = TrainConfig(method=method, seed=seed, time_budget_s=budget)
    path = work / f"{method}.onnx"
    t0 = time.monotonic()
    result, _ = train_and_export(noisy, config, path)
    return result, path, time.monotonic() - t0


def _denoise(path: Path, movie: NDArray[Any]) -> tuple[NDArray[np.float32], float]:
    engine = load_engine(path, provider="cpu", model_id=path.stem, threads=0)
    try:
        t0 = time.perf_counter()
        out = denoise_movie(engine, movie, batch_size=4)
        return out, movie.shape[0] / (time.perf_counter() - t0)
    finally:
        engine.close()


def run_simulated(
    name: str, movie: SyntheticMovie, methods: list[str], work: Path, args: argparse.Namespace
) -> list[Row]:
    noisy = movie.noisy.astype(np.float32)
    rows = [_score(name, "raw", noisy, movie)]
    filters = {f: _score(name, f, fn(noisy), movie) for f, fn in metrics.CLASSICAL_FILTERS.items()}
    best = max(filters.values(), key=lambda r: r.psnr or -np.inf)
    best.note = "best classical filter"
    rows.append(best)
    if REFERENCE_FILTER in filters and filters[REFERENCE_FILTER] is not best:
        rows.append(filters[REFERENCE_FILTER])
    for method in methods:
        logger.info("%s: training %s", name, method)
        result, path, seconds = _train(method, movie.noisy, work / name, args.budget_scale, args.seed)
        denoised, fps = _denoise(path, movie.noisy)
        row = _score(name, method, denoised, movie)
        row.train_s, row.fps = result.elapsed_s, fps
        if result.validation is not None:
            v = result.validation
            row.heldout_db, row.heldout_floor, row.heldout_floor_db = (
                v.model_gain_db,
                v.best_filter,
                v.best_filter_gain_db,
            )
        margin = (row.psnr or 0) - (best.psnr or 0)
        row.note = f"{margin:+.2f} dB vs best filter"
        rows.append(row)
        logger.info("%s %s: PSNR %.2f dB (%s), %.0f s", name, method, row.psnr, row.note, seconds)
    return rows


def run_real(path: Path, methods: list[str], work: Path, args: argparse.Namespace) -> list[Row]:
    movie = read_movie(path)
    a, b = split_even_odd(movie.astype(np.float32))
    name = f"{path.stem} {tuple(movie.shape)} {movie.dtype}"
    scores = score_filters(a, b)
    fname, fgain = best_filter(scores)
    rows = [
        Row(name, "best classical filter", heldout_db=fgain, heldout_floor=fname, heldout_floor_db=fgain, note=fname)
    ]
    for method in methods:
        logger.info("%s: training %s on the even frames", path.name, method)
        try:
            result, model, _ = _train(method, a, work / path.stem, args.real_budget_scale, args.seed)
            denoised, fps = _denoise(model, a)
        except ValueError as exc:  # e.g. a frame smaller than the network's multiple: say so in the table
            rows.append(Row(name, method, note=f"not trainable: {exc}"))
            continue
        gain = heldout_gain_db(denoised, a, b)
        rows.append(
            Row(
                name,
                method,
                heldout_db=gain,
                heldout_floor=fname,
                heldout_floor_db=fgain,
                train_s=result.elapsed_s,
                fps=fps,
                note=f"{gain - fgain:+.2f} dB vs best filter",
            )
        )
    return rows


def _fmt(value: float | None, digits: int = 2) -> str:
    return "" if value is None else f"{value:.{digits}f}"


COLUMNS = (
    "movie",
    "estimate",
    "PSNR (dB)",
    "SSIM",
    "trace r",
    "trace r (high-pass)",
    "held-out (dB)",
    "held-out floor (dB)",
    "train (s)",
    "frames/s",
    "note",
)


def _cells(row: Row) -> list[str]:
    floor = f"{row.heldout_floor} {_fmt(row.heldout_floor_db)}" if row.heldout_floor_db is not None else ""
    return [
        row.movie,
        row.estimate,
        _fmt(row.psnr),
        _fmt(row.ssim, 4),
        _fmt(row.r, 3),
        _fmt(row.r_highpass, 3),
        _fmt(row.heldout_db),
        floor,
        _fmt(row.train_s, 0),
        _fmt(row.fps, 1),
        row.note,
    ]


def markdown(rows: list[Row]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(_cells(r)) + " |" for r in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default=",".join(list_methods()))
    parser.add_argument("--movies", default="calcium,voltage,real")
    parser.add_argument("--budget-scale", type=float, default=1.0, help="multiplies each method's default budget")
    parser.add_argument("--real-budget-scale", type=float, default=0.25, help="budget scale on the real recordings")
    parser.add_argument("--full", action="store_true", help="4x budgets and longer movies (GPU machines)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--real-dir", type=Path, default=REAL_DIR, help="recordings to score (TIFF, OME-Zarr, .npy; no ground truth)"
    )
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args()
    if args.full:
        args.budget_scale *= 4
        args.real_budget_scale *= 4
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    methods = [m for m in args.methods.split(",") if m]
    movies = [m for m in args.movies.split(",") if m]
    work = Path(tempfile.mkdtemp(prefix="livedenoise-quality-"))
    rows: list[Row] = []
    t0 = time.monotonic()
    for name, movie in _movies(movies, args.full).items():
        rows += run_simulated(name, movie, methods, work, args)
        print(markdown(rows), flush=True)
    if "real" in movies:
        real = (p for p in args.real_dir.iterdir() if p.name.lower().endswith(MOVIE_SUFFIXES))
        for path in sorted(real):
            rows += run_real(path, methods, work, args)
    table = markdown(rows)
    print(table)
    print(f"\n{len(methods)} methods, {time.monotonic() - t0:.0f} s in all")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "quality.md").write_text(table + "\n")
    with open(args.out / "quality.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(COLUMNS)
        writer.writerows(_cells(r) for r in rows)
    (args.out / "quality.json").write_text(json.dumps([r.__dict__ for r in rows], indent=1, default=str))


if __name__ == "__main__":
    main()
