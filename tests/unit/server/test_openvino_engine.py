"""The OpenVINO backend: same spec and checks as ONNX Runtime, fp32 output equal to it, clear errors."""

from __future__ import annotations

import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from livedenoise.clients.model_spec import Normalization, WindowSpec
from livedenoise.server.engine.base import PreparedEngine
from livedenoise.server.engine.loader import load_engine
from livedenoise.server.engine.offline import denoise_movie
from livedenoise.server.errors import EngineError, InvalidModel

pytest.importorskip("openvino", reason="the `openvino` extra is not installed")

NORM = Normalization(kind="affine", offset=120.0, scale=40.0)


@pytest.fixture(scope="module")
def unet_path(tmp_path_factory: pytest.TempPathFactory, onnx_models: ModuleType) -> Path:
    path = tmp_path_factory.mktemp("models") / "unet.onnx"
    return onnx_models.make_mix_model(path, WindowSpec(2, 1, 1, spatial_multiple=8), NORM, levels=3)


@pytest.mark.parametrize("hw", [(31, 45), (64, 64)])
def test_fp32_equals_onnx_runtime_on_odd_sizes_and_batches(unet_path: Path, hw: tuple[int, int]) -> None:
    cpu = load_engine(unet_path, "cpu", threads=1)
    ov = load_engine(unet_path, "openvino", threads=1, precision="fp32")
    assert isinstance(ov, PreparedEngine) and ov.provider == "openvino" and ov.precision == "fp32"
    windows = np.random.default_rng(2).integers(0, 4000, (3, 4, *hw)).astype(np.float32)
    expected = cpu.infer(windows)
    for batch in (3, 1):  # a new batch size on the same compiled model
        out = ov.infer(windows[:batch])
        assert out.shape == expected[:batch].shape and out.dtype == np.float32
        np.testing.assert_allclose(out, expected[:batch], rtol=1e-5, atol=1e-3)


def test_auto_precision_stays_close_and_says_which(unet_path: Path) -> None:
    # auto is bf16 on CPUs with native bf16 (AMX, AVX512-BF16), fp32 elsewhere: within bf16's 3 significant digits.
    ov = load_engine(unet_path, "openvino", threads=1)
    assert isinstance(ov, PreparedEngine) and ov.precision in ("fp32", "bf16")
    movie = np.random.default_rng(3).integers(100, 4000, (9, 24, 40)).astype(np.uint16)
    expected = denoise_movie(load_engine(unet_path, "cpu", threads=1), movie)
    out = denoise_movie(ov, movie)
    assert np.abs(out - expected).max() / np.abs(expected).max() < 2e-2


def test_same_refusals_as_onnx_runtime(unet_path: Path, tmp_path: Path, onnx_models: ModuleType) -> None:
    ov = load_engine(unet_path, "openvino", threads=1)
    with pytest.raises(EngineError, match=r"\[batch, 4, H, W\]") as info:
        ov.infer(np.zeros((1, 3, 16, 16), dtype=np.float32))
    assert info.value.code == "model_mismatch"
    with pytest.raises(InvalidModel, match="not a valid ONNX model"):
        load_engine(onnx_models.write_corrupt_model(tmp_path / "bad.onnx"), "openvino")
    with pytest.raises(InvalidModel, match="livedenoise.spec"):
        load_engine(onnx_models.write_model_without_spec(tmp_path / "nospec.onnx"), "openvino")
    with pytest.raises(InvalidModel, match="does not exist"):
        load_engine(tmp_path / "nope.onnx", "openvino")
    with pytest.raises(EngineError, match="unknown precision 'int4'"):
        load_engine(unet_path, "openvino", precision="int4")


def test_static_graph_size_mismatch_is_model_mismatch(tmp_path: Path, onnx_models: ModuleType) -> None:
    path = onnx_models.make_mix_model(tmp_path / "static.onnx", WindowSpec(1, 1), static_hw=(16, 16))
    ov = load_engine(path, "openvino", threads=1)
    assert ov.infer(np.ones((1, 3, 16, 16), dtype=np.float32)).shape == (1, 1, 16, 16)
    with pytest.raises(EngineError) as info:
        ov.infer(np.ones((1, 3, 20, 16), dtype=np.float32))
    assert info.value.code == "model_mismatch"


def test_missing_runtime_names_the_extra(unet_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "openvino", None)  # as if the extra were not installed
    monkeypatch.delitem(sys.modules, "livedenoise.server.engine.openvino_runtime", raising=False)
    with pytest.raises(EngineError, match=r"provider 'openvino' is not available.*livedenoise\[openvino\]"):
        load_engine(unet_path, "openvino")
