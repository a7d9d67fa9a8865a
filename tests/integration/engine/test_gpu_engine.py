"""The CUDA engine gives the CPU engine's output (GPU machines only: the `gpu` marker skips it elsewhere)."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from livedenoise.clients.model_spec import WindowSpec
from livedenoise.server.engine.loader import load_engine
from livedenoise.server.engine.offline import denoise_movie


@pytest.mark.gpu
def test_cuda_engine_matches_cpu(tmp_path: Path, onnx_models: ModuleType) -> None:
    model = onnx_models.make_mix_model(tmp_path / "mix.onnx", WindowSpec(2, 2, 1), levels=2)
    movie = np.random.default_rng(0).integers(0, 4000, (20, 64, 48)).astype(np.uint16)
    cpu = denoise_movie(load_engine(model, "cpu", "mix"), movie)
    gpu = denoise_movie(load_engine(model, "cuda", "mix"), movie)
    np.testing.assert_allclose(gpu, cpu, rtol=1e-4, atol=1e-3)
