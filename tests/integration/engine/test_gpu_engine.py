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


@pytest.mark.gpu
def test_tensorrt_fp16_builds_once_for_every_shape_and_stays_close(tmp_path: Path, onnx_models: ModuleType) -> None:
    import onnxruntime as ort

    if "TensorrtExecutionProvider" not in ort.get_available_providers():
        pytest.skip("this onnxruntime build has no TensorRT provider")
    model = onnx_models.make_mix_model(tmp_path / "mix.onnx", WindowSpec(2, 2, 1), levels=2)
    cache = tmp_path / "cache"
    engine = load_engine(model, "tensorrt", "mix", cache_dir=cache, max_batch=4, max_side=256)
    assert engine.precision == "fp16"  # type: ignore[attr-defined]
    for shape in ((20, 64, 48), (9, 130, 200)):  # a new frame size and batch: no rebuild, same engine file
        movie = np.random.default_rng(1).integers(0, 4000, shape).astype(np.uint16)
        cpu = denoise_movie(load_engine(model, "cpu", "mix"), movie)
        np.testing.assert_allclose(denoise_movie(engine, movie, batch_size=4), cpu, rtol=2e-2, atol=5.0)
    engines = [p for p in cache.rglob("*") if p.suffix == ".engine"]
    assert len(engines) == 1, engines
