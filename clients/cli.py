"""`livedenoise`: one command line for simulation, training, offline denoising, serving, streaming and the demo.

Argparse (stdlib) so the client-only install keeps working; heavy modules (torch, onnxruntime, fastapi) are
imported inside the command that needs them, and a missing extra is reported by name.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import sys
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from livedenoise.clients import __version__
from livedenoise.clients.log_setup import configure_logging
from livedenoise.clients.movie_io import MOVIE_SUFFIXES
from livedenoise.clients.ome_zarr import is_ome_zarr_path
from livedenoise.clients.physical_scale import read_physical_scale
from livedenoise.clients.protocol import StreamMode

__all__ = ["main", "build_parser"]

logger = logging.getLogger(__name__)

# Which extra provides each heavy top-level module (for the "install …" message).
_EXTRA_OF = {
    "torch": "train",
    "onnx": "train",
    "onnxscript": "train",
    "scipy": "train",
    "safetensors": "train",
    "matplotlib": "train",
    "fastapi": "server",
    "uvicorn": "server",
    "onnxruntime": "server",
    "pydantic_settings": "server",
    "tifffile": "server",
    "multipart": "server",
    "zarr": "zarr",
}


class MissingExtra(SystemExit):
    pass


def _require(command: str, module: str, *also: str) -> Any:
    """Import ``module`` (and the modules the command needs later, ``also``) lazily; a missing optional
    dependency becomes a message naming the extra. Returns ``module``."""
    try:
        for name in also:
            importlib.import_module(name)
        return importlib.import_module(module)
    except ImportError as exc:
        root = (exc.name or "").split(".")[0]
        extra = _EXTRA_OF.get(root)
        if extra is None:
            raise
        raise MissingExtra(
            f"`livedenoise {command}` needs the '{extra}' extra ({root} is not installed): "
            f"pip install 'livedenoise[{extra}]'"
        ) from None


def _parse_size(text: str) -> int | tuple[int, int]:
    """`128` or `96x160` (height x width)."""
    try:
        if "x" in text.lower():
            h, w = text.lower().split("x", 1)
            return (int(h), int(w))
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must be N or HxW (e.g. 128 or 96x160), got {text!r}") from None


# --------------------------------------------------------------------------- commands


def cmd_simulate(args: argparse.Namespace) -> int:
    synthetic = _require("simulate", "livedenoise.models.synthetic")
    from livedenoise.clients.movie_io import write_movie

    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    movie = synthetic.simulate_calcium_movie(frames=args.frames, size=args.size, seed=args.seed, photons=args.photons)
    write_movie(out / "noisy.tif", movie.noisy)
    write_movie(out / "clean.tif", movie.clean)
    (out / "params.json").write_text(json.dumps(movie.params, indent=2))
    print(f"wrote {out / 'noisy.tif'} {tuple(movie.noisy.shape)} {movie.noisy.dtype}, clean.tif, params.json")
    return 0


def _train_progress_printer(label: str) -> tuple[Callable[[Any], None], Callable[[], None]]:
    from livedenoise.clients.progress import ProgressBar

    bar = ProgressBar(label)

    def on_progress(p: Any) -> None:
        epoch = f"epoch {p.epoch}/{p.epochs}" if getattr(p, "epochs", None) else f"epoch {p.epoch}"
        note = f"{epoch} loss {p.loss:.4f}" if getattr(p, "loss", None) is not None else ""
        if getattr(p, "val_gain_db", None) is not None:
            note += f" held-out {p.val_gain_db:+.2f} dB"
        bar.update(float(p.fraction), note)

    return on_progress, bar.close


def _parse_param(text: str) -> tuple[str, Any]:
    """``KEY=VALUE`` with a JSON value (``bs_size=3``, ``unet_channels=[16,32,64]``) or a bare string."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"--param needs KEY=VALUE (e.g. bs_size=3), got {text!r}")
    try:
        return key.strip().replace("-", "_"), json.loads(value)
    except json.JSONDecodeError:
        return key.strip().replace("-", "_"), value


_TRAIN_OPTIONS = (
    "time_budget_s",
    "epochs",
    "patch_t",
    "patch_xy",
    "batch_size",
    "patches_per_epoch",
    "lr",
    "loss",
    "seed",
    "device",
    "validation_frames",
)


