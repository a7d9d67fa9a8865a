"""Tiny, honest ONNX models for serving tests, built with ``onnx.helper`` (no torch).

``make_mix_model`` writes a graph that honours the BTHW contract: a 3x3 spatial convolution mixing
the ``window_length`` input frames into ``out_frames`` outputs with distinct, asymmetric weights (so a
window shifted by one frame or mirrored the wrong way gives a different result), plus, for
``levels > 0``, a pooled branch (``levels`` x AveragePool 2x2/2, then nearest upsampling) added back:
the graph only runs when H and W are multiples of ``2**levels``, like a real U-Net, so the engine's
reflection padding and crop are exercised. The spec (window, normalisation) is embedded under
``METADATA_KEY`` exactly as the trainer's exporter does.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from livedenoise.clients.model_spec import METADATA_KEY, ModelSpec, Normalization, WindowSpec

__all__ = ["DEFAULT_NORM", "make_spec", "make_mix_model", "write_model_without_spec", "write_corrupt_model"]

DEFAULT_NORM = Normalization(kind="affine", offset=100.0, scale=50.0)
OPSET = 17


def make_spec(window: WindowSpec, normalization: Normalization = DEFAULT_NORM, method: str = "test_mix") -> ModelSpec:
    return ModelSpec(method=method, window=window, normalization=normalization, version="test")


def _weights(window: WindowSpec, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    length, k = window.window_length, window.out_frames
    # Distinct per-slot temporal weights (increasing with slot, different per output), normalised so the
    # output stays in the range of the input.
    temporal = np.stack([np.linspace(1.0, 2.0 + j, length) for j in range(k)]) + rng.uniform(0, 0.5, (k, length))
    spatial = rng.uniform(0.5, 1.5, (k, length, 3, 3))
    mix = temporal[:, :, None, None] * spatial
    mix /= mix.sum(axis=(1, 2, 3), keepdims=True)
    pooled = rng.uniform(-0.2, 0.2, (k, length, 1, 1))
    return mix.astype(np.float32), pooled.astype(np.float32)


def make_mix_model(
    path: Path,
    window: WindowSpec,
    normalization: Normalization = DEFAULT_NORM,
    *,
    levels: int = 0,
    seed: int = 0,
    method: str = "test_mix",
    static_hw: tuple[int, int] | None = None,
) -> Path:
    """Write a test model to ``path`` and return it.

    Parameters
    ----------
    window
        The embedded window spec; ``spatial_multiple`` should be ``>= 2**levels`` for the graph to run.
    levels
        Pooling levels of the multi-scale branch (0: none).
    seed
        Changes the weights (two seeds = two distinguishable models).
    static_hw
        Fix H and W in the graph input (default: dynamic).
    """
    mix, pooled = _weights(window, seed)
    h, w = static_hw if static_hw is not None else ("H", "W")
    x = helper.make_tensor_value_info("frames", TensorProto.FLOAT, ["B", window.window_length, h, w])
    y = helper.make_tensor_value_info("denoised", TensorProto.FLOAT, ["B", window.out_frames, h, w])
    inits = [numpy_helper.from_array(mix, "mix_w"), numpy_helper.from_array(pooled, "pool_w")]
    nodes = [helper.make_node("Conv", ["frames", "mix_w"], ["mixed"], pads=[1, 1, 1, 1])]
    if levels > 0:
        inits.append(numpy_helper.from_array(np.array([1, 1, 2, 2], dtype=np.float32), "up_scales"))
        current = "frames"
        for i in range(levels):
            nodes.append(helper.make_node("AveragePool", [current], [f"pool{i}"], kernel_shape=[2, 2], strides=[2, 2]))
            current = f"pool{i}"
        nodes.append(helper.make_node("Conv", [current, "pool_w"], ["coarse0"]))
        current = "coarse0"
        for i in range(levels):
            nodes.append(helper.make_node("Resize", [current, "", "up_scales"], [f"up{i}"], mode="nearest"))
            current = f"up{i}"
        # Shapes only agree here when H and W are multiples of 2**levels.
        nodes.append(helper.make_node("Add", ["mixed", current], ["denoised"]))
    else:
        nodes.append(helper.make_node("Identity", ["mixed"], ["denoised"]))
    graph = helper.make_graph(nodes, f"{method}_graph", [x], [y], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="livedenoise-tests")
    model.ir_version = 8
    helper.set_model_props(model, {METADATA_KEY: make_spec(window, normalization, method).to_json()})
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def write_model_without_spec(path: Path) -> Path:
    """A valid ONNX graph with no livedenoise metadata."""
    make_mix_model(path, WindowSpec(before=1, after=1))
    model = onnx.load(str(path))
    del model.metadata_props[:]
    onnx.save(model, str(path))
    return path


def write_corrupt_model(path: Path) -> Path:
    """Bytes that are not an ONNX protobuf."""
    path.write_bytes(b"\x08\x07this is not an onnx model\xff\xfe" * 8)
    return path
