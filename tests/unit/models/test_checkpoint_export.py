from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from livedenoise.clients.model_spec import METADATA_KEY, ModelSpec
from livedenoise.models.checkpoint import load_checkpoint, save_checkpoint
from livedenoise.models.export import export_onnx
from livedenoise.models.synthetic import SyntheticMovie
from livedenoise.models.trainer import TrainResult
from livedenoise.server.engine.base import PreparedEngine
from livedenoise.server.engine.loader import load_engine
from livedenoise.server.engine.offline import denoise_movie


@pytest.fixture(scope="module")
def exported(tiny_result: TrainResult, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ModelSpec]:
    path = tmp_path_factory.mktemp("export") / "model.onnx"
    return path, export_onnx(tiny_result, path)


def test_checkpoint_round_trip_gives_equal_outputs(tiny_result: TrainResult, tmp_path: Path) -> None:
    save_checkpoint(tiny_result, tmp_path / "ckpt")
    loaded = load_checkpoint(tmp_path / "ckpt")
    x = torch.randn(2, 8, 16, 24)
    with torch.no_grad():
        torch.testing.assert_close(loaded.network(x), tiny_result.network(x), rtol=0, atol=0)
    assert loaded.config == tiny_result.config
    assert loaded.window == tiny_result.window and loaded.normalization == tiny_result.normalization
    assert loaded.history == tiny_result.history and loaded.data_digest == tiny_result.data_digest


def test_checkpoint_refuses_missing_or_mismatched_files(tiny_result: TrainResult, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="model.safetensors"):
        load_checkpoint(tmp_path)
    save_checkpoint(tiny_result, tmp_path / "c")
    meta = (tmp_path / "c" / "checkpoint.json").read_text().replace('"base_channels": 8', '"base_channels": 4')
    (tmp_path / "c" / "checkpoint.json").write_text(meta)
    with pytest.raises(ValueError, match="do not match"):
        load_checkpoint(tmp_path / "c")


@pytest.mark.slow
def test_onnx_matches_torch_on_other_batch_and_size(exported: tuple[Path, ModelSpec], tiny_result: TrainResult) -> None:
    path, spec = exported
    w = spec.window
    module = tiny_result.recipe.export_module(tiny_result.network)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in sess.get_inputs()] == ["frames"] and [o.name for o in sess.get_outputs()] == ["denoised"]
    x = np.random.default_rng(0).standard_normal((3, w.window_length, 12, 28)).astype(np.float32)
    out = sess.run(None, {"frames": x})[0]
    with torch.no_grad():
        ref = module(torch.from_numpy(x)).numpy()
    assert out.shape == (3, w.out_frames, 12, 28)
    assert np.abs(out - ref).max() / np.abs(ref).max() < 1e-4


def test_metadata_parses_back(exported: tuple[Path, ModelSpec], tiny_result: TrainResult) -> None:
    path, spec = exported
    meta = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).get_modelmeta().custom_metadata_map
    parsed = ModelSpec.from_metadata(meta)
    assert parsed == spec
    assert parsed.method == "deepcad_rt" and parsed.window == tiny_result.window
    assert parsed.normalization == tiny_result.normalization
    assert parsed.train_data_digest == tiny_result.data_digest and parsed.created
    assert parsed.extra["network"] == "unet3d" and parsed.extra["network_config"]["base"] == 8
    # No held-out frames on the tiny movie: inference="auto" is decided as consecutive and recorded; the 2+4+2
    # window's last level then runs on the 4 served frames only.
    assert parsed.extra["train_config"]["inference"] == "consecutive" and parsed.extra["graph_cropped"] is True
    assert METADATA_KEY in {p.key for p in onnx.load(str(path)).metadata_props}


def test_sliding_window_inference_onnx_equals_torch(
    exported: tuple[Path, ModelSpec], tiny_result: TrainResult, tiny_movie: SyntheticMovie
) -> None:
    path, spec = exported
    movie = tiny_movie.noisy[:21, :30, :26]  # neither T nor H, W are multiples
    module = tiny_result.recipe.export_module(tiny_result.network).eval()

    class TorchRunner:
        """The torch module as a serving backend, so both runs share the server's one windowing path."""

        provider = "torch"

        def run(self, x: np.ndarray) -> np.ndarray:
            with torch.inference_mode():
                return module(torch.from_numpy(x)).numpy()

        def close(self) -> None:
            pass

    a = denoise_movie(load_engine(path, model_id="onnx"), movie, batch_size=2)
    b = denoise_movie(PreparedEngine(TorchRunner(), spec, "torch"), movie, batch_size=2)
    assert a.shape == movie.shape and a.dtype == np.float32
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-4 * float(np.abs(b).max()))
