"""Fixtures for the network tests: export a network to ONNX as ``models/export.py`` does, run it in ONNX Runtime."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
from torch import nn

ExportCheck = Callable[[nn.Module, int, int], float]


@pytest.fixture
def onnx_roundtrip(tmp_path: Path) -> ExportCheck:
    """``(net, channels, multiple) -> worst relative error``: legacy export (opset 17, dynamic batch, H and W)
    from a ``2m x 3m`` example to ``tmp_path / "net.onnx"``, then ONNX Runtime against torch on other batch
    sizes and shapes.

    Relative error = max |ort - torch| / max |torch|, as in :func:`livedenoise.models.export.verify_onnx`.
    """

    def check(net: nn.Module, channels: int, multiple: int) -> float:
        net = net.eval()
        path = tmp_path / "net.onnx"
        gen = torch.Generator().manual_seed(0)
        example = torch.randn(1, channels, 2 * multiple, 3 * multiple, generator=gen)
        axes = {0: "batch", 2: "height", 3: "width"}
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                net,
                (example,),
                str(path),
                input_names=["frames"],
                output_names=["denoised"],
                opset_version=17,
                dynamo=False,
                dynamic_axes={"frames": axes, "denoised": axes},
            )
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        worst = 0.0
        for batch, h, w in ((2, 5, 7), (1, 4, 1)):
            x = torch.randn(batch, channels, h * multiple, w * multiple, generator=gen)
            with torch.no_grad():
                ref = net(x).numpy()
            out = sess.run(None, {"frames": x.numpy()})[0]
            assert out.shape == ref.shape
            worst = max(worst, float(np.abs(out - ref).max() / max(float(np.abs(ref).max()), 1e-12)))
        return worst

    return check