def _train_config(args: argparse.Namespace) -> Any:
    config_mod = _require("train", "livedenoise.models.config")
    fields: dict[str, Any] = {"method": args.method, **dict(args.params or [])}
    for name in _TRAIN_OPTIONS:
        value = getattr(args, name, None)
        if value is not None:
            fields[name] = value
    return config_mod.TrainConfig(**fields)


def cmd_train(args: argparse.Namespace) -> int:
    pipeline = _require("train", "livedenoise.models.pipeline")
    from livedenoise.clients.movie_io import read_movie

    config = _train_config(args)  # validated before the movie is read
    movie = read_movie(args.movie)
    on_progress, done = _train_progress_printer(f"train {config.method}")
    out = Path(args.out)
    checkpoint = None if args.no_checkpoint else Path(args.checkpoint or out.with_suffix(".ckpt"))
    result, spec = pipeline.train_and_export(movie, config, out, progress=on_progress, checkpoint_dir=checkpoint)
    done()
    w = spec.window
    print(
        f"wrote {out}: method {spec.method}, window {w.before}+{w.out_frames}+{w.after} frames, "
        f"latency {w.latency_frames} frames, trained {result.elapsed_s:.0f} s ({result.steps} steps)"
    )
    if checkpoint is not None:
        print(f"wrote checkpoint {checkpoint}/ (safetensors weights + config)")
    if result.validation is not None:
        print(result.validation.summary())
    else:
        print(
            "no held-out score: the movie is too small to hold frames out (it needs 48 frames or more, and the "
            "held-out even frames at least 65,536 pixels; --validation-frames N forces it)"
        )
    return 0


def _parse_setting(text: str) -> tuple[str | None, str, Any]:
    """``KEY=VALUE`` for every method or ``METHOD.KEY=VALUE`` for one, the value as in ``--param``."""
    key, value = _parse_param(text)
    method, dot, field = key.rpartition(".")
    if dot and not (method and field):
        raise argparse.ArgumentTypeError(f"--set needs KEY=VALUE or METHOD.KEY=VALUE, got {text!r}")
    return (method or None), field, value


def cmd_compare(args: argparse.Namespace) -> int:
    compare = _require(
        "compare",
        "livedenoise.models.compare",
        "livedenoise.models.pipeline",
        "livedenoise.models.compare_report",
        "livedenoise.server.engine.onnx_runtime",
        "matplotlib",
        "scipy",
    )
    from livedenoise.clients.movie_io import read_movie
    from livedenoise.clients.progress import ProgressBar
    from livedenoise.models.catalogue import method_info
    from livedenoise.models.compare_report import format_table

    methods = [m.strip() for m in args.methods.split(",") if m.strip()] if args.methods else None
    for name in methods or []:
        method_info(name)  # an unknown name fails before the movie is read
    shared: dict[str, Any] = {}
    overrides: dict[str, dict[str, Any]] = {}
    for method, field, value in args.settings or []:
        (overrides.setdefault(method, {}) if method else shared)[field] = value
    movie_path = Path(args.movie)
    movie = read_movie(movie_path)
    clean = read_movie(args.clean) if args.clean else None
    out = Path(args.out) if args.out else Path(f"{movie_path.stem}-compare")
    bar: list[Any] = []

    def on_progress(p: Any) -> None:
        if p.train is not None:
            if bar:
                bar[0].update(float(p.train.fraction), f"epoch {p.train.epoch} loss {p.train.loss:.4f}")
            return
        while bar:
            bar.pop().close()
        logger.info("[%d/%d] %s: %s %s", p.index, p.total, p.method, p.stage, p.message)
        if p.stage == "train":
            bar.append(ProgressBar(f"train {p.method}"))

    try:
        result = compare.compare_methods(
            movie,
            methods,
            args.time_budget_s,
            out,
            clean=clean,
            max_latency=args.max_latency,
            progress=on_progress,
            overrides=overrides,
            shared=shared,
            movie_name=movie_path.name,
        )
    finally:
        while bar:
            bar.pop().close()
    print(format_table(result))
    print(f"wrote {out / result.files['html']} (and report.png, results.json, results.csv, models/)")
    return 0


