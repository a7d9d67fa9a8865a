from __future__ import annotations

from pathlib import Path
from types import ModuleType

import numpy as np
import onnxruntime as ort
import pytest

from livedenoise.clients.model_spec import Normalization, WindowSpec
from livedenoise.server.engine.base import Engine, PreparedEngine, pad_to_multiple
from livedenoise.server.engine.loader import load_engine
from livedenoise.server.engine.offline import denoise_movie
from livedenoise.server.errors import EngineError, InvalidModel

NORM = Normalization(kind="affine", offset=120.0, scale=40.0)


@pytest.fixture(scope="module")
def unet_path(tmp_path_factory: pytest.TempPathFactory, onnx_models: ModuleType) -> Path:
    path = tmp_path_factory.mktemp("models") / "unet.onnx"
    return onnx_models.make_mix_model(path, WindowSpec(2, 1, 1, spatial_multiple=8), NORM, levels=3)


def direct_reference(path: Path, windows: np.ndarray, multiple: int) -> np.ndarray:
    """Straightforward pipeline with a bare ORT session: normalise, np.pad reflect, run, crop, invert."""
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    h, w = windows.shape[-2:]
    x = (windows.astype(np.float32) - np.float32(NORM.offset)) * np.float32(1 / NORM.scale)
    x = np.pad(x, ((0, 0), (0, 0), (0, -h % multiple), (0, -w % multiple)), mode="reflect")
    (y,) = session.run(None, {"frames": x})
    return y[:, :, :h, :w] * np.float32(NORM.scale) + np.float32(NORM.offset)


@pytest.mark.parametrize("hw", [(8, 8), (31, 45), (33, 17), (511, 511)])
def test_pad_to_multiple_reflects_bottom_right(hw: tuple[int, int]) -> None:
    x = np.random.default_rng(0).random((2, 3, *hw), dtype=np.float32)
    padded = pad_to_multiple(x, 8)
    assert padded.shape[-2] % 8 == 0 and padded.shape[-1] % 8 == 0
    assert padded.shape[-2] - hw[0] < 8 and padded.shape[-1] - hw[1] < 8
    np.testing.assert_array_equal(padded[..., : hw[0], : hw[1]], x)
    if padded.shape[-2] > hw[0]:  # the first padded row mirrors the row above the edge
        np.testing.assert_array_equal(padded[..., hw[0], : hw[1]], x[..., hw[0] - 2, :])


def test_pad_to_multiple_one_pixel_axis() -> None:
    x = np.arange(5, dtype=np.float32).reshape(1, 1, 1, 5)
    padded = pad_to_multiple(x, 4)
    assert padded.shape == (1, 1, 4, 8)
    assert np.all(padded[0, 0, :, :5] == x[0, 0, 0])


@pytest.mark.parametrize("hw", [(31, 45), (33, 33), (511, 511), (40, 48)])
def test_engine_pads_and_crops_odd_sizes(unet_path: Path, hw: tuple[int, int]) -> None:
    engine = load_engine(unet_path, "cpu", "unet", threads=1)
    assert isinstance(engine, Engine)
    rng = np.random.default_rng(1)
    windows = rng.integers(0, 4000, (2, engine.spec.window.window_length, *hw)).astype(np.float32)
    out = engine.infer(windows)
    assert out.shape == (2, 1, *hw) and out.dtype == np.float32
    np.testing.assert_array_equal(out, direct_reference(unet_path, windows, 8))
    # the engine output is in raw units and depends on the frames
    assert abs(float(out.mean()) - float(windows.mean())) < 0.2 * float(windows.mean())
    engine.close()


def test_graph_needs_the_padding(unet_path: Path) -> None:
    engine = load_engine(unet_path, "cpu")
    assert isinstance(engine, PreparedEngine)
    with pytest.raises(EngineError):
        engine.runner.run(np.zeros((1, 4, 31, 45), dtype=np.float32))


def test_engine_rejects_wrong_window_length(unet_path: Path) -> None:
    engine = load_engine(unet_path, "cpu")
    with pytest.raises(EngineError, match=r"\[batch, 4, H, W\]") as info:
        engine.infer(np.zeros((1, 3, 16, 16), dtype=np.float32))
    assert info.value.code == "model_mismatch"


def test_static_graph_size_mismatch_is_model_mismatch(tmp_path: Path, onnx_models: ModuleType) -> None:
    path = onnx_models.make_mix_model(tmp_path / "static.onnx", WindowSpec(1, 1), static_hw=(16, 16))
    engine = load_engine(path, "cpu")
    assert engine.infer(np.ones((1, 3, 16, 16), dtype=np.float32)).shape == (1, 1, 16, 16)
    with pytest.raises(EngineError) as info:
        engine.infer(np.ones((1, 3, 20, 16), dtype=np.float32))
    assert info.value.code == "model_mismatch"


