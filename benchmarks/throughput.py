"""Camera-rate streaming: engine, torch eager and service throughput, latency and 4 streams, one table (issue 14).

For each method of ``--methods`` (default: the DeepCAD-RT-style 3-D U-Net, the SUPPORT-style wide-window 2-D U-Net
and the FAST-style light net) and each frame size of ``--sizes``, on each provider of ``--providers`` (at
``--precision``), in one run:

- **engine fps**: the engine alone (``Engine.infer``) on pre-built windows of ``spec.window.input_planes`` frames,
  the best of batch 1 and 4, frames out per second (``spec.window.out_frames`` per window) over seconds of
  back-to-back calls, as a stream sees it (not the best single call: turbo and AMX clocks drop under sustained
  load), in rounds that take turns with torch eager's and the other providers' (neighbours slow it in bursts);
- **torch fps**: the exported module (``recipe.export_module``) in torch eager on the same normalised windows, same
  threads (on the GPU for a GPU provider): the export's gain is engine / torch;
- **service fps**: the movie streamed unpaced and lossless by a client in a separate (spawned) process over ZeroMQ on
  127.0.0.1, through an ingest service running in this process (``max_batch`` = the engine's best batch), replies
  received; service / engine; frames in / out and lost (sent minus denoised: 0 in lossless mode);
- **latency**: the same stream paced at ``--camera-fps`` (default: half the measured service fps, rounded down),
  send -> reply p50 / p99 measured by the client, beside the latency the window forces (``latency_frames`` frames:
  the block's later frames and the look-ahead, and what they take at the camera rate);
- **4 streams**: 4 client processes streaming at once, unpaced, a quarter of the frames each (whole output
  blocks): all frames out over the span from the first start to the last end, and frames lost.

Movies are ``simulate_calcium_movie(frames, size, seed=0, photons=2.0).noisy`` (uint16). Each model is its method's
default trained for one short epoch: speed does not depend on how well it is trained. A stream sends ``--frames``
frames, fewer where the engine would need more than ``--seconds`` for them (the ``frames`` column says how many),
so that a run of both CPU providers takes about 40 minutes on 2 cores (``--sizes 128``: about 8). The table is
printed and written as Markdown and CSV to ``--out/throughput_<providers>.md`` and ``.csv``. Not part of the test
suite.

    python benchmarks/throughput.py [--methods deepcad_rt,support,fast] [--sizes 128,256,512] [--frames 600]
        [--providers cpu,openvino] [--precision auto] [--camera-fps FPS] [--threads N] [--seconds 6] [--out benchmarks/results] [--quick]
"""

from __future__ import annotations

import argparse
import functools
import logging
import math
import multiprocessing
import os
import platform
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from _shared import Column, markdown_table, sustained_rate, write_table
from numpy.typing import NDArray

from livedenoise.clients.model_spec import ModelSpec
from livedenoise.clients.stream import StreamClient
from livedenoise.clients.windowing import pad_to_multiple
from livedenoise.models.catalogue import method_info
from livedenoise.models.config import TrainConfig
from livedenoise.server.engine.base import Engine
from livedenoise.server.engine.graph_spec import read_file_spec
from livedenoise.server.engine.loader import load_engine
from livedenoise.server.errors import EngineError
from livedenoise.server.ingest.service import IngestService
from livedenoise.server.settings import Precision, Provider, ServerSettings

# torch, the trainer and the movie simulator (scipy) are imported inside the functions that need them: the spawned
# client processes import this module too, and must stay as light as a camera client.
if TYPE_CHECKING:
    from multiprocessing.synchronize import Event

    from torch import nn

logger = logging.getLogger("throughput")

DEFAULT_METHODS = ("deepcad_rt", "support", "fast")
DEFAULT_SIZES = (128, 256, 512)
QUICK_SIZES = (64,)
QUICK_FRAMES = 48
BATCHES = (1, 4)
ROUNDS = 3  # engine and torch eager take turns this many times (see interleaved_rates)
ROUND_S = 2.0  # seconds of back-to-back calls per batch size and round
MAX_BATCH_PIXELS = 4 * 16 * 256 * 256  # input pixels of one engine call, at most (see batches_for)
GPU_PROVIDERS = frozenset({Provider.CUDA, Provider.TENSORRT})
STREAMS = 4
MAX_IN_FLIGHT = 128
CLIENT_TIMEOUT_S = 300.0  # a client waits this long for a reply (a 512² SUPPORT batch takes seconds on 2 cores)


