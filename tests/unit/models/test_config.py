from __future__ import annotations

import subprocess
import sys

import pytest
from pydantic import ValidationError

from livedenoise.clients.model_spec import WindowSpec
from livedenoise.models.catalogue import (
    DeepCADRTConfig,
    SupportConfig,
    config_fields,
    list_methods,
    method_info,
    parse_method_config,
)
from livedenoise.models.config import TrainConfig

METHODS = ["deepcad", "deepcad_rt", "deepinterpolation", "support"]


def test_catalogue_lists_every_method_with_paper_and_recipe() -> None:
    assert set(METHODS) <= set(list_methods())
    for name in list_methods():
        info = method_info(name)
        assert info.name == name and info.family and info.citation and info.paper and ":" in info.recipe
        assert info.config_cls().method == name


def test_defaults_give_the_deepcad_rt_window() -> None:
    cfg = TrainConfig(patch_t=32)
    assert cfg.method == "deepcad_rt" and isinstance(cfg.method_config, DeepCADRTConfig)
    assert cfg.window() == WindowSpec(before=8, after=8, out_frames=16, spatial_multiple=4)
    assert TrainConfig().window() == WindowSpec(4, 4, 8, 4)
    assert TrainConfig(**cfg.to_json_dict()) == cfg


@pytest.mark.parametrize("method", METHODS)
def test_flat_config_round_trips_for_every_method(method: str) -> None:
    cfg = TrainConfig(method=method, lr=2e-4, seed=3)
    flat = cfg.to_json_dict()
    assert flat["method"] == method and flat["lr"] == 2e-4
    assert TrainConfig(**flat) == cfg
    assert cfg.learning_rate == 2e-4 and cfg.window().latency_frames >= 0


def test_shared_values_resolve_to_the_method_defaults() -> None:
    cfg = TrainConfig(method="support")
    assert cfg.learning_rate == SupportConfig.default_lr
    assert cfg.budget_s == SupportConfig.default_time_budget_s
    assert TrainConfig(method="support", epochs=3).budget_s is None
    assert TrainConfig(method="support", epochs=3, time_budget_s=9).budget_s == 9


def test_windows_follow_the_method_config() -> None:
    assert TrainConfig(method="deepinterpolation").window() == WindowSpec(30, 30, 1, 16)
    assert TrainConfig(method="support", pre_post_frame=5, unet_channels=[8, 16, 32]).window() == WindowSpec(5, 5, 1, 4)
    assert TrainConfig(method="deepcad").window().spatial_multiple == 8


def test_patch_t_not_multiple_of_four_says_how_to_fix() -> None:
    with pytest.raises(ValidationError, match=r"patch_t=30 is not a multiple of 4.*use 28 or 32"):
        TrainConfig(patch_t=30)


def test_patch_xy_must_suit_the_levels() -> None:
    with pytest.raises(ValidationError, match=r"patch_xy=60 is not a multiple of 8.*levels=4.*56 or 64"):
        TrainConfig(patch_xy=60, levels=4)
    with pytest.raises(ValidationError, match=r"patch_t=36 is not a multiple of 8"):
        TrainConfig(patch_t=36, levels=4)
    with pytest.raises(ValidationError, match=r"patch_xy=40 is not a multiple of 16.*use patch_xy=32 or 48"):
        TrainConfig(method="deepinterpolation", patch_xy=40)


def test_window_override_is_checked() -> None:
    cfg = TrainConfig(patch_t=32, window_before=4, window_after=4, window_out_frames=24)
    assert cfg.window().window_length == 32
    with pytest.raises(ValidationError, match=r"4\+23\+4 = 31 is not a multiple of 4"):
        TrainConfig(window_before=4, window_after=4, window_out_frames=23)
    # Parity serving runs two stacks of half the window, each a multiple of 4, and reads a frame on either side.
    with pytest.raises(ValidationError, match=r"= 12 must be a multiple of 8 for inference='parity'"):
        TrainConfig(window_before=2, window_after=2, window_out_frames=8, inference="parity")
    assert TrainConfig(window_before=2, window_after=2, window_out_frames=8).window()  # auto: decided later
    with pytest.raises(ValidationError, match=r"needs window_before and window_after >= 1 \(got 0 and 8\)"):
        TrainConfig(window_before=0, window_after=8, window_out_frames=8, inference="parity")


