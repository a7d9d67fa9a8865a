"""Every method on the recipe contract: published sizes, the self-supervision property, and a tiny run."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from livedenoise.models.catalogue import list_methods
from livedenoise.models.config import TrainConfig
from livedenoise.models.recipes import Recipe, get_recipe, recipe_for

# Published defaults and reference parameter counts (METHODS.md; the reference code built and counted).
PUBLISHED = {
    "deepcad_rt": ({"base_channels": 16, "levels": 4}, 1_020_337),
    "deepcad": ({}, 16_315_585),
    "deepinterpolation": ({}, 15_700_000),
    "support": ({}, 1_400_000),
}


def _count(recipe: Recipe) -> int:
    return sum(p.numel() for p in recipe.build_model().parameters())


def test_every_registered_method_has_a_published_size_check() -> None:
    assert set(PUBLISHED) == set(list_methods())


@pytest.mark.parametrize("method", sorted(PUBLISHED))
def test_parameter_count_at_the_published_default_is_within_5_percent(method: str) -> None:
    fields, reference = PUBLISHED[method]
    count = _count(get_recipe(method, **fields))
    assert abs(count - reference) / reference < 0.05, f"{method}: {count} parameters, reference {reference}"


def test_recipe_is_built_from_the_validated_config() -> None:
    cfg = TrainConfig(method="support", pre_post_frame=4, unet_channels=[4, 8], blind_channels=8, depth=3)
    recipe = recipe_for(cfg.method_config)
    assert recipe.name == "support" and recipe.window() == cfg.window()
    assert recipe.training_window().frames == 9 and recipe.training_window().centre == 4
    name, kwargs = recipe.network()
    assert name == "support_net" and kwargs["frames"] == 9


class _Capture(nn.Module):
    """Stands in for a network: records what it is given and predicts zeros."""

    def __init__(self, out_frames: int | None = None) -> None:
        super().__init__()
        self.seen: list[torch.Tensor] = []
        self.out_frames = out_frames
        self.w = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(x.detach().clone())
        y = x[:, : self.out_frames] if self.out_frames else x
        return torch.zeros_like(y) + self.w


def test_odd_even_split_never_puts_a_target_frame_in_the_input() -> None:
    recipe = get_recipe("deepcad_rt", patch_t=8, patch_xy=8, levels=2)
    frames = recipe.training_window().frames
    patches = torch.arange(frames, dtype=torch.float32).view(1, frames, 1, 1).expand(6, frames, 8, 8).contiguous()
    model = _Capture()
    out = recipe.training_step(model, patches, torch.Generator().manual_seed(0))
    for sample in model.seen[0]:
        values = set(sample[:, 0, 0].tolist())
        assert values in ({float(v) for v in range(0, frames, 2)}, {float(v) for v in range(1, frames, 2)})
    assert out.loss > 0  # the zero prediction is scored against the other half, not against itself


@pytest.mark.parametrize(
    ("method", "fields"),
    [
        ("deepinterpolation", {"pre_post_frame": 3, "base_channels": 4, "levels": 3, "patch_xy": 16}),
        (
            "deepinterpolation",
            {"pre_post_frame": 4, "pre_post_omission": 1, "base_channels": 4, "levels": 2, "patch_xy": 16},
        ),
        (
            "support",
            {"pre_post_frame": 3, "unet_channels": [4, 8, 16], "blind_channels": 8, "depth": 3, "patch_xy": 16},
        ),
        (
            "support",
            {
                "pre_post_frame": 2,
                "unet_channels": [4, 8],
                "blind_channels": 8,
                "depth": 3,
                "bs_size": 3,
                "patch_xy": 16,
            },
        ),
    ],
)
def test_blind_spot_output_does_not_depend_on_its_own_noisy_value(method: str, fields: dict) -> None:
    """Perturb the centre frame at (y, x): the served output at (y, x) does not move (for DeepInterpolation the
    whole centre frame, and the omitted neighbours, have no influence at all)."""
    torch.manual_seed(0)
    recipe = get_recipe(method, **fields)
    graph = recipe.export_module(recipe.build_model()).eval()
    n = recipe.window().before
    x = torch.randn(1, 2 * n + 1, 16, 16, requires_grad=True)
    graph(x)[0, 0, 8, 8].backward()
    grad = x.grad[0].abs()
    assert float(grad[:n].sum() + grad[n + 1 :].sum()) > 0, "the neighbouring frames must matter"
    bs = fields.get("bs_size", 1) // 2
    assert float(grad[n, 8 - bs : 9 + bs, 8 - bs : 9 + bs].max()) == 0.0
    if method == "deepinterpolation":
        k = fields.get("pre_post_omission", 0)
        assert float(grad[n - k : n + k + 1].max()) == 0.0


def test_training_step_of_a_centre_target_method_targets_the_raw_centre() -> None:
    recipe = get_recipe(
        "support", pre_post_frame=2, unet_channels=[4, 8], blind_channels=8, depth=3, patch_xy=8, loss="l1_l2"
    )
    patches = torch.arange(5, dtype=torch.float32).view(1, 5, 1, 1).expand(2, 5, 8, 8).contiguous()
    out = recipe.training_step(_Capture(out_frames=1), patches, torch.Generator())
    # zero prediction against the centre frame (value 2): 0.5 * |2| + 0.5 * 2**2
    assert float(out.loss.detach()) == pytest.approx(0.5 * 2 + 0.5 * 4)