def cmd_methods(args: argparse.Namespace) -> int:
    from livedenoise.clients.methods_table import methods_table

    catalogue = _require("methods", "livedenoise.models.catalogue")
    print(methods_table(catalogue, count_parameters=not args.no_parameters, markdown=args.markdown))
    return 0


# The server's Provider and Precision values (the client package does not import the server's).
PROVIDERS = ["cpu", "cuda", "tensorrt", "openvino"]
PRECISIONS = ["auto", "fp32"]
PROVIDER_HELP = "engine: cpu (ONNX Runtime), cuda, tensorrt, or openvino (Intel CPUs, extra `openvino`)"
PRECISION_HELP = "auto: the provider's fast precision (TensorRT fp16, OpenVINO bf16 where the CPU has it); fp32: exact"

MOVIE_HELP = f"{', '.join(MOVIE_SUFFIXES)}: [T, Y, X], 8/16-bit, other integer or float pixels"
ESTIMATE_HELP = (
    "which of the model's estimates to serve, for a model that offers several (FAST: final, the default, or "
    "causal, 0 frames of latency); see the model's spec"
)


def cmd_denoise(args: argparse.Namespace) -> int:
    loader = _require("denoise", "livedenoise.server.engine.loader", "livedenoise.server.engine.onnx_runtime")
    offline = _require("denoise", "livedenoise.server.engine.offline")
    from livedenoise.clients.movie_io import read_movie, write_movie
    from livedenoise.clients.progress import ProgressBar

    movie = read_movie(args.movie)
    engine = loader.load_engine(
        Path(args.model), provider=args.provider, model_id=Path(args.model).stem, threads=0, precision=args.precision
    )
    bar = ProgressBar("denoise")
    try:
        denoised = offline.denoise_movie(
            engine, movie, batch_size=args.batch, progress=bar.update, estimate=args.estimate
        )
    finally:
        engine.close()
    bar.close()
    scale = read_physical_scale(args.movie)
    write_movie(
        args.out,
        denoised,
        pixel_size_um=scale.pixel_size_um,
        frame_interval_s=scale.frame_interval_s,
        attributes={"livedenoise": {"source": str(args.movie), "model": str(args.model), "method": engine.spec.method}},
    )
    print(f"wrote {args.out} {tuple(denoised.shape)} float32")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    settings_mod = _require("serve", "livedenoise.server.settings")
    supervisor = _require(
        "serve", "livedenoise.server.supervisor", "livedenoise.server.api.app", "livedenoise.server.engine.onnx_runtime"
    )
    overrides = {
        key: value
        for key, value in {
            "model": args.model,
            "zmq_port": args.zmq_port,
            "pub_port": args.pub_port,
            "http_port": args.http_port,
            "control_port": args.control_port,
            "bind": args.bind,
            "home": args.home,
            "provider": args.provider,
            "precision": args.precision,
        }.items()
        if value is not None
    }
    try:
        settings = settings_mod.ServerSettings(**overrides)
    except ValueError as exc:  # pydantic ValidationError names the field and the fix
        raise SystemExit(f"invalid server settings: {exc}") from None
    errors = importlib.import_module("livedenoise.server.errors")
    try:
        supervisor.serve(settings)
    except (errors.LiveDenoiseError, supervisor.IngestStartError) as exc:
        raise SystemExit(f"livedenoise serve: {exc}") from None
    return 0


def cmd_stream(args: argparse.Namespace) -> int:
    from livedenoise.clients.movie_io import read_movie, write_movie
    from livedenoise.clients.progress import ProgressBar
    from livedenoise.clients.stream import StreamClient

    curve = _client_keys(args)
    movie = read_movie(args.movie)
    series = f"{args.stream}-{uuid.uuid4().hex[:12]}"
    # An OME-Zarr --out grows frame by frame as replies arrive: a crash loses only the frames in flight.
    sink = _zarr_sink(args, movie, series) if args.out and is_ome_zarr_path(args.out) else None
    bar = ProgressBar("stream")
    client = StreamClient(args.to, stream=args.stream, curve=curve)
    try:
        meta = {"estimate": args.estimate} if args.estimate else None
        result = client.denoise(
            movie, series=series, fps=args.fps, mode=args.mode, meta=meta, on_reply=sink, progress=bar.update
        )
    finally:
        client.close()
        if sink is not None:
            sink.writer.close()
    bar.close()
    if args.out and sink is None:
        scale = read_physical_scale(args.movie)
        write_movie(args.out, result.frames, pixel_size_um=scale.pixel_size_um, frame_interval_s=scale.frame_interval_s)
    summary = result.summary()
    print(json.dumps(summary))
    return 0 if summary.get("frames_out") == summary.get("frames_in") else 1


