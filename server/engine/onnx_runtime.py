"""ONNX Runtime backend: CPU, CUDA or TensorRT execution provider, chosen by the ``provider`` setting."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from numpy.typing import NDArray

from livedenoise.clients.model_spec import ModelSpec, SpecError
from livedenoise.server.engine.base import INFERENCE_FAILED, MODEL_MISMATCH, PreparedEngine
from livedenoise.server.errors import EngineError, InvalidModel
from livedenoise.server.settings import Provider

__all__ = ["OnnxRuntimeRunner", "open_engine", "execution_providers", "read_spec"]

logger = logging.getLogger(__name__)

_state = ort.capi.onnxruntime_pybind11_state
# ORT's Python exceptions derive from Exception directly; these are the ones a load or run may raise.
_ORT_ERRORS = (_state.Fail, _state.RuntimeException, _state.NoSuchFile, _state.NotImplemented, _state.EPFail)

_EP_NAMES = {
    Provider.CPU: "CPUExecutionProvider",
    Provider.CUDA: "CUDAExecutionProvider",
    Provider.TENSORRT: "TensorrtExecutionProvider",
}


def execution_providers(provider: Provider, cache_dir: Path | None) -> list[str | tuple[str, dict[str, Any]]]:
    """The ORT provider list for a setting; raises :class:`EngineError` if this build lacks it."""
    wanted = _EP_NAMES[provider]
    available = ort.get_available_providers()
    if wanted not in available:
        raise EngineError(
            f"provider {provider.value!r} needs {wanted}, which this onnxruntime build does not have "
            f"(available: {available}); install onnxruntime-gpu (the `gpu` extra) or set LIVEDENOISE_PROVIDER=cpu"
        )
    if provider is Provider.CPU:
        return [wanted]
    if provider is Provider.CUDA:
        return [wanted, "CPUExecutionProvider"]
    options: dict[str, Any] = {"trt_fp16_enable": True}
    if cache_dir is not None:
        # ORT names cached engines by graph, GPU and TensorRT version; one folder per precision keeps
        # fp16 and fp32 builds apart.
        path = cache_dir / "fp16"
        path.mkdir(parents=True, exist_ok=True)
        options |= {"trt_engine_cache_enable": True, "trt_engine_cache_path": str(path)}
    return [(wanted, options), "CUDAExecutionProvider", "CPUExecutionProvider"]


class OnnxRuntimeRunner:
    """Runs one ORT session on prepared arrays; ORT errors become :class:`EngineError` with a code."""

    def __init__(self, session: ort.InferenceSession, input_name: str, output_name: str, provider: str) -> None:
        self.session = session
        self.input_name = input_name
        self.output_name = output_name
        self.provider = provider

    def run(self, x: NDArray[np.float32]) -> NDArray[np.float32]:
        try:
            (y,) = self.session.run([self.output_name], {self.input_name: x})
        except _state.InvalidArgument as exc:
            raise EngineError(f"input {list(x.shape)} does not fit the model: {exc}", code=MODEL_MISMATCH) from None
        except _ORT_ERRORS as exc:
            raise EngineError(f"onnxruntime failed on input {list(x.shape)}: {exc}", code=INFERENCE_FAILED) from None
        return np.asarray(y, dtype=np.float32)

    def close(self) -> None:
        # ORT frees the session with the last reference.
        del self.session


def read_spec(session: ort.InferenceSession, path: Path | str) -> ModelSpec:
    """The spec embedded in a loaded model, checked against its graph (the BTHW contract).

    Raises ``InvalidModel`` naming the file and the problem; the registry validates uploads with it too.
    """
    metadata = dict(session.get_modelmeta().custom_metadata_map)
    try:
        spec = ModelSpec.from_metadata(metadata)
    except SpecError as exc:
        raise InvalidModel(f"{path}: {exc}") from None
    inputs = {i.name: i for i in session.get_inputs()}
    outputs = {o.name: o for o in session.get_outputs()}
    if spec.input_name not in inputs:
        raise InvalidModel(f"{path}: spec input {spec.input_name!r} is not a graph input (graph has {sorted(inputs)})")
    if spec.output_name not in outputs:
        raise InvalidModel(
            f"{path}: spec output {spec.output_name!r} is not a graph output (graph has {sorted(outputs)})"
        )
    shape = inputs[spec.input_name].shape
    if len(shape) != 4:
        raise InvalidModel(f"{path}: input {spec.input_name!r} has rank {len(shape)}; the BTHW contract needs 4")
    if isinstance(shape[1], int) and shape[1] != spec.window.input_planes:
        raise InvalidModel(
            f"{path}: input {spec.input_name!r} has {shape[1]} planes but the spec's window needs {spec.window.input_planes}"
        )
    out_shape = outputs[spec.output_name].shape
    if len(out_shape) == 4 and isinstance(out_shape[1], int) and out_shape[1] != spec.output_planes:
        raise InvalidModel(
            f"{path}: output {spec.output_name!r} has {out_shape[1]} planes but the spec needs {spec.output_planes} "
            f"({spec.window.out_frames} frames x {max(1, len(spec.estimates))} estimates)"
        )
    return spec


def open_engine(
    path: Path,
    provider: Provider | str = Provider.CPU,
    model_id: str | None = None,
    threads: int = 0,
    cache_dir: Path | None = None,
) -> PreparedEngine:
    """Open an exported livedenoise ONNX file with ONNX Runtime.

    Parameters
    ----------
    path
        The ``.onnx`` file; its metadata must carry the model spec.
    provider
        ``cpu``, ``cuda`` or ``tensorrt`` (fp16, engines cached under ``cache_dir``).
    model_id
        Id carried by replies (default: the file stem).
    threads
        ORT intra-op threads (0 = ORT default).
    cache_dir
        TensorRT engine cache (default: ``<model folder>/trt_cache``).

    Raises
    ------
    InvalidModel
        The file is missing, not ONNX, or has no valid embedded spec.
    EngineError
        The execution provider is not available or failed to initialise.
    """
    path = Path(path)
    provider = Provider(provider)
    if not path.is_file():
        raise InvalidModel(f"model file {path} does not exist")
    providers = execution_providers(provider, cache_dir or path.parent / "trt_cache")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3
    try:
        session = ort.InferenceSession(str(path), sess_options=options, providers=providers)
    except (_state.InvalidProtobuf, _state.InvalidGraph) as exc:
        raise InvalidModel(f"{path} is not a valid ONNX model: {exc}") from None
    except _ORT_ERRORS as exc:
        raise InvalidModel(f"onnxruntime cannot load {path}: {exc}") from None
    active = session.get_providers()[0]
    if active != _EP_NAMES[provider]:
        # ORT silently falls back to the next provider when one fails to initialise.
        raise EngineError(
            f"provider {provider.value!r} failed to initialise for {path}; onnxruntime fell back to {active}"
        )
    spec = read_spec(session, path)
    logger.info("loaded %s (%s, window %s) on %s", path.name, spec.method, spec.window, active)
    runner = OnnxRuntimeRunner(session, spec.input_name, spec.output_name, provider.value)
    return PreparedEngine(runner, spec, model_id or path.stem)
