"""Offline sliding-window inference over a whole movie, with a torch module or an ONNX file.

Blocks of ``out_frames`` output frames, each computed from a window with ``before``/``after`` frames
of context; the movie is reflected at its temporal edges and padded by reflection to the spatial
multiple (then cropped back), as the streaming server does.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from livedenoise.clients.model_spec import Normalization, WindowSpec

__all__ = ["denoise_movie", "torch_runner", "onnx_runner"]

Runner = Callable[[NDArray[np.float32]], NDArray[np.float32]]


def torch_runner(module: nn.Module, device: torch.device | None = None) -> Runner:
    """Wrap a served-graph module (``[B, L, H, W] -> [B, out_frames, H, W]``) as a numpy runner."""
    device = device or torch.device("cpu")
    module = module.eval().to(device)

    def run(x: NDArray[np.float32]) -> NDArray[np.float32]:
        with torch.inference_mode():
            return module(torch.from_numpy(x).to(device)).cpu().numpy()

    return run


def onnx_runner(path: str | Path, *, threads: int = 0) -> Runner:
    """ONNX Runtime (CPU) runner for an exported model file."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    sess = ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name

    def run(x: NDArray[np.float32]) -> NDArray[np.float32]:
        return sess.run(None, {name: x})[0]

    return run


def denoise_movie(
    movie: NDArray[Any],
    window: WindowSpec,
    normalization: Normalization,
    run: Runner,
    *,
    batch_size: int = 2,
) -> NDArray[np.float32]:
    """Denoise ``movie`` ``[T, H, W]`` block by block; returns float32 ``[T, H, W]`` in the input's units."""
    arr = np.asarray(movie)
    if arr.ndim != 3:
        raise ValueError(f"movie must be [T, H, W], got shape {arr.shape}")
    t_len, h, w = arr.shape
    m = window.spatial_multiple
    ph, pw = (-h) % m, (-w) % m
    n_blocks = -(-t_len // window.out_frames)
    tail = n_blocks * window.out_frames - t_len + window.after
    x = normalization.apply(arr)
    x = np.pad(x, ((window.before, tail), (0, ph), (0, pw)), mode="reflect")
    out = np.empty((n_blocks * window.out_frames, h, w), dtype=np.float32)
    starts = [k * window.out_frames for k in range(n_blocks)]
    for i in range(0, n_blocks, batch_size):
        chunk = starts[i : i + batch_size]
        windows = np.stack([x[s : s + window.window_length] for s in chunk])
        y = run(np.ascontiguousarray(windows, dtype=np.float32))
        for s, block in zip(chunk, y):
            out[s : s + window.out_frames] = block[:, :h, :w]
    return normalization.invert(out[:t_len])