def test_method_validators_say_how_to_fix() -> None:
    with pytest.raises(ValidationError, match=r"bs_size=2 must be odd.*use 1 or 3"):
        TrainConfig(method="support", bs_size=2)
    with pytest.raises(ValidationError, match=r"pre_post_omission=30 leaves no input frame"):
        TrainConfig(method="deepinterpolation", pre_post_omission=30)


def test_unknown_method_lists_known_ones() -> None:
    with pytest.raises(ValidationError, match="unknown method 'n2v'; known methods: deepcad, deepcad_rt"):
        TrainConfig(method="n2v")
    with pytest.raises(ValueError, match="known methods"):
        parse_method_config({"method": "n2v"})


def test_a_field_of_another_method_is_named_with_the_valid_ones() -> None:
    with pytest.raises(
        ValidationError, match=r"unknown field\(s\) 'patch_t' for method 'support'; its fields: .*bs_size"
    ):
        TrainConfig(method="support", patch_t=16)


@pytest.mark.parametrize(
    "bad",
    [
        {"lr": 0},
        {"betas": (0.5, 1.0)},
        {"device": "tpu"},
        {"batch_size": 0},
        {"patch_size": 3},
        {"epochs": 0},
        {"time_budget_s": -1},
        {"loss": "huber"},
    ],
)
def test_bad_fields_are_rejected(bad: dict) -> None:
    with pytest.raises(ValidationError, match=next(iter(bad))):
        TrainConfig(**bad)


def test_every_method_field_has_a_description() -> None:
    for name in list_methods():
        for field, info in config_fields(name).items():
            assert info.description, f"{name}.{field} has no description"


def test_config_validation_does_not_import_torch() -> None:
    code = (
        "import sys; from livedenoise.models.config import TrainConfig; "
        "[TrainConfig(method=m) for m in ('deepcad_rt', 'support', 'deepinterpolation', 'deepcad')]; "
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


def test_auto_inference_is_decided_by_how_much_the_best_filter_smooths_time() -> None:
    from livedenoise.models.catalogue.neighbour_frame import PARITY_MIN_TEMPORAL_SIGMA, temporal_sigma

    assert temporal_sigma("gaussian_3d(2,1,1)") == 2.0 and temporal_sigma("gaussian_3d(0.5,1.5,1.5)") == 0.5
    assert temporal_sigma("moving_average_3") < PARITY_MIN_TEMPORAL_SIGMA < temporal_sigma("moving_average_5")
    with pytest.raises(ValueError, match="unknown classical filter name 'median'"):
        temporal_sigma("median")
    auto = TrainConfig(method="deepcad_rt").method_config
    assert auto.inference == "auto"
    assert auto.resolve_inference("gaussian_3d(2,1,1)").inference == "parity"  # slow calcium
    assert auto.resolve_inference("gaussian_3d(1,1,1)").inference == "parity"
    assert auto.resolve_inference("gaussian_3d(0.5,1.5,1.5)").inference == "consecutive"  # fast against the rate
    assert auto.resolve_inference(None).inference == "consecutive"  # no held-out frames (short movies)
    fixed = TrainConfig(method="deepcad_rt", inference="consecutive").method_config
    assert fixed.resolve_inference("gaussian_3d(3,1,1)").inference == "consecutive"
    # A window parity cannot serve stays consecutive.
    odd = TrainConfig(method="deepcad_rt", window_before=2, window_after=2, window_out_frames=8).method_config
    assert odd.resolve_inference("gaussian_3d(3,1,1)").inference == "consecutive"