@dataclass(frozen=True)
class Options:
    """The validated command line."""

    methods: tuple[str, ...]
    sizes: tuple[int, ...]
    frames: int
    providers: tuple[Provider, ...]
    precision: Precision
    camera_fps: float | None
    threads: int
    seconds: float
    min_frames: int
    out: Path


@dataclass(frozen=True)
class ClientReport:
    """What one client process measured for its series (``begin``/``end``: ``time.monotonic()``, system-wide)."""

    frames_in: int
    frames_out: int
    fps: float
    latency_ms_p50: float
    latency_ms_p99: float
    late_frames: int
    begin: float
    end: float


@dataclass(frozen=True)
class Row:
    """One method at one frame size: every measurement of the table, unformatted."""

    method: str
    size: int
    provider: str
    precision: str
    window: str
    frames: int
    engine_fps: float
    engine_batch: int
    torch_fps: float
    service_fps: float
    frames_in: int
    frames_out: int
    lost: int
    camera_fps: float
    latency_ms_p50: float
    latency_ms_p99: float
    late_frames: int
    paced_lost: int
    latency_frames: int
    window_wait_ms: float
    streams: int
    stream_frames: int
    multi_fps: float
    multi_lost: int
    row_s: float

    def summary(self) -> str:
        """One log line."""
        return (
            f"{self.method} {self.size}² {self.provider} {self.precision}: engine {self.engine_fps:.1f} fps "
            f"(b{self.engine_batch}), torch {self.torch_fps:.1f}, service {self.service_fps:.1f} "
            f"({self.service_vs_engine:.2f}x), lost {self.lost}; at {self.camera_fps:g} fps p50/p99 "
            f"{self.latency_ms_p50:.0f}/{self.latency_ms_p99:.0f} ms; 4 streams {self.multi_fps:.1f} fps, lost "
            f"{self.multi_lost}; {self.frames} frames, {self.row_s:.0f} s"
        )

    @property
    def engine_vs_torch(self) -> float:
        return self.engine_fps / self.torch_fps

    @property
    def service_vs_engine(self) -> float:
        return self.service_fps / self.engine_fps

    def cells(self) -> dict[str, Any]:
        """The raw fields, the ratios, and the composite cells of the Markdown table."""
        return {
            **asdict(self),
            "engine_vs_torch": self.engine_vs_torch,
            "service_vs_engine": self.service_vs_engine,
            "engine_cell": f"{self.engine_fps:.1f} (b{self.engine_batch})",
            "in_out_cell": f"{self.frames_in} / {self.frames_out} ({self.lost})",
            "latency_cell": f"{self.latency_ms_p50:.0f} / {self.latency_ms_p99:.0f}",
            "window_cell": f"{self.latency_frames} ({self.window_wait_ms:.0f} ms)",
            "multi_cell": f"{self.multi_fps:.1f} ({self.streams}x{self.stream_frames}, lost {self.multi_lost})",
        }


COLUMNS: list[Column] = [
    ("method", "method", "{}"),
    ("size", "size", "{}"),
    ("provider", "provider", "{}"),
    ("precision", "precision", "{}"),
    ("window", "window", "{}"),
    ("frames", "frames", "{}"),
    ("engine fps (batch)", "engine_cell", "{}"),
    ("torch fps", "torch_fps", "{:.1f}"),
    ("engine / torch", "engine_vs_torch", "{:.2f}"),
    ("service fps", "service_fps", "{:.1f}"),
    ("service / engine", "service_vs_engine", "{:.2f}"),
    ("in / out (lost)", "in_out_cell", "{}"),
    ("camera fps", "camera_fps", "{:g}"),
    ("latency p50 / p99 ms", "latency_cell", "{}"),
    ("window latency (frames)", "window_cell", "{}"),
    ("4 streams fps (frames, lost)", "multi_cell", "{}"),
]
CSV_FIELDS = [
    *(name for name in Row.__dataclass_fields__ if name != "row_s"),
    "engine_vs_torch",
    "service_vs_engine",
]


