"""Soak: many streams for a long time with hostile traffic mixed in; the ingest process' memory must stay flat.

A real ingest process (spawned, as ``livedenoise serve`` runs it) serves a window-mean model. Meanwhile:

- ``--streams`` honest cameras, each streaming series of ``--series-frames`` frames at ``--fps``, through a new
  connection every ``--reconnect-every`` series (a client that reconnects gets a new ZeroMQ identity);
- one hostile peer sending, at ``--bad-rate`` messages/s: undecodable and deeply nested headers, oversize
  `meta`, frames for series it does not own, frames for unopened streams, payloads larger than a frame (which
  close its connection), and starts it then abandons.

Every second the ingest process' RSS and counters are sampled. The run prints one table: frames in/out,
errors, refusals by code, undeliverable replies, RSS at start/end/max and the RSS slope over the second half
(MiB per 10,000 frames), and writes it to ``benchmarks/results/soak.md``.

    python benchmarks/soak.py [--frames 100000] [--streams 4] [--fps 500] [--size 64]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import random
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import zmq
from onnx import TensorProto, helper

from livedenoise.clients.model_spec import METADATA_KEY, ModelSpec, Normalization, WindowSpec
from livedenoise.clients.stream import StreamClient, StreamError
from livedenoise.server.ingest.control import IngestControlClient
from livedenoise.server.ingest.service import run_ingest
from livedenoise.server.settings import ServerSettings

RESULTS = Path(__file__).resolve().parent / "results"


def window_mean_model(path: Path, window: WindowSpec) -> Path:
    """The mean of each window as the denoised middle frame: costs almost nothing, so the soak loads the server's
    own machinery rather than the network."""
    x = helper.make_tensor_value_info("frames", TensorProto.FLOAT, ["B", window.window_length, "H", "W"])
    y = helper.make_tensor_value_info("denoised", TensorProto.FLOAT, ["B", 1, "H", "W"])
    node = helper.make_node("ReduceMean", ["frames"], ["denoised"], axes=[1], keepdims=1)
    model = helper.make_model(helper.make_graph([node], "mean", [x], [y]), opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    spec = ModelSpec(
        method="window_mean",
        window=window,
        normalization=Normalization(kind="affine", offset=0.0, scale=1.0),
        version="soak",
    )
    helper.set_model_props(model, {METADATA_KEY: spec.to_json()})
    onnx.save(model, str(path))
    return path


@dataclass
class Tally:
    sent: int = 0
    answered: int = 0
    client_errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def camera(
    endpoint: str, stream: str, args: argparse.Namespace, stop: threading.Event, tally: Tally, budget: list[int]
) -> None:
    rng = np.random.default_rng(abs(hash(stream)) % 2**32)
    movie = rng.integers(0, 4000, (args.series_frames, args.size, args.size)).astype(np.uint16)
    client: StreamClient | None = None
    series = 0
    try:
        while not stop.is_set():
            with tally.lock:
                if budget[0] <= 0:
                    return
                budget[0] -= len(movie)
            if client is None or series % args.reconnect_every == 0:
                if client is not None:
                    client.close()
                client = StreamClient(endpoint, stream=stream, max_in_flight=32, timeout_s=30)
            try:
                result = client.denoise(movie, fps=args.fps, series=f"{stream}-{series}")
                summary = result.summary()
                with tally.lock:
                    tally.sent += len(movie)
                    tally.answered += (
                        int(summary["frames_out"])
                        + int(summary.get("frames_error", 0))
                        + int(summary.get("frames_skipped", 0))
                    )
            except StreamError as exc:
                with tally.lock:
                    tally.client_errors.append(f"{stream}: {exc}")
                client.close()
                client = None
            series += 1
    finally:
        if client is not None:
            client.close()


def hostile(endpoint: str, args: argparse.Namespace, stop: threading.Event) -> None:
    """A peer that sends every kind of bad message the server must survive."""
    ctx = zmq.Context.instance()
    rng = random.Random(7)
    frame = np.zeros((args.size, args.size), np.uint16).tobytes()
    good = {
        "proto": "frames/1",
        "type": "frame",
        "series": "x",
        "index": 0,
        "dtype": "<u2",
        "shape": [args.size, args.size],
    }
    attacks: list[Any] = [
        lambda: [bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 300))), b""],
        lambda: [b"[" * 1500 + b"]" * 1500, b""],
        lambda: [json.dumps({**good, "stream": "evil", "meta": {"m": "é" * 1600}}, ensure_ascii=False).encode(), frame],
        lambda: [json.dumps({**good, "stream": "cam0", "series": "cam0-0"}).encode(), frame],  # not its series
        lambda: [json.dumps({**good, "stream": f"ghost{rng.randint(0, 9)}"}).encode(), frame],
        lambda: [json.dumps({**good, "type": "start", "stream": f"squat{rng.randint(0, 3)}"}).encode(), b""],
        lambda: [json.dumps({**good, "stream": "big"}).encode(), b"\0" * (args.size * args.size * 2 + 8192)],
        lambda: [b"{}", b"", b"extra"],
    ]
    sock = None
    period = 1.0 / args.bad_rate
    while not stop.is_set():
        if sock is None:
            sock = ctx.socket(zmq.DEALER)
            sock.setsockopt(zmq.LINGER, 0)
            sock.setsockopt(zmq.RCVHWM, 16)  # it never reads: its replies pile up on the server's side
            sock.connect(endpoint)
        parts = rng.choice(attacks)()
        try:
            sock.send_multipart(parts, zmq.NOBLOCK)
        except zmq.Again:
            pass
        if len(parts) == 2 and len(parts[1]) > args.size * args.size * 2 + 4096:
            sock.close()  # the server drops this connection: start a new one, as a reconnecting client would
            sock = None
        time.sleep(period)
    if sock is not None:
        sock.close()


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def run(args: argparse.Namespace) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="soak-"))
    model = window_mean_model(work / "mean.onnx", WindowSpec(before=2, after=2, out_frames=1))
    settings = ServerSettings(home=work / "home", zmq_port=0, pub_port=0, control_port=0, intra_op_threads=1,
                              max_streams=args.streams + 4, series_idle_timeout_s=5.0)  # fmt: skip
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_serve, args=(settings, model, child), daemon=True)
    proc.start()
    endpoints = parent.recv()
    control = IngestControlClient(endpoints["control"], endpoints["secret"], timeout_s=10)
    stop, tally, budget = threading.Event(), Tally(), [args.frames]
    threads = [
        threading.Thread(target=camera, args=(endpoints["frames"], f"cam{i}", args, stop, tally, budget))
        for i in range(args.streams)
    ]
    bad = threading.Thread(target=hostile, args=(endpoints["frames"], args, stop), daemon=True)
    samples: list[tuple[float, int, float]] = []  # (seconds, frames in, RSS MiB)
    t0 = time.monotonic()
    for t in threads:
        t.start()
    bad.start()
    while any(t.is_alive() for t in threads):
        status = control.status()
        samples.append((time.monotonic() - t0, int(status.totals.frames_in), rss_mib(endpoints["pid"])))
        print(
            f"\r{samples[-1][0]:7.0f} s  frames in {samples[-1][1]:>8d}  RSS {samples[-1][2]:7.1f} MiB",
            end="",
            flush=True,
        )
        time.sleep(1.0)
    print()
    stop.set()
    bad.join(5)
    status = control.status()
    samples.append((time.monotonic() - t0, int(status.totals.frames_in), rss_mib(endpoints["pid"])))
    control.shutdown()
    proc.join(30)
    second_half = [s for s in samples if s[1] >= samples[-1][1] / 2]
    slope = float("nan")
    if len(second_half) >= 3 and second_half[-1][1] > second_half[0][1]:
        frames, rss = np.array([s[1] for s in second_half]), np.array([s[2] for s in second_half])
        slope = float(np.polyfit(frames, rss, 1)[0] * 10_000)
    totals = status.totals
    return {
        "seconds": round(samples[-1][0], 1),
        "streams": args.streams,
        "fps per stream": args.fps,
        "frames sent (cameras)": tally.sent,
        "frames answered (cameras)": tally.answered,
        "frames in (server)": totals.frames_in,
        "frames out": totals.frames_out,
        "errors": totals.errors,
        "skipped": totals.skipped,
        "refused": totals.rejected,
        "refused by code": totals.rejected_by_code,
        "undeliverable": totals.undeliverable,
        "expired series": totals.expired_series,
        "client errors": len(tally.client_errors),
        "RSS start (MiB)": round(samples[0][2], 1),
        "RSS end (MiB)": round(samples[-1][2], 1),
        "RSS max (MiB)": round(max(s[2] for s in samples), 1),
        "RSS slope, 2nd half (MiB / 10k frames)": round(slope, 3),
    }


def _serve(settings: ServerSettings, model: Path, conn: Any) -> None:
    def ready(service: Any) -> None:
        conn.send({"pid": multiprocessing.current_process().pid, "frames": service.zmq_endpoint,
                   "control": service.control_endpoint, "secret": service.control_secret})  # fmt: skip

    run_ingest(settings, model, "mean", ready=ready)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=100_000, help="frames sent by the cameras in all")
    parser.add_argument("--streams", type=int, default=4)
    parser.add_argument("--fps", type=float, default=500.0, help="camera rate per stream")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--series-frames", type=int, default=500)
    parser.add_argument("--reconnect-every", type=int, default=3, help="series per connection")
    parser.add_argument("--bad-rate", type=float, default=50.0, help="hostile messages per second")
    parser.add_argument("--out", type=Path, default=RESULTS / "soak.md")
    args = parser.parse_args()
    report = run(args)
    lines = ["| measure | value |", "|---|---|"] + [f"| {k} | {v} |" for k, v in report.items()]
    table = "\n".join(lines)
    print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        f"`python benchmarks/soak.py --frames {args.frames} --streams {args.streams} --fps {args.fps:g}`\n\n{table}\n"
    )


if __name__ == "__main__":
    main()