def _zarr_sink(args: argparse.Namespace, movie: Any, series: str) -> Any:
    """The OME-Zarr writer (behind a reply sink) that ``stream --out X.zarr`` appends to."""
    from livedenoise.clients.ome_zarr import OmeZarrMovieWriter
    from livedenoise.clients.reply_sink import ZarrReplySink

    scale = read_physical_scale(args.movie)
    metadata = {"source": str(args.movie), "stream": args.stream, "series": series}
    writer = OmeZarrMovieWriter(
        args.out,
        shape_yx=(int(movie.shape[1]), int(movie.shape[2])),
        dtype="float32",
        pixel_size_um=scale.pixel_size_um,
        frame_interval_s=scale.frame_interval_s,
        attributes={"livedenoise": metadata},
        overwrite=True,
    )
    return ZarrReplySink(writer, series, metadata)


def _client_keys(args: argparse.Namespace) -> Any:
    """CURVE keys from --server-key/--client-key (both or neither)."""
    from livedenoise.clients.keys import ClientKeys

    if (args.server_key is None) != (args.client_key is None):
        raise ValueError("--server-key and --client-key go together: the server's .key file and your .key_secret file")
    if args.server_key is None:
        return None
    return ClientKeys.from_files(args.server_key, args.client_key)


def cmd_keys(args: argparse.Namespace) -> int:
    from livedenoise.clients.keys import create_key_pair, load_public_key

    public, secret = create_key_pair(args.dir, args.name)
    print(f"public key  {public}  ({load_public_key(public).decode()})")
    print(f"secret key  {secret}  (keep it private)")
    print(
        "A server accepts a client whose .key file lies in its LIVEDENOISE_CURVE_CLIENTS_DIR (restart ingest after"
        " adding one); a client needs the server's .key file and its own .key_secret."
    )
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from livedenoise.clients import demo

    _require("demo", "livedenoise.models.pipeline", "livedenoise.models.metrics", "matplotlib")
    _require(
        "demo", "livedenoise.server.supervisor", "livedenoise.server.api.app", "livedenoise.server.engine.onnx_runtime"
    )
    options = demo.DemoOptions(
        out_dir=Path(args.out),
        frames=args.frames,
        size=args.size,
        photons=args.photons,
        seed=args.seed,
        fps=args.fps,
        training={
            k: v
            for k, v in {
                "epochs": args.epochs,
                "patches_per_epoch": args.patches_per_epoch,
                "patch_t": args.patch_t,
                "patch_xy": args.patch_xy,
            }.items()
            if v is not None
        },
    )
    report = demo.run_demo(options)
    print(demo.format_table(report))
    print(json.dumps(report.summary()))
    return 0 if report.passed else 1


def cmd_export_bmz(args: argparse.Namespace) -> int:
    import getpass

    bmz = _require("export-bmz", "livedenoise.models.bmz", "onnxruntime", "onnx", "tifffile")
    from livedenoise.clients.movie_io import read_movie

    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no login name (a container without a passwd entry)
        user = "unknown"
    authors = tuple(args.authors or [user])
    options = bmz.PackageOptions(
        name=args.name, description=args.description, authors=authors, license=args.license, tags=tuple(args.tags or [])
    )
    result = bmz.export_package(
        Path(args.model), Path(args.out), read_movie(args.movie), movie_name=str(args.movie), options=options
    )
    print(result.summary())
    if not args.authors:
        print(f"authors: {authors[0]} (your user name; name the model's authors with --author before publishing)")
    return 0


