"""The ingest service on the OpenVINO provider: one reply per frame, in order, equal to the same engine offline."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from livedenoise.clients.model_spec import WindowSpec
from livedenoise.server.engine.loader import load_engine
from livedenoise.server.engine.offline import denoise_movie
from livedenoise.server.settings import ServerSettings

pytest.importorskip("openvino", reason="the `openvino` extra is not installed")


def test_streamed_on_openvino_equals_offline_and_status_names_it(
    settings: ServerSettings, tmp_path: Path, onnx_models: ModuleType, run_service: Callable[..., Any],
    make_sender: Callable[[str], Any],
) -> None:  # fmt: skip
    path = onnx_models.make_mix_model(tmp_path / "mix.onnx", WindowSpec(3, 1, 2, spatial_multiple=4), levels=2)
    service = run_service(settings.model_copy(update={"provider": "openvino", "precision": "fp32"}), path, "mix")
    status = service.status()
    assert status.provider == "openvino" and status.precision == "fp32"
    movie = np.random.default_rng(0).integers(0, 4000, (23, 30, 26)).astype(np.uint16)
    sender = make_sender(service.zmq_endpoint)
    sender.start("cam", "s", movie.shape[1:], movie.dtype.str)
    for i, frame in enumerate(movie):
        sender.frame("cam", "s", i, frame)
    sender.end("cam", "s")
    replies = sender.until_end("cam", "s")
    frames = [r for r in replies if r.type != "end"]
    assert [r.header.index for r in frames] == list(range(23)) and all(r.type == "frame" for r in frames)
    expected = denoise_movie(load_engine(path, "openvino", precision="fp32"), movie)
    np.testing.assert_allclose(np.stack([r.frame for r in frames]), expected, rtol=1e-6, atol=1e-3)
    onnx_runtime = denoise_movie(load_engine(path, "cpu"), movie)
    np.testing.assert_allclose(expected, onnx_runtime, rtol=1e-5, atol=1e-2)
