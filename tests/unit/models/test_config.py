from __future__ import annotations

import pytest
from pydantic import ValidationError

from livedenoise.clients.model_spec import WindowSpec
from livedenoise.models.config import TrainConfig
from livedenoise.models.recipes import get_recipe, list_recipes


def test_defaults_give_the_deepcad_rt_window() -> None:
    cfg = TrainConfig(patch_t=32)
    assert cfg.method == "deepcad_rt" and cfg.lr == 1e-3
    assert get_recipe("deepcad_rt").window(cfg) == WindowSpec(before=8, after=8, out_frames=16, spatial_multiple=4)
    assert get_recipe("deepcad_rt").window(TrainConfig()) == WindowSpec(4, 4, 8, 4)
    assert TrainConfig(**cfg.to_json_dict()) == cfg


def test_patch_t_not_multiple_of_four_says_how_to_fix() -> None:
    with pytest.raises(ValidationError, match=r"patch_t=30 is not a multiple of 4.*use 28 or 32"):
        TrainConfig(patch_t=30)


def test_patch_xy_must_suit_the_levels() -> None:
    with pytest.raises(ValidationError, match=r"patch_xy=60 is not a multiple of 8.*levels=4.*56 or 64"):
        TrainConfig(patch_xy=60, levels=4)
    with pytest.raises(ValidationError, match=r"patch_t=36 is not a multiple of 8"):
        TrainConfig(patch_t=36, levels=4)


def test_window_override_is_checked() -> None:
    cfg = TrainConfig(patch_t=32, window_before=4, window_after=4, window_out_frames=24)
    assert get_recipe("deepcad_rt").window(cfg).window_length == 32
    with pytest.raises(ValidationError, match=r"4\+23\+4 = 31 is not a multiple of 4"):
        TrainConfig(window_before=4, window_after=4, window_out_frames=23)


def test_unknown_method_lists_known_ones() -> None:
    assert "deepcad_rt" in list_recipes()
    with pytest.raises(ValidationError, match="unknown method 'n2v'; known methods: deepcad_rt"):
        TrainConfig(method="n2v")
    with pytest.raises(ValueError, match="known methods"):
        get_recipe("n2v")


@pytest.mark.parametrize(
    "bad", [{"lr": 0}, {"betas": (0.5, 1.0)}, {"device": "tpu"}, {"batch_size": 0}, {"patch_size": 3}]
)
def test_bad_fields_are_rejected(bad: dict) -> None:
    with pytest.raises(ValidationError, match=next(iter(bad))):
        TrainConfig(**bad)


def test_every_recipe_has_a_window_and_vice_versa() -> None:
    from livedenoise.models.windows import known_methods

    assert known_methods() == list_recipes()


def test_config_validation_does_not_import_torch() -> None:
    import subprocess
    import sys

    code = (
        "import sys; from livedenoise.models.config import TrainConfig; TrainConfig(patch_t=16); "
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


def test_loss_choices_match_the_loss_registry() -> None:
    import typing

    from livedenoise.models.losses import LOSSES

    annotation = TrainConfig.model_fields["loss"].annotation
    literal = next(a for a in typing.get_args(annotation) if typing.get_origin(a) is typing.Literal)
    assert set(typing.get_args(literal)) == set(LOSSES)
    with pytest.raises(ValueError, match="loss"):
        TrainConfig(loss="huber")
