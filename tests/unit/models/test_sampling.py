from __future__ import annotations

import pytest
import torch

from livedenoise.models.losses import l1, l1_l2, l2
from livedenoise.models.sampling import OddEvenSplit, Sampler, dihedral, random_dihedral


def _patch(b: int = 6, t: int = 8) -> torch.Tensor:
    return torch.arange(b * t * 2 * 3, dtype=torch.float32).reshape(b, t, 2, 3)


def test_split_without_and_with_swap() -> None:
    patch = _patch()
    gen = torch.Generator().manual_seed(0)
    pair = OddEvenSplit(swap_p=0.0)(patch, gen)
    torch.testing.assert_close(pair.input, patch[:, 0::2])
    torch.testing.assert_close(pair.target, patch[:, 1::2])
    assert pair.mask is None
    pair = OddEvenSplit(swap_p=1.0)(patch, gen)
    torch.testing.assert_close(pair.input, patch[:, 1::2])
    assert OddEvenSplit().raw_frames(16) == 32
    assert isinstance(OddEvenSplit(), Sampler)


def test_random_swap_is_per_sample_and_seeded() -> None:
    patch = _patch(b=64)
    a = OddEvenSplit()(patch, torch.Generator().manual_seed(3))
    b = OddEvenSplit()(patch, torch.Generator().manual_seed(3))
    torch.testing.assert_close(a.input, b.input)
    swapped = (a.input == patch[:, 1::2]).flatten(1).all(dim=1)
    plain = (a.input == patch[:, 0::2]).flatten(1).all(dim=1)
    assert bool((swapped ^ plain).all())  # each sample is exactly one of the two
    assert 10 < int(swapped.sum()) < 54  # p = 0.5
    torch.testing.assert_close(torch.where(swapped.view(-1, 1, 1, 1), a.input, a.target), patch[:, 1::2])


def test_split_rejects_odd_frame_count() -> None:
    with pytest.raises(ValueError, match="even frame count"):
        OddEvenSplit()(torch.zeros(1, 7, 4, 4), torch.Generator())


def test_dihedral_group_has_eight_distinct_elements() -> None:
    x = torch.randn(2, 5, 5)
    outs = [dihedral(x, k) for k in range(8)]
    assert len({tuple(o.flatten().tolist()) for o in outs}) == 8
    ys = random_dihedral(torch.randn(4, 3, 6, 10), torch.Generator().manual_seed(0))
    assert ys.shape == (4, 3, 6, 10)  # non-square: only shape-preserving transforms


def test_losses() -> None:
    pred, target = torch.tensor([0.0, 2.0]), torch.tensor([1.0, 0.0])
    assert float(l1(pred, target)) == pytest.approx(1.5)
    assert float(l2(pred, target)) == pytest.approx(2.5)
    assert float(l1_l2(pred, target)) == pytest.approx(2.0)
    assert float(l2(pred, target, mask=torch.tensor([1.0, 0.0]))) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="shape"):
        l1(pred, target[:1])
