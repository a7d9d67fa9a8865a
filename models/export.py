"""Export a trained model to ONNX with its :class:`ModelSpec` embedded, and verify it in ONNX Runtime.

The served graph follows the ``BTHW`` contract of :mod:`livedenoise.clients.model_spec`: input ``frames``
float32 ``[B, L, H, W]`` (normalised), output ``denoised`` ``[B, out_frames, H, W]``; batch, H and W are
dynamic (H and W multiples of the window's ``spatial_multiple``).

The TorchScript-based exporter (``dynamo=False``) is the default: on this model family it is about ten
times faster than the dynamo exporter and equally exact; ``exporter="dynamo"`` selects the latter (with
``torch.export.Dim`` axes, H and W declared as ``multiple * Dim``), for when the legacy path goes away.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import logging
import time
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import onnx
import torch
from torch import nn

from livedenoise.clients import __version__
from livedenoise.clients.model_spec import GRAPH_INPUT, GRAPH_OUTPUT, METADATA_KEY, ModelSpec
from livedenoise.models.trainer import TrainResult

__all__ = ["ExportError", "build_spec", "export_onnx", "verify_onnx"]

logger = logging.getLogger(__name__)

INPUT_NAME = GRAPH_INPUT
OUTPUT_NAME = GRAPH_OUTPUT
VERIFY_RTOL = 1e-4


class ExportError(RuntimeError):
    """The exported graph does not reproduce the torch model (or could not be exported)."""


def build_spec(result: TrainResult) -> ModelSpec:
    """The :class:`ModelSpec` describing ``result`` (method, window, normalisation, provenance)."""
    recipe = result.recipe
    network, network_config = recipe.network()
    return ModelSpec(
        method=recipe.name,
        window=result.window,
        normalization=result.normalization,
        frame_shape=recipe.served_frame_shape(result.network),
        estimates=recipe.estimates(),
        version=__version__,
        input_name=INPUT_NAME,
        output_name=OUTPUT_NAME,
        train_data_digest=result.data_digest,
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        extra={
            "network": network,
            "network_config": network_config,
            "train_config": result.config.to_json_dict(),
            "family": recipe.info.family,
            "citation": recipe.info.citation,
            "provisional": recipe.info.provisional,
            "train_steps": result.steps,
            "train_seconds": round(result.elapsed_s, 1),
            "final_loss": result.history[-1] if result.history else None,
            # The held-out score beside the best classical filter's (None: the movie was too short to hold
            # frames out), so whoever serves the model can see whether it beats the filter.
            "validation": result.validation.to_dict() if result.validation is not None else None,
        },
    )


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[io.StringIO]:
    """Silence the exporters' warnings, prints and chatty loggers (kept at debug level in our log)."""
    buf = io.StringIO()
    noisy = [logging.getLogger(n) for n in ("torch.onnx", "torch.export", "torch._dynamo", "onnxscript", "onnx_ir")]
    levels = [lg.level for lg in noisy]
    try:
        for lg in noisy:
            lg.setLevel(logging.ERROR)
        with warnings.catch_warnings(), contextlib.redirect_stdout(buf):
            warnings.simplefilter("ignore")
            yield buf
    finally:
        for lg, level in zip(noisy, levels):
            lg.setLevel(level)
        if buf.getvalue().strip():
            logger.debug("exporter output: %s", buf.getvalue().strip())


