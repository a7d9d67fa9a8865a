"""Every registered method, end to end: a tiny real training run that lowers the loss, ONNX export checked
against torch in ONNX Runtime, and the movie streamed through a real ingest process over ZeroMQ with one
reply per frame, equal to the offline result."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from livedenoise.clients.model_spec import ModelSpec
from livedenoise.clients.stream import StreamClient
from livedenoise.models.catalogue import list_methods
from livedenoise.models.config import TrainConfig
from livedenoise.models.export import export_onnx
from livedenoise.models.synthetic import simulate_calcium_movie
from livedenoise.models.trainer import fit
from livedenoise.server.engine.loader import load_engine
from livedenoise.server.engine.offline import denoise_movie
from livedenoise.server.ingest.service import IngestService
from livedenoise.server.settings import ServerSettings

pytestmark = pytest.mark.slow

SCHEDULE = {"epochs": 4, "patches_per_epoch": 32, "device": "cpu", "seed": 1, "lr": 2e-3, "validation_frames": 8}
# Tiny versions of each method: same recipe, same graph, small widths.
TINY = {
    "deepcad_rt": {"patch_t": 8, "patch_xy": 16, "batch_size": 4, "base_channels": 4, "levels": 2},
    "deepcad": {"patch_t": 8, "patch_xy": 16, "batch_size": 4, "base_channels": 4, "levels": 2},
    "deepinterpolation": {"pre_post_frame": 3, "patch_xy": 16, "batch_size": 4, "base_channels": 4, "levels": 3},
    "deepsemi": {"in_c": 5, "features": 4, "out_frames": 4, "context": 2, "patch_xy": 16, "batch_size": 2},
    "deepvid": {"pre_post_frame": 3, "patch_xy": 16, "batch_size": 4, "features": 8, "blocks": 2},
    "deepvid_v2": {"pre_post_frame": 3, "patch_xy": 16, "batch_size": 4, "features": 8, "blocks": 2},
    "ted": {"pre_post_frame": 3, "patch_xy": 16, "batch_size": 4, "base_channels": 4, "levels": 2},
    "fast": {"frames": 4, "features": 4, "levels": 2, "patch_xy": 16, "batch_size": 4},
    "sn2n": {"base_channels": 4, "levels": 3, "patch_xy": 16, "batch_size": 4},
    "srdtrans": {
        "patch_t": 8,
        "levels": 2,
        "out_frames": 4,
        "patch_xy": 14,
        "batch_size": 2,
        "base_channels": 4,
        "embed_dim": 16,
        "heads": 2,
        "mlp_dim": 32,
    },
    "support": {
        "pre_post_frame": 3,
        "patch_xy": 16,
        "batch_size": 4,
        "unet_channels": [4, 8, 16],
        "blind_channels": 8,
        "depth": 3,
    },
}


def test_every_registered_method_is_covered() -> None:
    assert set(TINY) == set(list_methods())


@pytest.fixture(scope="module")
def movie() -> np.ndarray:
    # 64 frames (8 held out for validation), 22 x 26 pixels: not multiples of any network's size
    return simulate_calcium_movie(frames=64, size=(22, 26), seed=5, photons=4.0).noisy


# Served variants beside each method's default: DeepVID v2 with the series' running mean behind its edge prior
# (the engine appends the running mean frame to every window), FAST's causal estimate (no future frames).
VARIANTS = [(m, {}) for m in sorted(TINY)] + [
    ("deepvid_v2", {"edge_prior": "running"}),
    ("fast", {"estimate": "causal"}),
]


@pytest.mark.parametrize(
    ("method", "variant"), VARIANTS, ids=lambda v: "-".join(map(str, v.values())) if isinstance(v, dict) else v
)
def test_method_trains_exports_and_streams_like_offline(
    method: str, variant: dict[str, object], movie: np.ndarray, tmp_path: Path
) -> None:
    config = TrainConfig(method=method, **{**TINY[method], **variant}, **SCHEDULE)
    result = fit(config, movie)
    assert result.history[-1] < result.history[0], f"loss did not go down: {result.history}"
    assert result.validation is not None and len(result.val_history) == 4
    assert result.validation.best_filter and np.isfinite(result.validation.model_gain_db)

    path = tmp_path / f"{method}.onnx"
    spec = export_onnx(result, path)  # verified in ONNX Runtime: relative error < 1e-4
    assert ModelSpec.from_json(spec.to_json()).extra["validation"]["heldout_frames"] == 8
    window = config.window()
    assert spec.window == window and spec.method == method
    assert window.latency_frames == window.after + window.out_frames - 1

    engine = load_engine(path, provider="cpu", model_id=method, threads=1)
    try:
        offline = denoise_movie(engine, movie, batch_size=3)
    finally:
        engine.close()
    settings = ServerSettings(home=tmp_path / "home", zmq_port=0, pub_port=0, control_port=0, max_batch=4)
    with IngestService(settings, model_path=path, model_id=method) as service:
        with StreamClient(service.zmq_endpoint, stream=f"cam-{method}") as client:
            streamed = client.denoise(movie, mode="lossless")
            if spec.frame_shape is not None:  # a prior fixed from the training movie: other sizes are refused
                other = client.denoise(movie[:12, :20, :24], mode="lossless")
                assert other.count("error") == 12 and set(other.codes.values()) == {"model_mismatch"}
                assert "serves only 22x26 frames" in other.messages[0] and "got 20x24" in other.messages[0]
    summary = streamed.summary()
    assert summary["frames_in"] == summary["frames_out"] == movie.shape[0]
    assert summary.get("errors", 0) == 0 and summary.get("skipped", 0) == 0
    np.testing.assert_allclose(streamed.frames, offline, rtol=1e-5, atol=1e-5 * float(np.abs(offline).max()))
