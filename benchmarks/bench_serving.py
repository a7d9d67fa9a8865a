"""Serving throughput and latency on this machine, printed as a table (not part of the test suite).

Measures, in one run so the ratios compare like with like:

1. the engine offline (``denoise_movie``) at several batch sizes, frames per second;
2. the same movie streamed through a real ingest service over ZeroMQ on 127.0.0.1 (lossless), and its ratio
   to the best offline figure: the cost of the streaming path itself;
3. the real recordings in ``../shared/data/real`` (8-bit and 16-bit, odd frame sizes) through the offline engine.

The model is a method at its defaults (DeepCAD-RT, as the demo trains it, unless ``--method`` names another; ``--set
FIELD=VALUE`` changes a field of its config), trained for one short epoch only: speed does not depend on how well
it is trained.

    python benchmarks/bench_serving.py [--method fast --set out_frames=8] [--frames 200] [--size 128]
        [--real-dir ../shared/data/real]
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from pathlib import Path

import numpy as np

from livedenoise.clients.movie_io import read_movie
from livedenoise.clients.stream import StreamClient
from livedenoise.models.config import TrainConfig
from livedenoise.models.pipeline import train_and_export
from livedenoise.models.synthetic import simulate_calcium_movie
from livedenoise.server.engine.base import Engine
from livedenoise.server.engine.loader import load_engine
from livedenoise.server.engine.offline import denoise_movie
from livedenoise.server.ingest.service import IngestService
from livedenoise.server.settings import ServerSettings


def _offline_fps(engine: Engine, movie: np.ndarray, batch: int) -> float:
    t0 = time.perf_counter()
    denoise_movie(engine, movie, batch_size=batch)
    return movie.shape[0] / (time.perf_counter() - t0)


def _json_or_text(value: str) -> object:
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument(
        "--real-dir", type=Path, default=Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real"
    )
    parser.add_argument("--batches", default="1,2,4,8")
    parser.add_argument("--method", default="deepcad_rt")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help="a config field (JSON value)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    work = Path(tempfile.mkdtemp(prefix="livedenoise-bench-"))
    movie = simulate_calcium_movie(frames=args.frames, size=args.size, seed=0, photons=2.0).noisy
    fields = {name: _json_or_text(value) for name, _, value in (item.partition("=") for item in args.set)}
    config = TrainConfig(method=args.method, epochs=1, patches_per_epoch=8, seed=0, **fields)
    _, spec = train_and_export(movie, config, work / "model.onnx")
    w = spec.window
    rows: list[tuple[str, str, str]] = []
    described = " ".join([args.method, *args.set])
    print(f"model {described} window {w.before}+{w.out_frames}+{w.after}, movie {movie.shape} {movie.dtype}\n")

    engine = load_engine(work / "model.onnx", provider="cpu", model_id="bench")
    offline = {}
    for batch in (int(b) for b in args.batches.split(",")):
        offline[batch] = _offline_fps(engine, movie, batch)
        rows.append((f"offline batch {batch}", f"{offline[batch]:.1f} fps", ""))
    best_batch = max(offline, key=lambda b: offline[b])
    engine.close()

    settings = ServerSettings(home=work / "home", zmq_port=0, pub_port=0, control_port=0, max_batch=best_batch)
    with IngestService(settings, model_path=work / "model.onnx", model_id="bench") as service:
        with StreamClient(service.zmq_endpoint, stream="bench", max_in_flight=128) as client:
            result = client.denoise(movie, mode="lossless")
    summary = result.summary()
    ratio = result.fps / offline[best_batch]
    rows.append(("streamed (ZeroMQ, lossless)", f"{result.fps:.1f} fps", f"{ratio:.2f}x offline batch {best_batch}"))
    rows.append(
        (
            "  latency p50 / p99",
            f"{summary['latency_ms_p50']:.0f} / {summary['latency_ms_p99']:.0f} ms",
            "send -> reply, queue included",
        )
    )
    rows.append(("  frames in / out", f"{summary['frames_in']} / {summary['frames_out']}", ""))

    if args.real_dir.is_dir():
        engine = load_engine(work / "model.onnx", provider="cpu", model_id="bench")
        for path in sorted(args.real_dir.glob("*.tif")):
            real = read_movie(path)
            fps = _offline_fps(engine, real, best_batch)
            rows.append((f"real {path.name}", f"{fps:.1f} fps", f"{real.shape} {real.dtype}"))
        engine.close()

    width = max(len(r[0]) for r in rows) + 2
    print(f"{'measure':<{width}}{'value':>16}   note")
    print("-" * (width + 50))
    for name, value, note in rows:
        print(f"{name:<{width}}{value:>16}   {note}")


if __name__ == "__main__":
    main()