def _example_input(planes: int, multiple: int, frame_shape: tuple[int, int] | None) -> torch.Tensor:
    side = multiple * max(1, -(-16 // multiple))
    h, w = frame_shape or (side, side)
    gen = torch.Generator().manual_seed(0)
    return torch.randn(1, planes, h, w, generator=gen)


def _export(module: nn.Module, example: torch.Tensor, path: Path, opset: int, multiple: int, exporter: str) -> None:
    with _quiet_exporter(), torch.no_grad():
        if exporter == "legacy":
            axes = {0: "batch", 2: "height", 3: "width"}
            torch.onnx.export(
                module,
                (example,),
                str(path),
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                opset_version=opset,
                dynamo=False,
                dynamic_axes={INPUT_NAME: axes, OUTPUT_NAME: axes},
            )
        elif exporter == "dynamo":
            from torch.export import Dim

            h, w = Dim("h", min=1, max=16384), Dim("w", min=1, max=16384)
            shapes = {INPUT_NAME: {0: Dim("batch", min=1, max=4096), 2: multiple * h, 3: multiple * w}}
            torch.onnx.export(
                module,
                (example,),
                str(path),
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                opset_version=opset,
                dynamo=True,
                external_data=False,
                dynamic_shapes=shapes,
                verbose=False,
            )
        else:
            raise ValueError(f"unknown exporter {exporter!r}; expected 'legacy' or 'dynamo'")


def verify_onnx(
    path: str | Path,
    module: nn.Module,
    planes: int,
    multiple: int,
    *,
    frame_shape: tuple[int, int] | None = None,
    batch: int = 2,
    seed: int = 1,
) -> float:
    """Run ``path`` in ONNX Runtime (CPU) against ``module`` on a random input; return the relative error.

    The input has ``batch`` windows of ``planes`` planes and a spatial size (``5m x 7m`` pixels, at least
    20x28; ``frame_shape`` for a graph that serves one size) unlike the export example, so the dynamic axes
    are exercised. Relative error = max |ort - torch| / max |torch|.

    Raises
    ------
    ExportError
        The relative error is ``>= 1e-4`` or the output shape is wrong.
    """
    import onnxruntime as ort

    h, w = frame_shape or (multiple * max(5, -(-20 // multiple)), multiple * max(7, -(-28 // multiple)))
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, planes, h, w, generator=gen)
    with torch.no_grad():
        ref = module(x).numpy()
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    out = sess.run(None, {INPUT_NAME: x.numpy()})[0]
    if out.shape != ref.shape:
        raise ExportError(f"ONNX output shape {out.shape} differs from torch {ref.shape} for input {tuple(x.shape)}")
    rel = float(np.abs(out - ref).max() / max(float(np.abs(ref).max()), 1e-12))
    if not rel < VERIFY_RTOL:
        raise ExportError(f"ONNX Runtime output differs from torch: relative error {rel:.3g} >= {VERIFY_RTOL}")
    return rel


def export_onnx(
    result: TrainResult,
    path: str | Path,
    *,
    opset: int = 17,
    verify: bool = True,
    exporter: Literal["legacy", "dynamo"] = "legacy",
) -> ModelSpec:
    """Write ``result`` as an ONNX model at ``path`` with its :class:`ModelSpec` in the metadata.

    Parameters
    ----------
    result : a trained (or checkpoint-loaded) model.
    path : the ``.onnx`` file to write (parent directories are created).
    opset : ONNX opset.
    verify : run the file in ONNX Runtime and compare with torch (see :func:`verify_onnx`).
    exporter : ``legacy`` (TorchScript-based, fast) or ``dynamo``.

    Returns
    -------
    ModelSpec
        The spec embedded under :data:`METADATA_KEY`.

    Raises
    ------
    ExportError
        Verification failed.
    """
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    window = result.window
    module = result.recipe.export_module(result.network).eval().cpu()
    spec = build_spec(result)
    # Whether the graph computes only the served frames (WindowOutput's crop), for whoever reads its speed.
    spec = dataclasses.replace(spec, extra={**spec.extra, "graph_cropped": bool(getattr(module, "cropped", False))})
    t0 = time.monotonic()
    logger.info("exporting %s to %s (opset %d, %s exporter, window %s)", spec.method, out, opset, exporter, window)
    example = _example_input(window.input_planes, window.spatial_multiple, spec.frame_shape)
    _export(module, example, out, opset, window.spatial_multiple, exporter)
    model = onnx.load(str(out))
    entry = onnx.StringStringEntryProto(key=METADATA_KEY, value=spec.to_json())
    props: list[Any] = [p for p in model.metadata_props if p.key != METADATA_KEY]
    del model.metadata_props[:]
    model.metadata_props.extend([*props, entry])
    model.producer_name = "livedenoise"
    model.producer_version = spec.version
    onnx.checker.check_model(model)
    onnx.save(model, str(out))
    logger.info("exported in %.1f s (%d bytes)", time.monotonic() - t0, out.stat().st_size)
    if verify:
        rel = verify_onnx(out, module, window.input_planes, window.spatial_multiple, frame_shape=spec.frame_shape)
        logger.info("verified in ONNX Runtime: relative error %.2e (< %.0e)", rel, VERIFY_RTOL)
    return spec
