"""Check an uploaded model in a child process with resource limits, before anything opens it in the server.

An ONNX file is untrusted input: a crafted one can make ONNX Runtime read other files (external-data tensors
name paths), exhaust memory or crash. So the file is first read as plain protobuf and refused if any tensor keeps
its data outside the file; then a child process with capped memory and CPU time opens it with ONNX Runtime and
parses the embedded spec. Whatever goes wrong there costs the child, never the control plane.

``python -m livedenoise.server.model_check FILE`` prints ``{"ok": true, "spec": {...}}`` or
``{"ok": false, "message": "..."}``.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from livedenoise.clients.model_spec import ModelSpec
from livedenoise.server.errors import InvalidModel

__all__ = ["check_model_file", "refuse_external_data", "CHECK_MEMORY_BYTES", "CHECK_CPU_SECONDS"]

#: Address space of the checking process: ONNX Runtime's own needs plus room for the model's weights.
CHECK_MEMORY_BYTES = 4 * 1024**3
CHECK_CPU_SECONDS = 60
CHECK_WALL_SECONDS = 120.0


def refuse_external_data(path: Path) -> None:
    """Raise :class:`InvalidModel` unless every tensor of the model (initializers, constants, subgraphs) keeps
    its data inside the file."""
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf raises DecodeError and friends
        raise InvalidModel(f"not a valid ONNX model: {_first_line(exc)}") from None
    for where, tensor in _tensors(model.graph, "graph"):
        if tensor.data_location == onnx.TensorProto.EXTERNAL or len(tensor.external_data):
            raise InvalidModel(
                f"tensor {tensor.name!r} ({where}) keeps its data in an external file; livedenoise accepts "
                "self-contained models only (export without external data)"
            )


def _tensors(graph: Any, where: str) -> Iterator[tuple[str, Any]]:
    for tensor in graph.initializer:
        yield f"{where} initializer", tensor
    for sparse in graph.sparse_initializer:
        yield f"{where} sparse initializer", sparse.values
        yield f"{where} sparse initializer", sparse.indices
    for node in graph.node:
        for attr in node.attribute:
            if attr.HasField("t"):
                yield f"{where} node {node.name or node.op_type}", attr.t
            for tensor in attr.tensors:
                yield f"{where} node {node.name or node.op_type}", tensor
            if attr.HasField("sparse_tensor"):
                yield f"{where} node {node.name or node.op_type}", attr.sparse_tensor.values
            if attr.HasField("g"):
                yield from _tensors(attr.g, f"subgraph of {node.name or node.op_type}")
            for sub in attr.graphs:
                yield from _tensors(sub, f"subgraph of {node.name or node.op_type}")


def check_model_file(path: Path) -> ModelSpec:
    """Validate ``path`` (structure here, ONNX Runtime in a limited child process); returns its spec.

    Raises
    ------
    InvalidModel
        External data, not ONNX, not loadable within the limits, or no valid livedenoise spec.
    """
    refuse_external_data(path)
    try:
        done = subprocess.run(
            [sys.executable, "-m", __name__, str(path)],
            capture_output=True, timeout=CHECK_WALL_SECONDS, preexec_fn=_limit, env=_child_env(),
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        raise InvalidModel(f"checking the model took longer than {CHECK_WALL_SECONDS:.0f} s") from None
    try:
        answer = json.loads(done.stdout.decode().strip().splitlines()[-1])
    except (ValueError, IndexError):
        why = "ran out of memory" if done.returncode in (-9, 137) else f"exited with code {done.returncode}"
        raise InvalidModel(f"the model could not be checked: the checking process {why} (limits: "
                           f"{CHECK_MEMORY_BYTES // 1024**3} GiB, {CHECK_CPU_SECONDS} s CPU)") from None  # fmt: skip
    if not answer.get("ok"):
        raise InvalidModel(str(answer.get("message", "invalid model")))
    return ModelSpec.from_json(json.dumps(answer["spec"]))


def _limit() -> None:  # runs in the child, before exec
    resource.setrlimit(resource.RLIMIT_AS, (CHECK_MEMORY_BYTES, CHECK_MEMORY_BYTES))
    resource.setrlimit(resource.RLIMIT_CPU, (CHECK_CPU_SECONDS, CHECK_CPU_SECONDS))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _child_env() -> dict[str, str]:
    # No credentials in the child; one thread is plenty to open a session.
    env = {k: v for k, v in os.environ.items() if k != "LIVEDENOISE_API_TOKEN"}
    env.update(OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    return env


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__


def _check_in_this_process(path: Path) -> dict[str, Any]:
    import onnxruntime as ort

    from livedenoise.server.engine.onnx_runtime import read_spec

    options = ort.SessionOptions()
    options.log_severity_level = 3  # a bad upload is reported by our error, not by ORT's stderr noise
    options.intra_op_num_threads = 1
    try:
        session = ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # ORT raises several unrelated types (Fail, InvalidGraph, InvalidProtobuf, ...)
        return {"ok": False, "message": f"not a loadable ONNX model: {_first_line(exc)}"}
    try:
        spec = read_spec(session, path.name)
    except InvalidModel as exc:
        return {"ok": False, "message": exc.message}
    return {"ok": True, "spec": json.loads(spec.to_json())}


if __name__ == "__main__":
    print(json.dumps(_check_in_this_process(Path(sys.argv[1]))))
