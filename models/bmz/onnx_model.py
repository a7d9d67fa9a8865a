"""Read what a package needs from a livedenoise ONNX file: its embedded spec (verbatim), opset and size."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from livedenoise.clients.model_spec import METADATA_KEY, ModelSpec, SpecError
from livedenoise.models.bmz._bioimageio import BmzError

__all__ = ["OnnxModel", "read_onnx_model"]


@dataclass(frozen=True)
class OnnxModel:
    """A livedenoise ONNX model's bytes and what the package says about them."""

    data: bytes
    spec: ModelSpec
    spec_json: str  # the metadata value exactly as stored
    opset: int
    parameter_count: int  # elements of the graph's initializers


def read_onnx_model(data: bytes, where: str) -> OnnxModel:
    """Parse ``data`` (an ONNX file's bytes; ``where`` names it in errors).

    Raises
    ------
    BmzError
        Not an ONNX model, tensors stored outside the file, or no valid livedenoise spec in its metadata.
    """
    import onnx
    from google.protobuf.message import DecodeError

    try:
        proto = onnx.load_model_from_string(data)
    except (DecodeError, ValueError, RuntimeError) as exc:
        raise BmzError(f"{where} is not an ONNX model ({exc})") from None
    if not proto.graph.node:
        raise BmzError(f"{where} is not an ONNX model (it holds no graph)")
    if any(t.data_location == onnx.TensorProto.EXTERNAL for t in proto.graph.initializer):
        raise BmzError(f"{where} keeps tensors in external files; a package needs one self-contained ONNX file")
    props = {p.key: p.value for p in proto.metadata_props}
    if METADATA_KEY not in props:
        raise BmzError(
            f"{where} has no livedenoise metadata ({METADATA_KEY!r}): it was not exported by livedenoise "
            "(`livedenoise train` writes it)"
        )
    try:
        spec = ModelSpec.from_json(props[METADATA_KEY])
    except SpecError as exc:
        raise BmzError(f"{where} has invalid livedenoise metadata: {exc}") from None
    opsets = [o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")]
    if not opsets:
        raise BmzError(f"{where} declares no default ONNX opset")
    count = sum(int(np.prod(t.dims)) for t in proto.graph.initializer)
    return OnnxModel(data=data, spec=spec, spec_json=props[METADATA_KEY], opset=int(opsets[0]), parameter_count=count)
