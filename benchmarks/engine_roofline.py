"""How fast a method's served graph runs on this machine, against what the machine could do at best.

For each variant of the method (a grid of config fields, e.g. FAST's ``estimate`` and ``out_frames``), in one run:

- **MACs per frame**: multiply-accumulates of the served graph's convolutions and linear layers per denoised
  frame, counted with forward hooks on the torch module that is exported (attention products are not counted);
- **engine fps**: the exported model in the project's engine (ONNX Runtime, CPU, every core) on pre-built
  windows, frames out per second, at the best of a few batch sizes;
- **torch fps**: the same module in torch eager, same windows, same threads: the export's gain as a ratio;
- **ceiling fps**: the machine's *measured* dense-convolution rate (a 64->64 3x3 convolution at the frame size
  in ONNX Runtime, the best case for its kernels) divided by the MACs per frame: no formulation of the same
  arithmetic in fp32 on this CPU can stream faster than that.

The model is trained for one short epoch only: speed does not depend on how well it is trained. Prints a table and
writes it as Markdown and CSV under ``--out``.

    python benchmarks/engine_roofline.py [--method fast] [--grid estimate=causal,final --grid out_frames=1,8,32]
        [--size 128] [--target 800] [--out benchmarks/results]
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import torch
from _shared import Column, best_rate, markdown_table, write_table
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from livedenoise.models.config import TrainConfig
from livedenoise.models.pipeline import train_and_export
from livedenoise.models.synthetic import simulate_calcium_movie
from livedenoise.server.engine.loader import load_engine

DEFAULT_GRIDS = {"fast": ["estimate=causal,final", "out_frames=1,8,32"]}
BATCHES = (1, 4)


def _value(text: str) -> object:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _variants(grids: list[str]) -> list[dict[str, object]]:
    axes = []
    for grid in grids:
        name, _, values = grid.partition("=")
        axes.append([(name, _value(v)) for v in values.split(",")])
    return [dict(combo) for combo in itertools.product(*axes)] if axes else [{}]


def count_macs(module: nn.Module, example: torch.Tensor) -> int:
    """Multiply-accumulates of ``module`` on ``example``: half the FLOPs torch's counter sees in its convolutions
    and matrix products, functional calls included (a cropped graph calls its last convolutions that way)."""
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        module(example)
    return int(counter.get_total_flops()) // 2


def dense_conv_rate(size: int, work: Path, channels: int = 64) -> float:
    """MACs per second of a dense ``channels``->``channels`` 3x3 convolution at ``size``² in ONNX Runtime."""
    conv = nn.Conv2d(channels, channels, 3, padding=1, bias=True).eval()
    x = torch.randn(1, channels, size, size)
    path = work / "dense_conv.onnx"
    torch.onnx.export(conv, (x,), str(path), input_names=["x"], opset_version=17, dynamo=False)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feed = {"x": x.numpy()}
    rate = best_rate(lambda: session.run(None, feed))
    return rate * size * size * channels * channels * 9


def measure(method: str, fields: dict[str, object], size: int, work: Path) -> dict[str, Any]:
    movie = simulate_calcium_movie(frames=64, size=size, seed=0, photons=2.0).noisy
    config = TrainConfig(method=method, epochs=1, patches_per_epoch=4, seed=0, **fields)  # type: ignore[arg-type]
    path = work / f"{method}-{len(list(work.iterdir()))}.onnx"
    result, spec = train_and_export(movie, config, path)
    window = spec.window
    module = result.recipe.export_module(result.network).eval().cpu()
    windows = np.stack([movie[i : i + window.input_planes] for i in range(max(BATCHES))]).astype(np.float32)
    per_call = window.out_frames

    engine = load_engine(path, provider="cpu", model_id="roofline")
    try:
        engine_fps = max(best_rate(lambda b=b: engine.infer(windows[:b])) * b * per_call for b in BATCHES)  # type: ignore[misc]
    finally:
        engine.close()
    tensor = torch.from_numpy(spec.normalization.apply(windows))
    with torch.no_grad():
        torch_fps = max(best_rate(lambda b=b: module(tensor[:b])) * b * per_call for b in BATCHES)  # type: ignore[misc]
    macs = count_macs(module, tensor[:1]) / per_call
    return {
        "variant": " ".join(f"{k}={v}" for k, v in fields.items()) or "defaults",
        "window": f"{window.before}+{window.out_frames}+{window.after}",
        "latency_frames": window.latency_frames,
        "mmacs_per_frame": macs / 1e6,
        "engine_fps": engine_fps,
        "torch_fps": torch_fps,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", default="fast")
    parser.add_argument("--grid", action="append", default=None, metavar="FIELD=V1,V2", help="a config field's values")
    parser.add_argument("--size", type=int, default=128, help="frame height and width")
    parser.add_argument("--target", type=float, default=800.0, help="frames/s the method should reach")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(os.cpu_count() or 1)
    grids = args.grid if args.grid is not None else DEFAULT_GRIDS.get(args.method, [])

    with tempfile.TemporaryDirectory(prefix="livedenoise-roofline-") as tmp:
        work = Path(tmp)
        peak = dense_conv_rate(args.size, work)
        rows = [measure(args.method, fields, args.size, work) for fields in _variants(grids)]
    for row in rows:
        row["ceiling_fps"] = peak / (row["mmacs_per_frame"] * 1e6)
        row["engine_gmacs"] = row["engine_fps"] * row["mmacs_per_frame"] / 1e3
        row["engine_vs_torch"] = row["engine_fps"] / row["torch_fps"]

    header = (
        f"{args.method} at {args.size}x{args.size} on {os.cpu_count()} CPU threads; dense 3x3 conv in ONNX Runtime: "
        f"{peak / 1e9:.1f} GMAC/s; target {args.target:.0f} frames/s"
    )
    columns: list[Column] = [
        ("variant", "variant", "{}"),
        ("window", "window", "{}"),
        ("latency (frames)", "latency_frames", "{}"),
        ("MMAC/frame", "mmacs_per_frame", "{:.0f}"),
        ("engine fps", "engine_fps", "{:.1f}"),
        ("engine GMAC/s", "engine_gmacs", "{:.1f}"),
        ("torch eager fps", "torch_fps", "{:.1f}"),
        ("engine / torch", "engine_vs_torch", "{:.2f}"),
        ("ceiling fps", "ceiling_fps", "{:.0f}"),
    ]
    text = markdown_table(header, columns, rows)
    print(text)
    write_table(args.out / f"roofline_{args.method}_{args.size}", text, rows, [c[1] for c in columns])


if __name__ == "__main__":
    main()
