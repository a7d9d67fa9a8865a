"""Blind pixels of DeepVID: random ones for training, a fixed pattern inside the served graph."""

from __future__ import annotations

import pytest
import torch

from livedenoise.models.sampling.blind_pixels import (
    FixedBlindPixels,
    blind_pixel_count,
    fixed_blind_mask,
    random_blind_pixels,
)


def _frames(b: int = 5, h: int = 12, w: int = 10) -> torch.Tensor:
    return torch.arange(b * h * w, dtype=torch.float32).reshape(b, h, w)  # every value unique


@pytest.mark.parametrize("method", ["replace", "zeros"])
def test_random_blind_pixels_change_exactly_the_masked_pixels(method: str) -> None:
    frames = _frames() + 1.0  # no zeros, so 'zeros' changes every blind pixel
    out, mask = random_blind_pixels(frames, 0.1, method, torch.Generator().manual_seed(0))  # type: ignore[arg-type]
    changed = out != frames
    assert torch.equal(changed, mask.bool()), "blind pixels, and only they, lose their own value"
    assert (mask.sum(dim=(1, 2)) == blind_pixel_count(0.1, 120)).all()
    if method == "replace":  # values come from the same frame
        for i in range(frames.shape[0]):
            assert set(out[i][mask[i].bool()].tolist()) <= set(frames[i].flatten().tolist())


def test_random_blind_pixels_are_seeded_and_differ_between_samples() -> None:
    a = random_blind_pixels(_frames(), 0.2, "replace", torch.Generator().manual_seed(4))
    b = random_blind_pixels(_frames(), 0.2, "replace", torch.Generator().manual_seed(4))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[1][0], a[1][1])


@pytest.mark.parametrize(("h", "w", "ratio"), [(128, 128, 0.1), (511, 511, 0.005), (190, 211, 0.1), (33, 47, 0.05)])
def test_fixed_pattern_has_the_ratio_and_no_lattice(h: int, w: int, ratio: float) -> None:
    mask = fixed_blind_mask(h, w, ratio)
    assert mask.shape == (h, w)
    assert abs(float(mask.float().mean()) - ratio) < 0.3 * ratio + 2.0 / (h * w)
    rows = mask.float().mean(dim=1)
    assert float(rows.max()) < 0.5, "no row is mostly blind"


def test_fixed_blind_pixels_touch_only_the_centre_slot_and_are_deterministic() -> None:
    window = torch.randn(2, 5, 40, 36)
    layer = FixedBlindPixels(2, 0.1, "replace")
    out = layer(window)
    assert torch.equal(out, layer(window))
    assert torch.equal(out[:, [0, 1, 3, 4]], window[:, [0, 1, 3, 4]])
    mask = fixed_blind_mask(40, 36, 0.1)
    assert torch.equal(out[:, 2][:, ~mask], window[:, 2][:, ~mask])
    mirrored = window[:, 2].flip(-1).flip(-2)
    assert torch.equal(out[:, 2][:, mask], mirrored[:, mask])
    zeros = FixedBlindPixels(2, 0.1, "zeros")(window)
    assert float(zeros[:, 2][:, mask].abs().max()) == 0.0


def test_bad_blind_pixel_settings_are_named() -> None:
    with pytest.raises(ValueError, match="ratio"):
        FixedBlindPixels(0, 0.0, "replace")
    with pytest.raises(ValueError, match="unknown blind-pixel method"):
        random_blind_pixels(_frames(), 0.1, "noise", torch.Generator())  # type: ignore[arg-type]
