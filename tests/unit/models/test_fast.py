"""FAST: the pair sampling never hands the network a label pixel, and the served estimates are the reference's."""

from __future__ import annotations

import pytest
import torch
from pydantic import ValidationError

from livedenoise.models.config import TrainConfig
from livedenoise.models.recipes import get_recipe
from livedenoise.models.recipes.fast import FastFinal, final_weights, projection_loss
from livedenoise.models.sampling.neighbour_pairs import draw_pairs, subsample


def _unique_patches(b: int, frames: int, h: int, w: int) -> torch.Tensor:
    return torch.arange(b * frames * h * w, dtype=torch.float32).view(b, frames, h, w)


def _shared_values(a: torch.Tensor, b: torch.Tensor) -> int:
    return int(torch.isin(a.flatten(), b.flatten()).sum())


@pytest.mark.parametrize("pairing", ["temporal", "same_frame"])
def test_no_input_pixel_of_a_step_is_a_label_pixel(pairing: str) -> None:
    recipe = get_recipe("fast", frames=4, features=4, levels=2, patch_xy=16, pairing=pairing)
    patches = _unique_patches(3, 5, 16, 16)
    for seed in range(5):
        _, _, sub_input, sub_label = recipe.sub_pairs(patches, torch.Generator().manual_seed(seed))
        assert sub_input.shape == sub_label.shape == (3, 4, 8, 8)
        for b in range(3):
            assert _shared_values(sub_input[b], sub_label[b]) == 0
        # temporal: each position pairs frames i and i + 1, one as input and the other as label;
        # same_frame: position i is frame i, input and label.
        frame_of = lambda v: (v.long() // (16 * 16)) % 5  # noqa: E731
        fi, fl = frame_of(sub_input), frame_of(sub_label)
        i = torch.arange(4).view(1, 4, 1, 1)
        if pairing == "temporal":
            assert bool((((fi == i) & (fl == i + 1)) | ((fi == i + 1) & (fl == i))).all())
        else:
            assert bool(((fi == i) & (fl == i)).all())


def test_a_pair_drawn_per_channel_would_leak_label_pixels_into_the_input() -> None:
    """The reference's per-channel draw, for contrast: the check above would catch it."""
    recipe = get_recipe("fast", frames=4, features=4, levels=2, patch_xy=16)
    patches = _unique_patches(1, 5, 16, 16)
    g = torch.Generator().manual_seed(0)
    inputs, labels = recipe.pairs(patches, g)
    sub_in = torch.cat([subsample(inputs[:, k : k + 1], draw_pairs(1, 16, 16, g)[0]) for k in range(4)], dim=1)
    sub_lab = torch.cat([subsample(labels[:, k : k + 1], draw_pairs(1, 16, 16, g)[1]) for k in range(4)], dim=1)
    assert _shared_values(sub_in, sub_lab) > 0


def test_subsample_takes_the_indexed_pixel_of_every_cell() -> None:
    x = torch.arange(16, dtype=torch.float32).view(1, 1, 4, 4)
    index = torch.tensor([[[0, 1], [2, 3]]])
    assert subsample(x, index)[0, 0].tolist() == [[0.0, 3.0], [12.0, 15.0]]
    first, second = draw_pairs(2, 8, 8, torch.Generator().manual_seed(0))
    assert bool((first != second).all())
    # Each pair is two 4-neighbours: same row or same column of the cell, never the diagonal.
    assert bool(((first // 2 == second // 2) | (first % 2 == second % 2)).all())


def test_final_weights_are_the_reference_running_average() -> None:
    assert final_weights(4) == [0.125, 0.125, 0.25, 0.5]
    for c in range(2, 9):
        assert sum(final_weights(c)) == pytest.approx(1.0)


@pytest.mark.parametrize("out_frames", [1, 3])
def test_final_estimate_weights_the_four_windows_that_hold_each_frame(out_frames: int) -> None:
    torch.manual_seed(0)
    recipe = get_recipe("fast", frames=4, features=4, levels=2, out_frames=out_frames)
    net = recipe.build_model().eval()
    graph = recipe.export_module(net)
    assert isinstance(graph, FastFinal) and recipe.window().window_length == 6 + out_frames
    window = torch.randn(2, 6 + out_frames, 12, 20)
    with torch.no_grad():
        served = graph(window)
        # The final values, then the causal estimates of the same frames (ModelSpec.estimates, per series).
        assert served.shape == (2, 2 * out_frames, 12, 20)
        assert [(e.name, e.after) for e in recipe.estimates()] == [("final", 3), ("causal", 0)]
        for k in range(out_frames):  # frame k of the block is window frame 3 + k
            centred = window[:, k : k + 7]
            expected = sum(w * net(centred[:, j : j + 4])[:, 3 - j] for j, w in enumerate(final_weights(4)))
            assert torch.allclose(served[:, k], expected, atol=1e-6)
            assert torch.allclose(served[:, out_frames + k], net(window[:, k : k + 4])[:, 3], atol=1e-6)
        # The causal planes read none of the window's last 3 planes (frames not yet arrived for such a series).
        changed = window.clone()
        changed[:, -3:] = torch.randn(2, 3, 12, 20)
        assert torch.equal(graph(changed)[:, out_frames:], served[:, out_frames:])


@pytest.mark.parametrize("out_frames", [1, 3])
def test_causal_estimate_is_the_newest_channel_of_the_window_ending_at_the_frame(out_frames: int) -> None:
    torch.manual_seed(0)
    recipe = get_recipe("fast", frames=4, features=4, levels=2, estimate="causal", out_frames=out_frames)
    w = recipe.window()
    assert (w.before, w.after, w.latency_frames) == (3, 0, out_frames - 1)
    net = recipe.build_model().eval()
    window = torch.randn(1, 3 + out_frames, 8, 8)
    with torch.no_grad():
        served = recipe.export_module(net)(window)
        assert served.shape == (1, out_frames, 8, 8) and [e.name for e in recipe.estimates()] == ["causal"]
        for k in range(out_frames):
            assert torch.allclose(served[:, k], net(window[:, k : k + 4])[:, 3], atol=1e-6)


def test_projection_loss_compares_crop_means() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 4, 32, 32)
    assert float(projection_loss(x, x.clone(), g)) == 0.0
    assert float(projection_loss(x + 0.5, x, g)) == pytest.approx(0.5, abs=1e-5)
    assert float(projection_loss(x[..., :8, :8] + 1.0, x[..., :8, :8], g)) == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize(
    ("fields", "message"),
    [({"frames": 3}, "must be even"), ({"patch_xy": 36}, "patch_xy=36 is not a multiple of 8")],
)
def test_bad_fast_configs_name_the_field(fields: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        TrainConfig(method="fast", **fields)
