"""`livedenoise demo`: the whole path on this machine.

simulate a calcium movie → train DeepCAD-RT → export ONNX → start `livedenoise serve` (a real server
process) → stream the movie through ZeroMQ at a camera frame rate → score against ground truth and the
classical baselines → write ``noisy.tif``, ``denoised.tif``, ``figure.png`` and print a table plus one JSON line.

Heavy modules are imported inside functions: this module is importable from the light client install.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from livedenoise.clients.status import ServerStatus

__all__ = ["DemoOptions", "DemoReport", "run_demo", "format_table"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DemoOptions:
    out_dir: Path
    frames: int | None = None
    size: int | tuple[int, int] | None = None
    photons: float | None = None
    seed: int = 0
    fps: float | None = None
    training: dict[str, Any] = field(default_factory=dict)  # TrainConfig overrides of DEMO_TRAINING

    # Defaults sized for a 2-core CPU: the whole demo stays well under 5 minutes.
    DEFAULT_FRAMES = 600
    DEFAULT_SIZE = 128
    DEFAULT_PHOTONS = 2.0
    DEFAULT_FPS = 10.0  # what 2 CPU cores sustain for this model at 128x128 (~12 fps); a GPU does far more


@dataclass
class DemoReport:
    scores: dict[str, dict[str, float]]  # row name -> {"psnr": …, "ssim": …}
    stream: dict[str, Any]
    timings: dict[str, float]
    files: dict[str, str]
    best_baseline: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        s = self.summary()
        return bool(s["frames_out"] == s["frames_in"] and s["psnr_denoised"] > s["psnr_best_baseline"])

    def summary(self) -> dict[str, Any]:
        return {
            "frames_in": self.stream["frames_in"],
            "frames_out": self.stream["frames_out"],
            "frames_skipped": self.stream.get("skipped", 0),
            "frames_error": self.stream.get("errors", 0),
            "psnr_noisy": round(self.scores["noisy"]["psnr"], 3),
            "psnr_denoised": round(self.scores["deepcad_rt (streamed)"]["psnr"], 3),
            "psnr_best_baseline": round(self.scores[self.best_baseline]["psnr"], 3),
            "best_baseline": self.best_baseline,
            "ssim_denoised": round(self.scores["deepcad_rt (streamed)"]["ssim"], 4),
            "fps": round(float(self.stream["fps"]), 2),
            "latency_ms_p50": round(float(self.stream["latency_ms_p50"]), 2),
            "latency_ms_p99": round(float(self.stream["latency_ms_p99"]), 2),
            "latency_frames": self.extra.get("latency_frames"),
            "train_seconds": round(self.timings["train"], 1),
            "total_seconds": round(self.timings["total"], 1),
        }


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _trace_roi(clean: NDArray[np.float32]) -> tuple[int, int]:
    """Centre of the 3×3 patch with the most temporal variance in the ground truth: an active neuron."""
    std = clean.std(axis=0)
    y, x = np.unravel_index(int(np.argmax(std)), std.shape)
    h, w = std.shape
    return int(np.clip(y, 1, h - 2)), int(np.clip(x, 1, w - 2))


def _write_figure(
    path: Path, noisy: NDArray[Any], denoised: NDArray[np.float32], clean: NDArray[np.float32], fps: float
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    y, x = _trace_roi(clean)
    roi = (slice(None), slice(y - 1, y + 2), slice(x - 1, x + 2))
    traces = {
        name: movie[roi].mean(axis=(1, 2))
        for name, movie in (("raw", noisy.astype(np.float32)), ("denoised", denoised), ("ground truth", clean))
    }
    t_peak = int(np.argmax(traces["ground truth"]))
    lo, hi = np.percentile(clean, [0.5, 99.8])

    fig = plt.figure(figsize=(12, 6.5), constrained_layout=True)
    grid = fig.add_gridspec(2, 3, height_ratios=[3, 2])
    for col, (title, movie) in enumerate(
        (("raw", noisy), ("denoised (livedenoise, streamed)", denoised), ("ground truth", clean))
    ):
        ax = fig.add_subplot(grid[0, col])
        ax.imshow(movie[t_peak], cmap="gray", vmin=lo, vmax=hi)
        ax.plot([x], [y], marker="s", markersize=6, markerfacecolor="none", markeredgecolor="tab:orange")
        ax.set_title(f"{title}, frame {t_peak}")
        ax.set_axis_off()
    ax = fig.add_subplot(grid[1, :])
    t = np.arange(clean.shape[0]) / fps
    for (name, trace), color in zip(traces.items(), ("0.7", "tab:blue", "k")):
        ax.plot(t, trace, color=color, lw=1.0 if name == "raw" else 1.5, label=name)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("intensity (ADU), 3×3 ROI")
    ax.legend(loc="upper right")
    fig.savefig(path, dpi=110)
    plt.close(fig)


class _Server:
    """`livedenoise serve` as a real child process on free local ports."""

    def __init__(self, model: Path, home: Path, log_path: Path) -> None:
        self.ports = {name: _free_port() for name in ("zmq", "pub", "http", "control")}
        cmd = [
            sys.executable, "-m", "livedenoise.clients.cli", "serve",
            "--model", str(model), "--home", str(home),
            "--zmq-port", str(self.ports["zmq"]), "--pub-port", str(self.ports["pub"]),
            "--http-port", str(self.ports["http"]), "--control-port", str(self.ports["control"]),
        ]  # fmt: skip
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            cmd, stdout=self._log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"}
        )
        self.http = f"http://127.0.0.1:{self.ports['http']}"
        self.zmq = f"tcp://127.0.0.1:{self.ports['zmq']}"

    def wait_ready(self, timeout_s: float = 60.0) -> ServerStatus:
        from livedenoise.clients.control import ControlClient, ControlError

        deadline = time.monotonic() + timeout_s
        with ControlClient(self.http, timeout=2.0) as control:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"server exited with code {self.proc.returncode}; see {self._log.name}")
                try:
                    status = control.status()
                    if status.model:
                        return status
                except (ControlError, OSError) as exc:
                    logger.debug("server not ready yet: %s", exc)
                time.sleep(0.3)
        raise TimeoutError(f"server did not become ready within {timeout_s:.0f} s; see {self._log.name}")

    def status(self) -> ServerStatus:
        from livedenoise.clients.control import ControlClient

        with ControlClient(self.http, timeout=5.0) as control:
            return control.status()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                logger.warning("server did not stop within 30 s of SIGTERM; killing it")
                self.proc.kill()
                self.proc.wait()
        self._log.close()


def _train(noisy: NDArray[Any], model_path: Path, seed: int, overrides: dict[str, Any]) -> tuple[Any, Any, float]:
    from livedenoise.clients.cli import _train_progress_printer
    from livedenoise.models.config import TrainConfig
    from livedenoise.models.pipeline import train_and_export

    config = TrainConfig(**{"method": "deepcad_rt", "seed": seed, **DEMO_TRAINING, **overrides})
    on_progress, done = _train_progress_printer("train deepcad_rt")
    t0 = time.monotonic()
    result, spec = train_and_export(noisy, config, model_path, progress=on_progress)
    done()
    return spec, result.validation, time.monotonic() - t0


# The method's defaults with a time budget that keeps the whole demo under 5 minutes on 2 CPU cores (training,
# server start and a 60 s stream); `--epochs N` stops after N epochs if that comes first (reproducible runs).
DEMO_TRAINING: dict[str, Any] = {"time_budget_s": 200.0}


def run_demo(options: DemoOptions) -> DemoReport:
    from livedenoise.clients.movie_io import write_movie
    from livedenoise.clients.progress import ProgressBar
    from livedenoise.clients.stream import StreamClient
    from livedenoise.models import metrics
    from livedenoise.models.synthetic import simulate_calcium_movie

    t_start = time.monotonic()
    out = options.out_dir
    out.mkdir(parents=True, exist_ok=True)
    frames = options.frames or DemoOptions.DEFAULT_FRAMES
    size = options.size or DemoOptions.DEFAULT_SIZE
    photons = options.photons or DemoOptions.DEFAULT_PHOTONS
    fps = options.fps or DemoOptions.DEFAULT_FPS
    timings: dict[str, float] = {}

    logger.info("simulating %d frames of %s px at %.1f photons/px", frames, size, photons)
    movie = simulate_calcium_movie(frames=frames, size=size, seed=options.seed, photons=photons)
    write_movie(out / "noisy.tif", movie.noisy)
    write_movie(out / "clean.tif", movie.clean)
    (out / "params.json").write_text(json.dumps(movie.params, indent=2))

    spec, validation, timings["train"] = _train(movie.noisy, out / "model.onnx", options.seed, options.training)

    server = _Server(out / "model.onnx", out / "server-home", out / "server.log")
    try:
        server.wait_ready()
        bar = ProgressBar(f"stream @ {fps:g} fps")
        client = StreamClient(server.zmq, stream="demo-cam")
        t0 = time.monotonic()
        try:
            result = client.denoise(movie.noisy, fps=fps, mode="lossless", progress=bar.update)
        finally:
            client.close()
        bar.close()
        timings["stream"] = time.monotonic() - t0
        server_status = server.status()
    finally:
        server.stop()

    denoised = result.frames
    write_movie(out / "denoised.tif", denoised)
    _write_figure(out / "figure.png", movie.noisy, denoised, movie.clean, float(movie.params.get("fps", fps)))

    scores: dict[str, dict[str, float]] = {}
    noisy = movie.noisy.astype(np.float32)
    # A few rows of the classical bank for scale, and the best of the whole bank as the floor (by PSNR).
    bank = {name: fn(noisy) for name, fn in metrics.CLASSICAL_FILTERS.items()}
    best_bank = max(bank, key=lambda n: metrics.psnr(bank[n], movie.clean))
    shown = ("moving_average_3", "moving_average_5", "gaussian_3d(1,1,1)", "gaussian_3d(2,1,1)", best_bank)
    candidates = {"noisy": noisy, **{name: bank[name] for name in shown}}
    candidates["deepcad_rt (streamed)"] = denoised
    for name, estimate in candidates.items():
        scores[name] = {"psnr": metrics.psnr(estimate, movie.clean), "ssim": metrics.ssim(estimate, movie.clean)}
    best = max((n for n in scores if n not in ("noisy", "deepcad_rt (streamed)")), key=lambda n: scores[n]["psnr"])

    stream_stats = result.summary()
    server_stream = server_status.streams.get("demo-cam")
    server_p99 = server_stream.latency_ms_p99 if server_stream is not None else None
    stream_stats.setdefault("latency_ms_p99", server_p99 if server_p99 is not None else float("nan"))
    timings["total"] = time.monotonic() - t_start
    return DemoReport(
        scores=scores,
        stream=stream_stats,
        timings=timings,
        files={
            name: str(out / name) for name in ("noisy.tif", "clean.tif", "denoised.tif", "figure.png", "model.onnx")
        },
        best_baseline=best,
        extra={
            "latency_frames": spec.window.latency_frames,
            "provider": server_status.provider,
            "fps_camera": fps,
            "heldout": validation.summary() if validation is not None else None,
        },
    )


def format_table(report: DemoReport) -> str:
    lines = [f"{'estimate':<26}{'PSNR (dB)':>10}{'SSIM':>8}", "-" * 44]
    for name, s in report.scores.items():
        mark = "  <- best baseline" if name == report.best_baseline else ""
        lines.append(f"{name:<26}{s['psnr']:>10.2f}{s['ssim']:>8.4f}{mark}")
    st = report.stream
    lines += [
        "",
        f"frames in/out {st['frames_in']}/{st['frames_out']}  skipped {st.get('skipped', 0)}  errors {st.get('errors', 0)}",
        f"throughput {st['fps']:.1f} fps at a {report.extra['fps_camera']:g} fps camera; latency p50 {st['latency_ms_p50']:.0f} ms,"
        f" p99 {st['latency_ms_p99']:.0f} ms (window latency {report.extra['latency_frames']} frames)",
        f"training {report.timings['train']:.0f} s, total {report.timings['total']:.0f} s; files in {Path(report.files['noisy.tif']).parent}",
    ]
    if report.extra.get("heldout"):
        lines.append(f"without ground truth, as `livedenoise train` reports it: {report.extra['heldout']}")
    return "\n".join(lines)
