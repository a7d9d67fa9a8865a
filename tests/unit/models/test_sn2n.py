"""SN2N: the diagonal views are exact and disjoint, the Fourier up-sampling is the cosine series of the mirrored
view, the loss is the reference's, and bad configs say how to fix them."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from pydantic import ValidationError
from torch import nn

from livedenoise.clients.model_spec import WindowSpec
from livedenoise.models.config import TrainConfig
from livedenoise.models.networks import get_network
from livedenoise.models.recipes import get_recipe
from livedenoise.models.recipes.sn2n import exchange_patches
from livedenoise.models.sampling.diagonal import diagonal_pair, fourier_upsample2


def _cosine_series_upsample(x: np.ndarray) -> np.ndarray:
    """Direct computation along the last axis: the DCT-II coefficients of ``x`` (``n`` samples at ``0..n-1``) and
    their cosine series evaluated at the ``2n`` full-resolution pixel centres ``-1/4 + k/2``."""
    n = x.shape[-1]
    j = np.arange(n)
    coeffs = [np.sum(x * np.cos(math.pi * k * (2 * j + 1) / (2 * n)), axis=-1) for k in range(n)]
    t = -0.25 + 0.5 * np.arange(2 * n)
    out = coeffs[0][..., None] * np.ones_like(t)
    for k in range(1, n):
        out = out + 2 * coeffs[k][..., None] * np.cos(math.pi * k * (2 * t + 1) / (2 * n))
    return out / n


def test_diagonal_pair_averages_each_cells_two_diagonals() -> None:
    x = torch.randn(2, 3, 6, 8, dtype=torch.float64)
    a, b = diagonal_pair(x)
    assert a.shape == b.shape == (2, 3, 3, 4)
    for i in range(3):
        for j in range(4):
            ul, ur = x[..., 2 * i, 2 * j], x[..., 2 * i, 2 * j + 1]
            dl, dr = x[..., 2 * i + 1, 2 * j], x[..., 2 * i + 1, 2 * j + 1]
            assert torch.equal(a[..., i, j], (ul + dr) / 2)
            assert torch.equal(b[..., i, j], (ur + dl) / 2)
    with pytest.raises(ValueError, match="even height and width, got 5x8"):
        diagonal_pair(torch.zeros(1, 5, 8))


@pytest.mark.parametrize("shape", [(1, 1), (2, 2), (3, 5), (4, 4), (7, 6), (2, 3, 8, 9)])
def test_fourier_upsample_is_the_cosine_series_of_the_mirrored_image(shape: tuple[int, ...]) -> None:
    x = np.random.default_rng(0).normal(size=shape)
    expected = np.swapaxes(_cosine_series_upsample(np.swapaxes(_cosine_series_upsample(x), -1, -2)), -1, -2)
    up = fourier_upsample2(torch.from_numpy(x))
    assert up.shape == (*shape[:-2], 2 * shape[-2], 2 * shape[-1]) and up.dtype == torch.float64
    np.testing.assert_allclose(up.numpy(), expected, atol=1e-12)
    up32 = fourier_upsample2(torch.from_numpy(x).float())
    np.testing.assert_allclose(up32.numpy(), expected, atol=1e-5)


def test_fourier_upsample_keeps_the_mean_and_every_cosine_the_view_holds() -> None:
    n = 8
    j = torch.arange(n, dtype=torch.float64)
    t = -0.25 + 0.5 * torch.arange(2 * n, dtype=torch.float64)
    for k in range(n):
        row = torch.cos(math.pi * k * (2 * j + 1) / (2 * n))
        image = row[:, None] * row[None, :]
        expected = torch.cos(math.pi * k * (2 * t + 1) / (2 * n))
        assert torch.allclose(fourier_upsample2(image), expected[:, None] * expected[None, :], atol=1e-12)
    x = torch.rand(3, 10, 6, dtype=torch.float64)
    assert torch.allclose(fourier_upsample2(x).mean(dim=(-2, -1)), x.mean(dim=(-2, -1)), atol=1e-12)
    assert torch.allclose(fourier_upsample2(torch.full((4, 6), 2.5)), torch.full((8, 12), 2.5), atol=1e-6)
    with pytest.raises(TypeError, match="floating-point"):
        fourier_upsample2(torch.zeros(2, 2, dtype=torch.int64))


@pytest.mark.parametrize(("batch", "share"), [(3, 0.0), (3, 1.0), (1, 1.0)])
def test_the_two_views_never_share_an_input_pixel(batch: int, share: float) -> None:
    """Every pixel of the batch feeds exactly one view: A only the (even, even) and (odd, odd) pixels of every
    crop, B only the others, also after the patch exchange (which moves 2x2 cells whole)."""
    recipe = get_recipe("sn2n", base_channels=4, levels=2, patch_xy=16, patch_exchange=share)
    patches = torch.randn(batch, 1, 16, 12, dtype=torch.float64, requires_grad=True)
    weights = torch.rand(batch, 1, 16, 12, dtype=torch.float64)
    yy, xx = torch.meshgrid(torch.arange(16), torch.arange(12), indexing="ij")
    diagonal = ((yy + xx) % 2 == 0).expand(batch, 1, 16, 12)
    for seed in range(4):
        view_a, view_b = recipe.views(patches, torch.Generator().manual_seed(seed))
        (grad_a,) = torch.autograd.grad((view_a * weights).sum(), patches, retain_graph=True)
        (grad_b,) = torch.autograd.grad((view_b * weights).sum(), patches)
        assert float(grad_a[~diagonal].abs().max()) == 0.0 and float(grad_b[diagonal].abs().max()) == 0.0
        if share == 0.0:  # without exchange every pixel feeds its own crop's view, and every one is used
            assert bool((grad_a[diagonal] != 0).all()) and bool((grad_b[~diagonal] != 0).all())


@pytest.mark.parametrize("batch", [1, 4])
def test_patch_exchange_moves_a_half_size_square_of_whole_cells(batch: int) -> None:
    x = torch.arange(batch * 16 * 20, dtype=torch.float32).view(batch, 1, 16, 20)
    g = torch.Generator().manual_seed(0)
    assert torch.equal(exchange_patches(x, 0.0, g), x)
    out = exchange_patches(x, 1.0, g)
    source = out.long()
    crop, rest = source // 320, source % 320
    row, col = rest // 20, rest % 20
    yy, xx = torch.meshgrid(torch.arange(16), torch.arange(20), indexing="ij")
    # Each pixel comes from a pixel of the same parity (so from the same place in a 2x2 cell).
    assert bool(((row % 2 == yy % 2) & (col % 2 == xx % 2)).all())
    for i in range(batch):
        moved = (crop[i, 0] != i) if batch > 1 else (row[0, 0] != yy) | (col[0, 0] != xx)
        ys, xs = torch.nonzero(moved, as_tuple=True)
        if batch > 1:  # an 8x8 square (half of the 16-pixel side) at even offsets, from one other crop
            assert int(moved.sum()) == 64 and len(set(crop[i, 0][moved].tolist())) == 1
            assert int(ys.min()) % 2 == 0 and int(xs.min()) % 2 == 0
            assert int(ys.max() - ys.min()) == 7 and int(xs.max() - xs.min()) == 7
        else:  # two squares traded places within the crop (nothing, if the draw put them on each other)
            assert int(moved.sum()) <= 128 and bool((crop == 0).all())


class _Affine(nn.Module):
    """Stands in for a network: ``w * x + c``."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.tensor(0.7))
        self.c = nn.Parameter(torch.tensor(0.2))
        self.seen: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(x.detach().clone())
        return self.w * x + self.c


