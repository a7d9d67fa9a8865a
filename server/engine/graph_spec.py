"""The embedded :class:`ModelSpec` of an exported model, checked against its graph's inputs and outputs.

Every backend reads the same spec and applies the same checks (the BTHW contract): ONNX Runtime from its
session, the others from the ONNX file itself (:func:`read_file_spec`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from livedenoise.clients.model_spec import METADATA_KEY, ModelSpec, SpecError
from livedenoise.server.errors import InvalidModel

__all__ = ["Shape", "check_spec", "read_file_spec"]

#: A graph tensor's shape: an int per static axis, anything else (a name, None) for a dynamic one.
Shape = Sequence[object]


def check_spec(
    metadata: Mapping[str, str], inputs: Mapping[str, Shape], outputs: Mapping[str, Shape], path: Path | str
) -> ModelSpec:
    """Parse the spec in ``metadata`` and check it against the graph's ``inputs`` and ``outputs`` (name -> shape).

    Raises ``InvalidModel`` naming the file and the problem.
    """
    try:
        spec = ModelSpec.from_metadata(dict(metadata))
    except SpecError as exc:
        raise InvalidModel(f"{path}: {exc}") from None
    if spec.input_name not in inputs:
        raise InvalidModel(f"{path}: spec input {spec.input_name!r} is not a graph input (graph has {sorted(inputs)})")
    if spec.output_name not in outputs:
        raise InvalidModel(
            f"{path}: spec output {spec.output_name!r} is not a graph output (graph has {sorted(outputs)})"
        )
    shape = inputs[spec.input_name]
    if len(shape) != 4:
        raise InvalidModel(f"{path}: input {spec.input_name!r} has rank {len(shape)}; the BTHW contract needs 4")
    if isinstance(shape[1], int) and shape[1] != spec.window.input_planes:
        raise InvalidModel(
            f"{path}: input {spec.input_name!r} has {shape[1]} planes but the spec's window needs {spec.window.input_planes}"
        )
    out_shape = outputs[spec.output_name]
    if len(out_shape) == 4 and isinstance(out_shape[1], int) and out_shape[1] != spec.output_planes:
        raise InvalidModel(
            f"{path}: output {spec.output_name!r} has {out_shape[1]} planes but the spec needs {spec.output_planes} "
            f"({spec.window.out_frames} frames x {max(1, len(spec.estimates))} estimates)"
        )
    return spec


def read_file_spec(path: Path) -> ModelSpec:
    """The checked spec of the ONNX file at ``path``, read as plain protobuf (no runtime opens it)."""
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # onnx raises DecodeError, OSError, ValueError... for a damaged file
        raise InvalidModel(f"{path} is not a valid ONNX model: {exc}") from None
    if METADATA_KEY not in {p.key for p in model.metadata_props}:
        raise InvalidModel(f"{path}: no {METADATA_KEY!r} entry in its metadata (export the model with livedenoise)")

    def shapes(values: Sequence[onnx.ValueInfoProto]) -> dict[str, list[object]]:
        return {
            v.name: [d.dim_value if d.HasField("dim_value") else d.dim_param for d in v.type.tensor_type.shape.dim]
            for v in values
        }

    metadata = {p.key: p.value for p in model.metadata_props}
    return check_spec(metadata, shapes(model.graph.input), shapes(model.graph.output), path)
