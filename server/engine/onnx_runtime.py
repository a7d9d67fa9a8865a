"""ONNX Runtime backend: CPU, CUDA or TensorRT execution provider, chosen by the ``provider`` setting."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from numpy.typing import NDArray

from livedenoise.clients.model_spec import ModelSpec
from livedenoise.server.engine.base import INFERENCE_FAILED, MODEL_MISMATCH, PreparedEngine
from livedenoise.server.engine.graph_spec import check_spec, read_file_spec
from livedenoise.server.errors import EngineError, InvalidModel
from livedenoise.server.settings import Precision, Provider

__all__ = ["OnnxRuntimeRunner", "ShapeProfile", "open_engine", "execution_providers", "read_spec"]

logger = logging.getLogger(__name__)

_state = ort.capi.onnxruntime_pybind11_state
# ORT's Python exceptions derive from Exception directly; these are the ones a load or run may raise.
_ORT_ERRORS = (_state.Fail, _state.RuntimeException, _state.NoSuchFile, _state.NotImplemented, _state.EPFail)

_EP_NAMES = {
    Provider.CPU: "CPUExecutionProvider",
    Provider.CUDA: "CUDAExecutionProvider",
    Provider.TENSORRT: "TensorrtExecutionProvider",
}


@dataclass(frozen=True)
class ShapeProfile:
    """The input shapes a TensorRT engine is built for: batch 1..``max_batch``, square-or-not frames from one
    ``multiple`` up to ``max_side`` pixels a side (padded sizes), tuned for ``max_batch`` windows of ``opt_side``².

    With batch, height and width dynamic and no profile, TensorRT rebuilds its engine (seconds to minutes) for
    every new input shape, mid-stream; one explicit range is built once and cached.
    """

    input_name: str
    planes: int
    multiple: int
    max_batch: int = 8
    opt_side: int = 512
    max_side: int = 2048

    def _side(self, side: int) -> int:
        return -(-max(side, self.multiple) // self.multiple) * self.multiple

    def options(self) -> dict[str, str]:
        """The TensorRT provider's ``trt_profile_*_shapes`` options."""

        def shape(batch: int, side: int) -> str:
            return f"{self.input_name}:{batch}x{self.planes}x{side}x{side}"

        return {
            "trt_profile_min_shapes": shape(1, self._side(self.multiple)),
            "trt_profile_opt_shapes": shape(self.max_batch, self._side(min(self.opt_side, self.max_side))),
            "trt_profile_max_shapes": shape(self.max_batch, self._side(self.max_side)),
        }

    @property
    def key(self) -> str:
        """Names the cache folder, so engines built for other ranges are never picked up."""
        return f"b{self.max_batch}-p{self.planes}-m{self.multiple}-s{self._side(self.max_side)}"

    def check(self, shape: tuple[int, ...]) -> None:
        """Raise :class:`EngineError` (``model_mismatch``) for a prepared input outside the built range."""
        b, _, h, w = shape
        if b > self.max_batch or max(h, w) > self._side(self.max_side):
            raise EngineError(
                f"input {list(shape)} is outside the TensorRT profile (batch <= {self.max_batch}, sides <= "
                f"{self._side(self.max_side)}); raise LIVEDENOISE_MAX_BATCH or LIVEDENOISE_TRT_MAX_SIDE",
                code=MODEL_MISMATCH,
            )


def execution_providers(
    provider: Provider,
    cache_dir: Path | None,
    precision: Precision = Precision.AUTO,
    profile: ShapeProfile | None = None,
) -> list[str | tuple[str, dict[str, Any]]]:
    """The ORT provider list for a setting; raises :class:`EngineError` if this build lacks it (or for a provider
    that is not ONNX Runtime's). TensorRT: fp16 under ``auto``, the shape ``profile``'s range, engines and timing
    cached under ``cache_dir`` in one folder per precision and profile."""
    if provider not in _EP_NAMES:
        raise EngineError(f"provider {provider.value!r} is not an ONNX Runtime provider")
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
    fp16 = precision is Precision.AUTO
    options: dict[str, Any] = {"trt_fp16_enable": fp16}
    if profile is not None:
        options |= profile.options()
    if cache_dir is not None:
        # ORT names cached engines by graph, GPU and TensorRT version; one folder per precision and shape
        # profile keeps fp16/fp32 builds and different ranges apart.
        folder = ("fp16" if fp16 else "fp32") + (f"-{profile.key}" if profile is not None else "")
        path = cache_dir / folder
        path.mkdir(parents=True, exist_ok=True)
        options |= {
            "trt_engine_cache_enable": True,
            "trt_engine_cache_path": str(path),
            "trt_timing_cache_enable": True,
            "trt_timing_cache_path": str(cache_dir),
        }
    return [(wanted, options), "CUDAExecutionProvider", "CPUExecutionProvider"]


class OnnxRuntimeRunner:
    """Runs one ORT session on prepared arrays; ORT errors become :class:`EngineError` with a code."""

    def __init__(
        self,
        session: ort.InferenceSession,
        input_name: str,
        output_name: str,
        provider: str,
        precision: str = "fp32",
        profile: ShapeProfile | None = None,
    ) -> None:
        self.session = session
        self.input_name = input_name
        self.output_name = output_name
        self.provider = provider
        self.precision = precision
        self.profile = profile

    def run(self, x: NDArray[np.float32]) -> NDArray[np.float32]:
        if self.profile is not None:
            self.profile.check(x.shape)
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
    return check_spec(
        session.get_modelmeta().custom_metadata_map,
        {i.name: i.shape for i in session.get_inputs()},
        {o.name: o.shape for o in session.get_outputs()},
        path,
    )


def open_engine(
    path: Path,
    provider: Provider | str = Provider.CPU,
    model_id: str | None = None,
    threads: int = 0,
    cache_dir: Path | None = None,
    precision: Precision | str = Precision.AUTO,
    max_batch: int = 8,
    max_side: int = 2048,
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
    precision
        ``auto``: TensorRT builds fp16 engines (CPU and CUDA run fp32 either way); ``fp32``: exact everywhere.
    max_batch, max_side
        TensorRT only: the largest batch and padded frame side its engine is built for (one :class:`ShapeProfile`).

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
    profile = None
    if provider is Provider.TENSORRT:  # the profile needs the window's planes before the session exists
        file_spec = read_file_spec(path)
        profile = ShapeProfile(
            file_spec.input_name,
            file_spec.window.input_planes,
            file_spec.window.spatial_multiple,
            max_batch=max_batch,
            max_side=max_side,
        )
    providers = execution_providers(provider, cache_dir or path.parent / "trt_cache", Precision(precision), profile)
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
    fp16 = provider is Provider.TENSORRT and Precision(precision) is Precision.AUTO
    runner = OnnxRuntimeRunner(
        session, spec.input_name, spec.output_name, provider.value, "fp16" if fp16 else "fp32", profile
    )
    return PreparedEngine(runner, spec, model_id or path.stem)
