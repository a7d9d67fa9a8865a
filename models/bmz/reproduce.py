"""Run a package's test input through its own description and compare with its test output.

Preprocessing → ONNX weights (ONNX Runtime, CPU) → postprocessing, as a zoo tool runs the package, with the
steps the description holds (livedenoise writes ``scale_linear`` and bioimageio.spec adds ``ensure_dtype``).
This is the check bioimageio.core's ``test_model`` makes, done without it: a description whose steps did
not match the model's normalisation would fail here.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from livedenoise.models.bmz._bioimageio import BmzError

__all__ = ["Reproduction", "apply_steps", "reproduce_test_tensors", "RTOL", "ATOL_FRACTION"]

#: Allowed error: ``RTOL * |expected| + ATOL_FRACTION * max|expected|`` per element (float32 rounding of the
#: two ways of writing the same affine map is ~1e-7 of the values).
RTOL = 1e-4
ATOL_FRACTION = 1e-5


@dataclass(frozen=True)
class Reproduction:
    """How closely the description reproduces its test output."""

    max_abs_error: float
    max_abs_value: float
    passed: bool

    def summary(self) -> str:
        verdict = "reproduces" if self.passed else "does NOT reproduce"
        return (
            f"the test input run through the description {verdict} the test output in ONNX Runtime "
            f"(max error {self.max_abs_error:.3g} on values up to {self.max_abs_value:.4g})"
        )


def apply_steps(x: NDArray[Any], steps: Sequence[Any], where: str) -> NDArray[Any]:
    """Apply the pre- or postprocessing ``steps`` of a 0.5 description to ``x``."""
    for step in steps:
        kind = step.id
        kwargs = step.kwargs
        if kind == "ensure_dtype":
            x = x.astype(str(kwargs.dtype))
        elif kind == "scale_linear" and not hasattr(kwargs, "axis"):
            x = x * np.float32(kwargs.gain) + np.float32(kwargs.offset)
        else:
            raise BmzError(
                f"the {where} step {kind!r} is not one livedenoise writes (scale_linear with one gain and offset)"
            )
    return x


def _array(file_descr: Any, what: str) -> NDArray[Any]:
    if file_descr is None:
        raise BmzError(f"the package has no {what}")
    return np.load(io.BytesIO(file_descr.get_reader().read()), allow_pickle=False)


def reproduce_test_tensors(descr: Any, weights: bytes) -> Reproduction:
    """Run the test input of ``descr`` (a validated 0.5 ``ModelDescr``) through its steps and ``weights``.

    Raises
    ------
    BmzError
        The description has not exactly one input and one output, a test tensor is missing, a step is not
        one livedenoise writes, or the weights do not run on the test input.
    """
    import onnxruntime as ort

    if len(descr.inputs) != 1 or len(descr.outputs) != 1:
        raise BmzError(
            f"a livedenoise package has one input and one output tensor, this one {len(descr.inputs)} and "
            f"{len(descr.outputs)}"
        )
    source, target = descr.inputs[0], descr.outputs[0]
    x = apply_steps(_array(source.test_tensor, "input test tensor"), source.preprocessing, "preprocessing")
    expected = _array(target.test_tensor, "output test tensor").astype(np.float32)
    session = ort.InferenceSession(weights, providers=["CPUExecutionProvider"])
    try:
        raw = session.run(None, {session.get_inputs()[0].name: np.ascontiguousarray(x, dtype=np.float32)})[0]
    except Exception as exc:  # ONNX Runtime raises its own Fail/InvalidArgument types
        raise BmzError(f"the weights do not run on the test input {tuple(x.shape)}: {exc}") from None
    y = apply_steps(np.asarray(raw), target.postprocessing, "postprocessing").astype(np.float32)
    if y.shape != expected.shape:
        raise BmzError(f"the weights give an output of shape {y.shape}; the test output is {expected.shape}")
    scale = float(np.abs(expected).max()) if expected.size else 0.0
    error = np.abs(y - expected)
    passed = bool(np.all(error <= RTOL * np.abs(expected) + ATOL_FRACTION * max(scale, 1.0)))
    return Reproduction(max_abs_error=float(error.max()) if error.size else 0.0, max_abs_value=scale, passed=passed)