@pytest.mark.parametrize(("loss", "lam"), [("l1", 1.0), ("l2", 2.5), ("l1_l2", 0.0)])
def test_training_step_is_the_symmetric_self_constrained_loss(loss: str, lam: float) -> None:
    recipe = get_recipe("sn2n", base_channels=4, levels=2, patch_xy=16, loss=loss, constraint_weight=lam)
    patches = torch.randn(3, 1, 16, 16)
    model = _Affine()
    out = recipe.training_step(model, patches, torch.Generator().manual_seed(1))
    view_a, view_b = recipe.views(patches, torch.Generator().manual_seed(1))
    assert len(model.seen) == 2 and torch.equal(model.seen[0], view_a) and torch.equal(model.seen[1], view_b)
    l1 = lambda p, t: (p - t).abs().mean()  # noqa: E731
    l2 = lambda p, t: (p - t).square().mean()  # noqa: E731
    dist = {"l1": l1, "l2": l2, "l1_l2": lambda p, t: 0.5 * l1(p, t) + 0.5 * l2(p, t)}[loss]
    with torch.no_grad():
        fa, fb = model(view_a), model(view_b)
        expected = (dist(fa, view_b) + dist(fb, view_a) + lam * dist(fb, fa)) / (2 + lam)
    assert float(out.loss.detach()) == pytest.approx(float(expected), rel=1e-6)
    assert set(out.logs) == {"pair", "constraint"}


def test_window_is_one_frame_and_the_served_graph_is_the_network() -> None:
    recipe = get_recipe("sn2n", base_channels=4, levels=3, patch_xy=16)
    assert recipe.window() == WindowSpec(before=0, after=0, out_frames=1, spatial_multiple=4)
    assert recipe.window().latency_frames == 0 and recipe.training_window().frames == 1
    model = recipe.build_model().eval()
    graph = recipe.export_module(model)
    frames = torch.randn(2, 1, 12, 20)
    with torch.no_grad():
        assert torch.equal(graph(frames), model(frames)) and graph(frames).shape == (2, 1, 12, 20)


def test_network_is_the_references_and_its_sigmoid_head_is_optional() -> None:
    net = get_network("sn2n_unet")
    assert sum(p.numel() for p in net.parameters()) == 17_266_241  # the reference's Unet_2d, counted
    widths = [enc[0].out_channels for enc in net.encoders]
    assert widths == [64, 128, 256, 512, 512]
    torch.manual_seed(0)
    small = get_network("sn2n_unet", base=4, levels=3, sigmoid=True).eval()
    with torch.no_grad():
        y = small(torch.randn(1, 1, 8, 12) * 10)
    assert y.shape == (1, 1, 8, 12) and float(y.min()) > 0 and float(y.max()) < 1


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"patch_xy": 40}, "patch_xy=40 is not a multiple of 16, which the U-Net needs; use patch_xy=32 or 48"),
        ({"levels": 3, "patch_xy": 18}, "patch_xy=18 is not a multiple of 4"),
        ({"base_channels": 256}, "use base_channels <= 128 or levels=4"),
        ({"constraint_weight": -1.0}, "constraint_weight"),
        ({"loss": "l3"}, "loss"),
        ({"patch_exchange": 1.5}, "patch_exchange"),
    ],
)
def test_bad_sn2n_configs_name_the_field_and_the_fix(fields: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        TrainConfig(method="sn2n", **fields)