def cmd_import_bmz(args: argparse.Namespace) -> int:
    if args.load and not args.url:
        raise ValueError("--load needs --url (the server to upload the model to)")
    bmz = _require("import-bmz", "livedenoise.models.bmz", "onnxruntime", "onnx")
    result = bmz.import_package(Path(args.package), Path(args.out))
    print(result.summary())
    if args.url:
        from livedenoise.clients.control import ControlClient, ControlError

        try:
            with ControlClient(args.url, token=args.token) as control:
                model = control.upload_model(result.path, name=args.name)
                print(f"uploaded to {args.url}: model {model.id}")
                if args.load:
                    control.load_model(model.id)
                    print(f"loaded {model.id}: the server now serves it")
        except ControlError as exc:
            raise SystemExit(
                f"livedenoise import-bmz: {result.path} was written, but the upload failed: {exc}"
            ) from None
    return 0


# --------------------------------------------------------------------------- parser


def _method_names() -> list[str] | None:
    """The registered methods, for ``choices``; None on the client-only install (no pydantic for the catalogue),
    where the commands that train are unavailable anyway."""
    try:
        catalogue = importlib.import_module("livedenoise.models.catalogue")
    except ImportError:
        return None
    return list(catalogue.list_methods())


_METHODS_LIST = ", ".join(_method_names() or ["see `livedenoise methods`"])


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="livedenoise", description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--version", action="version", version=f"livedenoise {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("simulate", help="write a synthetic calcium movie with ground truth")
    p.add_argument("out_dir", help="folder to write noisy.tif, clean.tif and params.json into")
    p.add_argument("--frames", type=int, default=600, help="number of frames (default 600)")
    p.add_argument("--size", type=_parse_size, default=128, help="N or HxW")
    p.add_argument("--seed", type=int, default=0, help="random seed: the same seed writes the same movie")
    p.add_argument("--photons", type=float, default=2.0, help="mean photons per pixel")
    p.set_defaults(func=cmd_simulate)

    p = sub.add_parser("train", help="train a self-supervised model on a movie and export ONNX")
    p.add_argument("movie", help=f"movie to train on ({MOVIE_HELP})")
    p.add_argument(
        "--method",
        default="deepcad_rt",
        choices=_method_names(),
        metavar="METHOD",
        help=f"the method to train (default %(default)s): {_METHODS_LIST}",
    )
    p.add_argument("--out", required=True, help="ONNX file to write")
    p.add_argument(
        "--time-budget",
        dest="time_budget_s",
        type=float,
        help="training seconds (default: the method's, the plateau on a 2-core CPU for ~600 frames of 128x128)",
    )
    p.add_argument("--epochs", type=int, help="a fixed number of epochs instead of the time budget")
    p.add_argument("--patches-per-epoch", dest="patches_per_epoch", type=int, help="patches between validations")
    p.add_argument("--patch-t", dest="patch_t", type=int, help="frames per stack (3-D methods)")
    p.add_argument("--patch", "--patch-xy", dest="patch_xy", type=int, help="training crop in pixels")
    p.add_argument(
        "--batch-size", dest="batch_size", type=int, help="patches per optimiser step (default: the method's)"
    )
    p.add_argument("--lr", type=float, help="learning rate (default: the method's)")
    p.add_argument("--loss", choices=["l1", "l2", "l1_l2"], help="training loss, for methods that offer a choice")
    p.add_argument(
        "--validation-frames",
        dest="validation_frames",
        type=int,
        help="frames held out at the end for the held-out score (default auto; 0 = none)",
    )
    p.add_argument(
        "--param",
        dest="params",
        action="append",
        type=_parse_param,
        metavar="KEY=VALUE",
        help="any field of the method's config, e.g. --param bs_size=3 (repeatable)",
    )
    p.add_argument("--seed", type=int, help="random seed of initialisation and sampling (default 0)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], help="where to train (default auto: cuda when usable)")
    p.add_argument("--checkpoint", help="checkpoint folder (default: OUT with the suffix .ckpt)")
    p.add_argument("--no-checkpoint", dest="no_checkpoint", action="store_true", help="write only the ONNX file")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("compare", help="train several methods on a movie and write a report to pick one")
    p.add_argument("movie", help=f"movie to compare the methods on ({MOVIE_HELP})")
    p.add_argument("--methods", help="comma-separated methods (default: every method; those the movie does not suit"
                   f" are listed as skipped): {_METHODS_LIST}")  # fmt: skip
    p.add_argument(
        "--time-budget",
        dest="time_budget_s",
        type=float,
        help="seconds for the whole comparison: each method's default budget scaled so training takes at most 80%% "
        "of it (default: each method's full default)",
    )
    p.add_argument("--clean", help="ground truth movie of the same shape: adds PSNR and SSIM")
    p.add_argument("--max-latency", dest="max_latency", type=int, help="recommend only estimates within this latency")
    p.add_argument("--out", help="report folder (default: <movie stem>-compare)")
    p.add_argument(
        "--set",
        dest="settings",
        action="append",
        type=_parse_setting,
        metavar="[METHOD.]KEY=VALUE",
        help="a training field for every method (epochs=2, device=cpu) or for one (deepcad_rt.patch_t=8); repeatable",
    )
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("methods", help="list the registered methods: family, window, latency, parameters, paper")
    p.add_argument("--markdown", action="store_true", help="a Markdown table")
    p.add_argument(
        "--no-parameters", dest="no_parameters", action="store_true", help="skip counting parameters (no torch)"
    )
    p.set_defaults(func=cmd_methods)

    p = sub.add_parser("denoise", help="denoise a movie offline with the serving engine")
    p.add_argument("movie", help=f"movie to denoise ({MOVIE_HELP})")
    p.add_argument("--model", required=True, help="ONNX model written by `livedenoise train`")
    p.add_argument(
        "--out",
        required=True,
        help="denoised movie to write (float32; the suffix picks the format: .tif/.ome.tif, .ome.zarr, .npy)",
    )
    p.add_argument("--provider", default="cpu", choices=PROVIDERS, help=PROVIDER_HELP)
    p.add_argument("--precision", default="auto", choices=PRECISIONS, help=PRECISION_HELP)
    p.add_argument("--batch", type=int, default=4, help="windows per engine call")
    p.add_argument("--estimate", help=ESTIMATE_HELP)
    p.set_defaults(func=cmd_denoise)

    p = sub.add_parser("serve", help="run the ingest process and the control plane")
    p.add_argument("--model", help="ONNX model to register and load at start")
    p.add_argument(
        "--zmq-port", dest="zmq_port", type=int, help="frames port, ROUTER (default 5555; 0 = any free port)"
    )
    p.add_argument("--pub-port", dest="pub_port", type=int, help="preview port, PUB (default 5556; 0 = any free port)")
    p.add_argument("--http-port", dest="http_port", type=int, help="control plane, REST (default 8000)")
    p.add_argument(
        "--control-port", dest="control_port", type=int, help="the ingest process' control channel, loopback only"
    )
    p.add_argument("--bind", help="address to bind (default 127.0.0.1; others need LIVEDENOISE_API_TOKEN)")
    p.add_argument("--home", help="state directory (default LIVEDENOISE_HOME or the per-user data dir)")
    p.add_argument("--provider", choices=PROVIDERS, help=PROVIDER_HELP)
    p.add_argument("--precision", choices=PRECISIONS, help=PRECISION_HELP)
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("stream", help="stream a movie to a server and collect the denoised frames")
    p.add_argument("movie", help=f"movie to stream frame by frame ({MOVIE_HELP})")
    p.add_argument("--to", default="tcp://127.0.0.1:5555", help="the server's frames port (default %(default)s)")
    p.add_argument(
        "--out",
        help="write the denoised movie here (.ome.zarr: appended frame by frame as replies arrive; "
        ".tif/.npy: written at the end)",
    )
    p.add_argument("--fps", type=float, help="pace like a camera (default: as fast as the server takes)")
    p.add_argument("--stream", default="cam0", help="stream (camera) name on the server (default %(default)s)")
    p.add_argument(
        "--mode",
        choices=[m.value for m in StreamMode],
        help="lossless: every frame denoised, the client waits when the server is behind; live: the server skips "
        "frames to keep latency bounded and says which (default: the server's)",
    )
    p.add_argument("--estimate", help=ESTIMATE_HELP)
    p.add_argument("--server-key", dest="server_key", help="the server's public CURVE key file (.key), if it has one")
    p.add_argument("--client-key", dest="client_key", help="your CURVE key pair (.key_secret), allowed by the server")
    p.set_defaults(func=cmd_stream)

    p = sub.add_parser("keys", help="create a CURVE key pair for the frames port (server or client)")
    keys_sub = p.add_subparsers(dest="keys_command", required=True)
    k = keys_sub.add_parser("create", help="write NAME.key (public) and NAME.key_secret (0600)")
    k.add_argument("name", help="file name of the pair, e.g. the rig's name")
    k.add_argument("--dir", default=".", help="folder to write into (default: here)")
    k.set_defaults(func=cmd_keys)

    p = sub.add_parser("demo", help="simulate, train, serve and stream end to end on this machine")
    p.add_argument("--out", default="livedenoise-demo", help="output folder")
    p.add_argument("--frames", type=int, default=None, help="frames of the simulated movie (default 600)")
    p.add_argument("--size", type=_parse_size, default=None, help="frame size, N or HxW (default 128)")
    p.add_argument("--photons", type=float, default=None, help="mean photons per pixel (default 2)")
    p.add_argument("--seed", type=int, default=0, help="random seed of the movie and the training")
    p.add_argument("--fps", type=float, default=None, help="camera frame rate for the stream")
    p.add_argument("--epochs", type=int, help="training epochs (default: the demo's fixed schedule)")
    p.add_argument("--patches-per-epoch", dest="patches_per_epoch", type=int, help="patches between validations")
    p.add_argument("--patch-t", dest="patch_t", type=int, help="frames per training stack")
    p.add_argument("--patch", "--patch-xy", dest="patch_xy", type=int, help="training crop in pixels")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser(
        "export-bmz",
        help="package an ONNX model for the BioImage Model Zoo (bioimage.io, spec 0.5)",
        description="Write a BioImage Model Zoo package (model spec 0.5) of a livedenoise ONNX model: rdf.yaml, the "
        "ONNX weights, a test window from --movie with the model's output for it, a cover and documentation. The "
        "package is validated with bioimageio.spec, offline, before it replaces OUT.",
    )
    p.add_argument("model", help="ONNX model written by `livedenoise train`")
    p.add_argument("out", help="package to write (.zip): rdf.yaml, weights, test tensors, cover, documentation")
    p.add_argument(
        "--movie",
        required=True,
        help=f"movie to cut the test window from, best the training movie (recognised by its digest) ({MOVIE_HELP})",
    )
    p.add_argument(
        "--name", help="model name on the zoo (default: '<method> fluorescence movie denoiser (livedenoise)')"
    )
    p.add_argument("--description", help="one-line description (default: the method, its paper and its window)")
    p.add_argument(
        "--author", dest="authors", action="append", help="an author's full name (repeatable; default: your user name)"
    )
    p.add_argument("--license", default="CC-BY-4.0", help="SPDX licence of the weights (default %(default)s)")
    p.add_argument("--tag", dest="tags", action="append", help="a tag added to the package's own (repeatable)")
    p.set_defaults(func=cmd_export_bmz)

    p = sub.add_parser(
        "import-bmz",
        help="check a BioImage Model Zoo package livedenoise exported; write its model",
        description="Check a BioImage Model Zoo package written by `livedenoise export-bmz` (its config.livedenoise "
        "section, every file's sha256, the ONNX metadata, the test tensors) and write its ONNX model to OUT; "
        "optionally upload it to a server.",
    )
    p.add_argument("package", help="the package: a .zip written by `livedenoise export-bmz`, or its unpacked folder")
    p.add_argument("out", help="ONNX model file to write")
    p.add_argument("--url", help="also upload the model to this server's control plane, e.g. http://127.0.0.1:8000")
    p.add_argument("--token", help="API token for --url (default LIVEDENOISE_API_TOKEN)")
    p.add_argument("--name", help="name of the uploaded model on the server (default: the file name)")
    p.add_argument("--load", action="store_true", help="with --url: load the uploaded model (hot swap)")
    p.set_defaults(func=cmd_import_bmz)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging("DEBUG" if args.verbose else None)
    try:
        return int(args.func(args))
    except MissingExtra:
        raise
    except (ValueError, FileNotFoundError, FileExistsError, ImportError) as exc:
        # Bad user input (a corrupt movie, a wrong option value, a format whose extra is missing): one clear
        # line, no traceback.
        print(f"livedenoise {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