def test_spec_and_id_come_from_the_file(unet_path: Path) -> None:
    engine = load_engine(unet_path, "cpu")
    assert engine.model_id == "unet"
    assert engine.provider == "cpu"
    assert engine.spec.window == WindowSpec(2, 1, 1, spatial_multiple=8)
    assert engine.spec.normalization == NORM


def test_corrupt_file_is_invalid_model(tmp_path: Path, onnx_models: ModuleType) -> None:
    path = onnx_models.write_corrupt_model(tmp_path / "bad.onnx")
    with pytest.raises(InvalidModel, match="not a valid ONNX model"):
        load_engine(path, "cpu")


def test_file_without_spec_is_invalid_model(tmp_path: Path, onnx_models: ModuleType) -> None:
    path = onnx_models.write_model_without_spec(tmp_path / "nospec.onnx")
    with pytest.raises(InvalidModel, match="livedenoise.spec"):
        load_engine(path, "cpu")


def test_missing_file_is_invalid_model(tmp_path: Path) -> None:
    with pytest.raises(InvalidModel, match="does not exist"):
        load_engine(tmp_path / "nope.onnx", "cpu")


def test_unknown_provider(unet_path: Path) -> None:
    with pytest.raises(EngineError, match="unknown provider 'tpu'"):
        load_engine(unet_path, "tpu")


@pytest.mark.parametrize("provider, ep", [("cuda", "CUDAExecutionProvider"), ("tensorrt", "TensorrtExecutionProvider")])
def test_missing_gpu_provider_is_a_clear_error(unet_path: Path, provider: str, ep: str) -> None:
    if ep in ort.get_available_providers():
        pytest.skip(f"{ep} is available in this onnxruntime build")
    with pytest.raises(EngineError, match=f"provider '{provider}' needs {ep}"):
        load_engine(unet_path, provider)


