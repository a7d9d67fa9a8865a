"""OpenVINO backend for Intel CPUs (the ``openvino`` provider, optional extra ``livedenoise[openvino]``).

OpenVINO reads the exported ONNX file directly and runs it with oneDNN kernels: on the 2-core Xeon this project
is measured on it runs the DeepCAD-RT-style 3-D U-Net several times faster than ONNX Runtime, 6x in bf16 where the
CPU has AMX (``benchmarks/NOTES.md``, the README's streaming table). Precision ``auto`` lets OpenVINO pick
(bf16 on CPUs with native bf16, fp32 elsewhere); ``fp32`` keeps every operation in fp32 (the same output as ONNX
Runtime to ~1e-6).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import openvino as ov
from numpy.typing import NDArray

from livedenoise.server.engine.base import INFERENCE_FAILED, MODEL_MISMATCH, PreparedEngine
from livedenoise.server.engine.graph_spec import read_file_spec
from livedenoise.server.errors import EngineError, InvalidModel
from livedenoise.server.settings import Precision, Provider

__all__ = ["OpenVinoRunner", "open_engine", "compile_options"]

logger = logging.getLogger(__name__)

# OpenVINO's type names -> the names the other backends and the status report use.
_PRECISION_NAMES = {"f32": "fp32", "bf16": "bf16", "f16": "fp16"}


def compile_options(threads: int, precision: Precision) -> dict[str, Any]:
    """OpenVINO CPU properties: one inference at a time at the lowest latency (the ingest worker runs one batch
    after another), ``threads`` threads (0: OpenVINO's default), the precision hint."""
    options: dict[str, Any] = {"PERFORMANCE_HINT": "LATENCY"}
    if threads > 0:
        options["INFERENCE_NUM_THREADS"] = threads
    if precision is Precision.FP32:
        options["INFERENCE_PRECISION_HINT"] = "f32"
    return options


class OpenVinoRunner:
    """Runs one compiled OpenVINO model on prepared arrays; its errors become :class:`EngineError` with a code."""

    def __init__(self, compiled: ov.CompiledModel, provider: str) -> None:
        self.compiled = compiled
        self.request = compiled.create_infer_request()
        self.provider = provider
        hint = compiled.get_property("INFERENCE_PRECISION_HINT")  # what OpenVINO chose, an ov.Type
        name = hint.to_string() if hasattr(hint, "to_string") else str(hint)
        self.precision = _PRECISION_NAMES.get(name, name)

    def run(self, x: NDArray[np.float32]) -> NDArray[np.float32]:
        try:
            # share_inputs: the prepared array is read in place; outputs are copied out of the request's buffer,
            # which the next call overwrites.
            result = self.request.infer({0: x}, share_inputs=True)
        except RuntimeError as exc:
            text = str(exc)
            code = MODEL_MISMATCH if "shape" in text.lower() or "dimension" in text.lower() else INFERENCE_FAILED
            raise EngineError(f"openvino failed on input {list(x.shape)}: {text.splitlines()[0]}", code=code) from None
        return np.asarray(result[0], dtype=np.float32)

    def close(self) -> None:
        del self.request, self.compiled


def open_engine(
    path: Path,
    provider: Provider | str = Provider.OPENVINO,
    model_id: str | None = None,
    threads: int = 0,
    cache_dir: Path | None = None,
    precision: Precision | str = Precision.AUTO,
    max_batch: int = 8,
    max_side: int = 2048,
) -> PreparedEngine:
    """Open an exported livedenoise ONNX file with OpenVINO on the CPU (``cache_dir``, ``max_batch`` and
    ``max_side`` are not used: compiling takes well under a second for these graphs, for any shape).

    Raises
    ------
    InvalidModel
        The file is missing, not ONNX, or has no valid embedded spec.
    EngineError
        OpenVINO cannot compile it.
    """
    del cache_dir, max_batch, max_side
    path = Path(path)
    chosen = Precision(precision)
    if not path.is_file():
        raise InvalidModel(f"model file {path} does not exist")
    spec = read_file_spec(path)
    try:
        compiled = ov.Core().compile_model(str(path), "CPU", compile_options(threads, chosen))
    except RuntimeError as exc:
        raise InvalidModel(f"openvino cannot compile {path}: {str(exc).splitlines()[0]}") from None
    runner = OpenVinoRunner(compiled, Provider(provider).value)
    logger.info(
        "loaded %s (%s, window %s) on OpenVINO CPU, precision %s", path.name, spec.method, spec.window, runner.precision
    )
    return PreparedEngine(runner, spec, model_id or path.stem)