# -- the command line -----------------------------------------------------------------------------------------
def _positive_ints(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def default_threads() -> int:
    """``OMP_NUM_THREADS`` when set (the usual way to share a machine), else every CPU."""
    value = os.environ.get("OMP_NUM_THREADS", "")
    return int(value) if value.isdigit() and int(value) > 0 else os.cpu_count() or 1


def parse_options(argv: list[str] | None = None) -> Options:
    """Read and check the command line; a bad method, provider or number exits with a usage error naming it."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--methods", default=",".join(DEFAULT_METHODS), help="comma-separated registered methods")
    parser.add_argument(
        "--sizes", type=_positive_ints, default=DEFAULT_SIZES, help="frame sizes (square), e.g. 128,256"
    )
    parser.add_argument("--frames", type=int, default=600, help="frames of the movie, the most a stream sends")
    parser.add_argument(
        "--providers", default=Provider.CPU.value, help=f"comma-separated, from {[p.value for p in Provider]}"
    )
    parser.add_argument("--precision", default=Precision.AUTO.value, help=f"one of {[p.value for p in Precision]}")
    parser.add_argument("--camera-fps", type=float, default=None, help="paced rate (default: half the service fps)")
    parser.add_argument("--threads", type=int, default=default_threads(), help="engine and torch threads")
    parser.add_argument("--seconds", type=float, default=6.0, help="a stream's length at the engine's speed, at most")
    parser.add_argument("--min-frames", type=int, default=16, help="the fewest frames a stream sends")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"), help="folder of the MD and CSV table")
    parser.add_argument("--quick", action="store_true", help=f"sizes {QUICK_SIZES}, {QUICK_FRAMES} frames, 1 method")
    args = parser.parse_args(argv)

    methods = tuple(m.strip() for m in args.methods.split(",") if m.strip())
    if not methods:
        parser.error("--methods is empty; name at least one registered method")
    for name in methods:
        try:
            method_info(name)
        except ValueError as exc:
            parser.error(f"--methods: {exc}")
    providers: list[Provider] = []
    for name in (v.strip() for v in args.providers.split(",") if v.strip()):
        try:
            providers.append(Provider(name))
        except ValueError:
            parser.error(f"--providers: {name!r} is unknown; choose from {[p.value for p in Provider]}")
    if not providers:
        parser.error("--providers is empty; name at least one")
    for provider in providers:
        try:
            check_provider(provider)
        except EngineError as exc:
            parser.error(f"--providers {provider.value}: {exc.message}")
    try:
        precision = Precision(args.precision)
    except ValueError:
        parser.error(f"--precision {args.precision!r} is unknown; choose one of {[p.value for p in Precision]}")
    if args.frames < 2:
        parser.error(f"--frames must be at least 2, got {args.frames}")
    if args.camera_fps is not None and not args.camera_fps > 0:
        parser.error(f"--camera-fps must be > 0, got {args.camera_fps}")
    if args.threads < 1:
        parser.error(f"--threads must be >= 1, got {args.threads}")
    if not args.seconds > 0:
        parser.error(f"--seconds must be > 0, got {args.seconds}")
    if args.min_frames < 1:
        parser.error(f"--min-frames must be >= 1, got {args.min_frames}")
    if args.quick:
        methods, sizes, frames = methods[:1], QUICK_SIZES, QUICK_FRAMES
    else:
        sizes, frames = args.sizes, args.frames
    return Options(
        methods=methods,
        sizes=sizes,
        frames=frames,
        providers=tuple(providers),
        precision=precision,
        camera_fps=args.camera_fps,
        threads=args.threads,
        seconds=args.seconds,
        min_frames=min(args.min_frames, frames),
        out=args.out,
    )


# -- the engine and torch alone -------------------------------------------------------------------------------
def train_default(method: str, movie: NDArray[np.uint16], path: Path) -> tuple[nn.Module, ModelSpec]:
    """Train ``method`` at its defaults for one short epoch, export it to ``path``: the served torch module and spec."""
    from livedenoise.models.pipeline import train_and_export

    config = TrainConfig(method=method, epochs=1, patches_per_epoch=4, seed=0)
    result, spec = train_and_export(movie, config, path)
    return result.recipe.export_module(result.network).eval(), spec


def prebuilt_windows(movie: NDArray[np.uint16], planes: int, count: int) -> NDArray[np.float32]:
    """``count`` windows of ``planes`` consecutive frames, raw float32 ``[count, planes, H, W]`` (the movie wraps
    around when it is shorter than a window: speed does not depend on which frames they are)."""
    windows = [np.take(movie, range(i, i + planes), axis=0, mode="wrap") for i in range(count)]
    return np.stack(windows).astype(np.float32)


def batches_for(planes: int, size: int) -> tuple[int, ...]:
    """The :data:`BATCHES` whose input stays within :data:`MAX_BATCH_PIXELS`: a 3-D U-Net's activations at 512² and
    batch 4 outgrow a 24 GiB machine in torch eager (the run was killed for memory)."""
    return tuple(b for b in BATCHES if b == 1 or b * planes * size * size <= MAX_BATCH_PIXELS)


def batch_rates(
    run: Callable[[int], object],
    out_frames: int,
    warm_every_batch: bool,
    *,
    first: bool = True,
    batches: tuple[int, ...] = BATCHES,
) -> dict[int, float]:
    """Frames out per second of ``run(batch)`` for each of ``batches`` (:data:`ROUND_S` seconds each).

    On the ``first`` round only the first batch gets an untimed warm-up call unless ``warm_every_batch``: a warm
    CPU runtime has no first-call cost for a new batch size worth a second slow call (a 512² batch of 4 takes tens
    of seconds on 2 cores), while a TensorRT engine is built per input shape. Later rounds are warm.
    """
    return {
        b: sustained_rate(functools.partial(run, b), ROUND_S, warm_up=first and (warm_every_batch or i == 0))
        * b
        * out_frames
        for i, b in enumerate(batches)
    }


def interleaved_rates(
    runs: dict[str, tuple[Callable[[int], object], bool]], out_frames: int, batches: tuple[int, ...] = BATCHES
) -> dict[str, tuple[float, int]]:
    """The best frames/s and batch of each named ``run(batch)`` (with its warm-every-batch flag), measured in
    :data:`ROUNDS` rounds that take turns: this machine's neighbours slow it down in bursts of seconds, which
    would otherwise land on one side of a ratio."""
    best: dict[str, dict[int, float]] = {name: {} for name in runs}
    for r in range(ROUNDS):
        for name, (run, warm_every_batch) in runs.items():
            rates = batch_rates(run, out_frames, warm_every_batch, first=r == 0, batches=batches)
            for batch, rate in rates.items():
                best[name][batch] = max(rate, best[name].get(batch, 0.0))
    return {name: max((rate, b) for b, rate in rates.items()) for name, rates in best.items()}


def torch_device(providers: tuple[Provider, ...]) -> str:
    """Where torch eager runs: the GPU when a GPU provider is measured (and torch has CUDA), so engine / torch
    compares like with like."""
    import torch

    gpu = [p.value for p in providers if p in GPU_PROVIDERS]
    if not gpu:
        return "cpu"
    if not torch.cuda.is_available():
        logger.warning("providers %s but this torch has no CUDA: torch eager runs on the CPU", ",".join(gpu))
        return "cpu"
    return "cuda"


def check_provider(provider: Provider) -> None:
    """Raise :class:`EngineError` naming what is missing when ``provider`` cannot run here."""
    if provider is Provider.OPENVINO:
        try:
            import openvino  # noqa: F401
        except ImportError:
            raise EngineError("OpenVINO is not installed (pip install 'livedenoise[openvino]')") from None
        return
    from livedenoise.server.engine.onnx_runtime import execution_providers

    execution_providers(provider, None)


def torch_runner(
    module: nn.Module, spec: ModelSpec, windows: NDArray[np.float32], device: str
) -> Callable[[int], object]:
    """``run(batch)`` of ``module`` in torch eager on ``device``, on the engine's own input (normalised, padded)."""
    import torch

    prepared = pad_to_multiple(spec.normalization.apply(windows), spec.window.spatial_multiple)
    x = torch.from_numpy(np.ascontiguousarray(prepared)).to(device)
    module = module.to(device)

    def run(batch: int) -> None:
        with torch.no_grad():
            module(x[:batch])
        if device == "cuda":
            torch.cuda.synchronize()

    return run


# -- the service, from client processes -----------------------------------------------------------------------
def _client_process(
    endpoint: str, stream: str, movie: NDArray[np.uint16], fps: float | None, go: Event, conn: Connection
) -> None:
    """A spawned camera: connect, report ready, wait for ``go``, stream ``movie`` as one lossless series, report."""
    try:
        with StreamClient(endpoint, stream=stream, max_in_flight=MAX_IN_FLIGHT, timeout_s=CLIENT_TIMEOUT_S) as client:
            conn.send({"ready": True})
            if not go.wait(CLIENT_TIMEOUT_S):
                raise TimeoutError(f"no start signal within {CLIENT_TIMEOUT_S:.0f} s")
            begin = time.monotonic()
            result = client.stream_frames(
                iter(movie),
                dtype=movie.dtype,
                shape=(int(movie.shape[1]), int(movie.shape[2])),
                total=int(movie.shape[0]),
                fps=fps,
                mode="lossless",
                keep_frames=False,
            )
            end = time.monotonic()
        summary = result.summary()
        report = ClientReport(
            frames_in=int(summary["frames_in"]),
            frames_out=int(summary["frames_out"]),
            fps=result.fps,
            latency_ms_p50=float(summary["latency_ms_p50"]),
            latency_ms_p99=float(summary["latency_ms_p99"]),
            late_frames=int(summary["late_frames"]),
            begin=begin,
            end=end,
        )
        # A plain dict: the parent cannot unpickle a class of the spawned child's __mp_main__ by that name.
        conn.send({"report": asdict(report)})
    except Exception as exc:  # any failure goes to the parent, which raises it naming the stream
        conn.send({"error": f"{type(exc).__name__}: {exc}"})
    finally:
        conn.close()


def _receive(conn: Connection, process: BaseProcess, doing: str) -> dict[str, Any]:
    try:
        message: dict[str, Any] = conn.recv()
    except EOFError:
        process.join(5.0)
        raise RuntimeError(f"client {process.name} exited (code {process.exitcode}) while {doing}") from None
    if "error" in message:
        raise RuntimeError(f"client {process.name} failed while {doing}: {message['error']}")
    return message


def stream_from_processes(
    endpoint: str, movie: NDArray[np.uint16], streams: int, fps: float | None
) -> list[ClientReport]:
    """Stream ``movie`` from ``streams`` spawned client processes at once (started together once all are
    connected), each as its own stream; their reports, in stream order."""
    ctx = multiprocessing.get_context("spawn")
    go = ctx.Event()
    clients: list[tuple[BaseProcess, Connection]] = []
    try:
        for i in range(streams):
            receiver, sender = ctx.Pipe(duplex=False)
            child = ctx.Process(
                target=_client_process, args=(endpoint, f"bench{i}", movie, fps, go, sender), name=f"bench{i}"
            )
            child.start()
            sender.close()  # the child holds the only sender: its exit shows as EOF here
            clients.append((child, receiver))
        for process, receiver in clients:
            _receive(receiver, process, "connecting")
        go.set()
        reports = [ClientReport(**_receive(r, p, "streaming")["report"]) for p, r in clients]
    finally:
        go.set()
        for process, receiver in clients:
            process.join(30.0)
            if process.is_alive():
                process.terminate()
                process.join(5.0)
            receiver.close()
    return reports


def warm_up(endpoint: str, movie: NDArray[np.uint16], frames: int) -> None:
    """One short series from this process before measuring, so first-call costs (allocations, a TensorRT build) are
    paid outside the timed runs, as the engine's warm-up call pays them for the engine alone."""
    with StreamClient(endpoint, stream="warm-up", max_in_flight=MAX_IN_FLIGHT, timeout_s=CLIENT_TIMEOUT_S) as client:
        result = client.denoise(movie[:frames], mode="lossless")
    if result.frames_out != frames:
        raise RuntimeError(f"warm-up series: {result.frames_out} of {frames} frames came back ({result.summary()})")


# -- one row ----------------------------------------------------------------------------------------------------
def whole_blocks(frames: int, out_frames: int, available: int) -> int:
    """``frames`` rounded up to whole output blocks (a partial last block computes frames it throws away), within
    ``available``."""
    rounded = math.ceil(frames / out_frames) * out_frames
    if rounded > available:
        rounded = available // out_frames * out_frames or available
    return rounded


def stream_length(engine_fps: float, options: Options, out_frames: int) -> int:
    """Frames one stream sends: ``--frames``, or what the engine does in ``--seconds`` when fewer (``--min-frames`` at
    least), in whole output blocks."""
    wanted = min(options.frames, max(options.min_frames, math.ceil(engine_fps * options.seconds)))
    return whole_blocks(wanted, out_frames, options.frames)


def camera_rate(service_fps: float) -> float:
    """Half of ``service_fps``, rounded down: to a whole number from 1 fps up, else to one significant figure."""
    half = service_fps / 2
    if not half > 0:
        raise RuntimeError(f"the service streamed at {service_fps} fps; no camera rate can be derived from it")
    if half >= 1:
        return float(math.floor(half))
    scale = 10.0 ** -math.floor(math.log10(half))
    return math.floor(half * scale) / scale


def measure_rows(method: str, size: int, options: Options, device: str, work: Path) -> list[Row]:
    """Train; measure torch eager (on ``device``) and every provider's engine in interleaved rounds; then per
    provider the service (one stream, paced, 4 streams): one row per provider."""
    from livedenoise.models.synthetic import simulate_calcium_movie

    started = time.perf_counter()
    movie = simulate_calcium_movie(frames=options.frames, size=size, seed=0, photons=2.0).noisy
    path = work / f"{method}_{size}.onnx"
    module, spec = train_default(method, movie, path)
    windows = prebuilt_windows(movie, spec.window.input_planes, max(BATCHES))
    engines: dict[Provider, Engine] = {}
    try:
        for provider in options.providers:
            engines[provider] = load_engine(
                path, provider, f"{method}-{size}-{provider.value}", options.threads,
                cache_dir=work / "home" / "trt_cache", precision=options.precision,
            )  # fmt: skip
        runs: dict[str, tuple[Callable[[int], object], bool]] = {
            "torch": (torch_runner(module, spec, windows, device), device != "cpu")
        }
        for provider, engine in engines.items():
            runs[provider.value] = (functools.partial(_infer, engine, windows), provider is not Provider.CPU)
        rates = interleaved_rates(runs, spec.window.out_frames, batches_for(spec.window.input_planes, size))
        precisions = {p: str(getattr(e, "precision", "fp32")) for p, e in engines.items()}
    finally:
        for engine in engines.values():
            engine.close()
    del module
    rows = []
    for provider in options.providers:
        row = measure_service(
            method, size, provider, precisions[provider], options, path, movie, rates[provider.value],
            rates["torch"][0], work,
        )  # fmt: skip
        rows.append(row)
        logger.info("%s", row.summary())
    logger.info("%s %d²: %.0f s", method, size, time.perf_counter() - started)
    return rows


def _infer(engine: Engine, windows: NDArray[np.float32], batch: int) -> object:
    return engine.infer(windows[:batch])


def measure_service(
    method: str,
    size: int,
    provider: Provider,
    precision: str,
    options: Options,
    path: Path,
    movie: NDArray[np.uint16],
    engine: tuple[float, int],
    torch_fps: float,
    work: Path,
) -> Row:
    """The service on ``provider``, given the engine's measured frames/s and best batch."""
    started = time.perf_counter()
    home = work / "home"
    name = f"{method}-{size}-{provider.value}"
    engine_fps, batch = engine
    window = read_file_spec(path).window
    frames = stream_length(engine_fps, options, window.out_frames)
    per_stream = whole_blocks(math.ceil(frames / STREAMS), window.out_frames, frames)
    settings = ServerSettings(
        home=home,
        zmq_port=0,
        pub_port=0,
        control_port=0,
        provider=provider,
        precision=options.precision,
        intra_op_threads=options.threads,
        max_batch=batch,
    )
    with IngestService(settings, model_path=path, model_id=name) as service:
        warm_up(service.zmq_endpoint, movie, min(frames, window.out_frames * batch))
        (single,) = stream_from_processes(service.zmq_endpoint, movie[:frames], 1, None)
        camera = options.camera_fps or camera_rate(single.fps)
        (paced,) = stream_from_processes(service.zmq_endpoint, movie[:frames], 1, camera)
        multi = stream_from_processes(service.zmq_endpoint, movie[:per_stream], STREAMS, None)
    span = max(r.end for r in multi) - min(r.begin for r in multi)
    return Row(
        method=method,
        size=size,
        provider=provider.value,
        precision=precision,
        window=f"{window.before}+{window.out_frames}+{window.after}",
        frames=frames,
        engine_fps=engine_fps,
        engine_batch=batch,
        torch_fps=torch_fps,
        service_fps=single.fps,
        frames_in=single.frames_in,
        frames_out=single.frames_out,
        lost=frames - single.frames_out,
        camera_fps=camera,
        latency_ms_p50=paced.latency_ms_p50,
        latency_ms_p99=paced.latency_ms_p99,
        late_frames=paced.late_frames,
        paced_lost=frames - paced.frames_out,
        latency_frames=window.latency_frames,
        window_wait_ms=window.latency_frames / camera * 1000.0,
        streams=STREAMS,
        stream_frames=per_stream,
        multi_fps=sum(r.frames_out for r in multi) / span,
        multi_lost=sum(per_stream - r.frames_out for r in multi),
        row_s=time.perf_counter() - started,
    )


# -- the table --------------------------------------------------------------------------------------------------
def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_description(options: Options, device: str) -> str:
    """CPUs, threads, provider, runtime versions, the GPU if torch runs on one, for the table's header."""
    import onnxruntime
    import torch

    text = (
        f"{os.cpu_count()} CPUs ({_cpu_model()}), {options.threads} threads, precision {options.precision.value}, "
        f"onnxruntime {onnxruntime.__version__}, torch {torch.__version__} eager on {device}"
    )
    if device == "cuda":
        text += f" ({torch.cuda.get_device_name(0)})"
    return text


def table_text(rows: list[Row], options: Options, machine: str) -> str:
    header = (
        f"Streaming throughput on {machine}.\n"
        f"Calcium movies (uint16, seed 0), lossless; frames: sent by one stream, at most {options.frames} (fewer where "
        f"the engine needs more than {options.seconds:g} s for them); latency: client send -> reply at the camera "
        "rate, beside the frames the window makes a frame wait (the rest of its output block and the look-ahead)."
    )
    text = markdown_table(header, COLUMNS, [row.cells() for row in rows])
    shortened = [f"{r.method} {r.size}² {r.provider} ({r.frames})" for r in rows if r.frames < options.frames]
    if shortened:
        text += f"\n\nShortened to keep the run short: {', '.join(shortened)}."
    lossy = [f"{r.method} {r.size}² {r.provider}" for r in rows if r.lost or r.paced_lost or r.multi_lost]
    if lossy:
        text += f"\n\nFRAMES LOST in lossless mode (must be 0): {', '.join(lossy)}."
    return text


def main(argv: list[str] | None = None) -> None:
    options = parse_options(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logger.setLevel(logging.INFO)
    import torch

    torch.set_num_threads(options.threads)
    device = torch_device(options.providers)
    machine = machine_description(options, device)
    logger.info("%s; methods %s, sizes %s", machine, ",".join(options.methods), ",".join(map(str, options.sizes)))
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="livedenoise-throughput-") as tmp:
        for method in options.methods:
            for size in options.sizes:
                rows.extend(measure_rows(method, size, options, device, Path(tmp)))
    text = table_text(rows, options, machine)
    print(text)
    stem = "throughput_" + "_".join(p.value for p in options.providers)
    write_table(options.out / stem, text, [r.cells() for r in rows], CSV_FIELDS)


if __name__ == "__main__":
    main()