def reference_movie(engine: Engine, movie: np.ndarray) -> np.ndarray:
    """One window at a time, built with np.pad(mode='reflect') along time."""
    w = engine.spec.window
    t = movie.shape[0]
    n_blocks = -(-t // w.out_frames)
    padded = np.pad(
        movie.astype(np.float32), ((w.before, n_blocks * w.out_frames - t + w.after), (0, 0), (0, 0)), mode="reflect"
    )
    out = np.concatenate(
        [engine.infer(padded[None, j * w.out_frames : j * w.out_frames + w.window_length])[0] for j in range(n_blocks)]
    )
    return out[:t]


@pytest.mark.parametrize("window", [WindowSpec(2, 2, 1, 4), WindowSpec(3, 1, 2, 1), WindowSpec(0, 2, 3, 2)], ids=str)
@pytest.mark.parametrize("frames", [1, 2, 17])
def test_denoise_movie_matches_per_window_reference(
    tmp_path: Path, onnx_models: ModuleType, window: WindowSpec, frames: int
) -> None:
    path = onnx_models.make_mix_model(tmp_path / "m.onnx", window, NORM, levels=1 if window.spatial_multiple > 1 else 0)
    engine = load_engine(path, "cpu", threads=1)
    movie = np.random.default_rng(frames).integers(0, 3000, (frames, 21, 19)).astype(np.uint16)
    calls: list[tuple[int, int]] = []
    out = denoise_movie(engine, movie, batch_size=3, progress=lambda done, total: calls.append((done, total)))
    assert out.shape == movie.shape and out.dtype == np.float32
    # Bit-exact: ONNX Runtime CPU gives the same result for a window whatever the batch it is in.
    np.testing.assert_array_equal(out, reference_movie(engine, movie))
    np.testing.assert_array_equal(out, denoise_movie(engine, movie, batch_size=1))
    assert calls[-1] == (frames, frames)


def test_denoise_movie_rejects_bad_input(unet_path: Path) -> None:
    engine = load_engine(unet_path, "cpu")
    with pytest.raises(ValueError, match=r"\[T, H, W\]"):
        denoise_movie(engine, np.zeros((8, 8)), 2)
    with pytest.raises(ValueError, match="batch_size"):
        denoise_movie(engine, np.zeros((2, 8, 8)), 0)


class _FirstPlane:
    """A runner that returns the first input plane."""

    provider = "cpu"

    def run(self, x: np.ndarray) -> np.ndarray:
        return x[:, :1]

    def close(self) -> None:
        pass


def test_fixed_frame_shape_model_refuses_other_sizes_by_name(onnx_models: ModuleType) -> None:
    from dataclasses import replace

    from livedenoise.clients.model_spec import ModelSpec

    spec = replace(onnx_models.make_spec(WindowSpec(1, 1)), frame_shape=(16, 20))
    assert ModelSpec.from_json(spec.to_json()).frame_shape == (16, 20)
    engine = PreparedEngine(_FirstPlane(), spec, "v2")
    assert engine.infer(np.ones((2, 3, 16, 20), dtype=np.float32)).shape == (2, 1, 16, 20)
    with pytest.raises(EngineError, match="serves only 16x20 frames") as info:
        engine.infer(np.ones((1, 3, 20, 16), dtype=np.float32))
    assert info.value.code == "model_mismatch"


def test_running_reference_window_has_one_more_plane(onnx_models: ModuleType) -> None:
    spec = onnx_models.make_spec(WindowSpec(1, 1, reference="running_mean"))
    engine = PreparedEngine(_FirstPlane(), spec, "v2")
    assert engine.infer(np.ones((1, 4, 8, 8), dtype=np.float32)).shape == (1, 1, 8, 8)
    with pytest.raises(EngineError, match=r"\[batch, 4, H, W\]"):
        engine.infer(np.ones((1, 3, 8, 8), dtype=np.float32))


@pytest.mark.parametrize("bad", ["16x20", [16], [16, 0], [16, True], [16.0, 20]])
def test_bad_frame_shape_in_a_spec_is_named(onnx_models: ModuleType, bad: object) -> None:
    import json

    from livedenoise.clients.model_spec import ModelSpec, SpecError

    doc = json.loads(onnx_models.make_spec(WindowSpec(1, 1)).to_json())
    with pytest.raises(SpecError, match="frame_shape"):
        ModelSpec.from_json(json.dumps({**doc, "frame_shape": bad}))


def test_estimates_round_trip_select_output_planes_and_bad_ones_are_named(onnx_models: ModuleType) -> None:
    import json
    from dataclasses import replace

    from livedenoise.clients.model_spec import EstimateSpec, ModelSpec, SpecError

    plain = onnx_models.make_spec(WindowSpec(3, 3, 2))
    assert (plain.output_planes, plain.estimate_names, plain.estimate(None)) == (2, (), (slice(0, 2), 3))
    with pytest.raises(SpecError, match="has no estimate 'causal'; it offers only its default output"):
        plain.estimate("causal")
    spec = replace(plain, estimates=(EstimateSpec("final", 3), EstimateSpec("causal", 0)))
    assert ModelSpec.from_json(spec.to_json()) == spec
    assert spec.output_planes == 4 and spec.estimate_names == ("final", "causal")
    assert spec.estimate(None) == spec.estimate("final") == (slice(0, 2), 3)
    assert spec.estimate("causal") == (slice(2, 4), 0)
    doc = json.loads(spec.to_json())
    for bad, words in (
        ([{"name": "a", "after": 4}], "reads 4 future frames, more than the window's 3"),
        ([{"name": "a", "after": 0}, {"name": "a", "after": 1}], "repeats a name"),
        ([{"name": "", "after": 0}], "estimate name"),
        ([{"name": "a", "after": -1}], "'after'"),
        ({"name": "a"}, "must be a list"),
    ):
        with pytest.raises(SpecError, match=words):
            ModelSpec.from_json(json.dumps({**doc, "estimates": bad}))
    # The engine checks the output holds out_frames planes per estimate.
    engine = PreparedEngine(_FirstPlane(), spec, "two")
    with pytest.raises(EngineError, match=r"returned shape \[1, 1, 8, 8\], expected \[1, 4, 8, 8\]"):
        engine.infer(np.ones((1, 8, 8, 8), dtype=np.float32))


def test_a_graph_without_a_plane_per_estimate_is_refused_at_load(tmp_path: Path, onnx_models: ModuleType) -> None:
    from dataclasses import replace

    import onnx

    from livedenoise.clients.model_spec import METADATA_KEY, EstimateSpec

    path = onnx_models.make_mix_model(tmp_path / "one.onnx", WindowSpec(1, 1))
    model = onnx.load(str(path))
    spec = replace(onnx_models.make_spec(WindowSpec(1, 1)), estimates=(EstimateSpec("a", 1), EstimateSpec("b", 0)))
    onnx.helper.set_model_props(model, {METADATA_KEY: spec.to_json()})
    onnx.save(model, str(path))
    with pytest.raises(InvalidModel, match=r"output 'denoised' has 1 planes but the spec needs 2 \(1 frames x 2"):
        load_engine(path, "cpu")


def test_tensorrt_shape_profile_covers_one_range_and_names_its_cache() -> None:
    from livedenoise.server.engine.onnx_runtime import ShapeProfile

    profile = ShapeProfile("frames", planes=16, multiple=4, max_batch=8, opt_side=510, max_side=1023)
    assert profile.options() == {
        "trt_profile_min_shapes": "frames:1x16x4x4",
        "trt_profile_opt_shapes": "frames:8x16x512x512",
        "trt_profile_max_shapes": "frames:8x16x1024x1024",
    }
    assert profile.key == "b8-p16-m4-s1024"
    profile.check((8, 16, 1024, 512))
    for shape in ((9, 16, 64, 64), (1, 16, 1028, 64)):
        with pytest.raises(EngineError, match="outside the TensorRT profile") as info:
            profile.check(shape)
        assert info.value.code == "model_mismatch"
