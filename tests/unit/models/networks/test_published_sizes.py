"""Parameter counts at the published defaults, against the reference implementations."""

from __future__ import annotations

import pytest
import torch

from livedenoise.models.networks import UNet, get_network


def _count(net: torch.nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


@pytest.mark.parametrize(
    ("name", "config", "reference"),
    [
        # pytorch-3dunet UNet3D as used by DeepCAD (f_maps 64) and DeepCAD-RT (fmap 16), measured.
        ("unet3d", {"base": 64, "levels": 4, "style": "deepcad"}, 16_315_585),
        ("unet3d", {"base": 16, "levels": 4, "style": "deepcad"}, 1_020_337),
        # DeepInterpolation unet_single_1024 with 60 input frames, counted by hand from the Keras layers.
        ("deepinterpolation_unet", {}, 15_700_000),
        # SUPPORT with the model default (unet channels 16..256).
        ("support_net", {}, 1_400_000),
        ("support_net", {"bs_size": 1}, 1_400_000),
    ],
)
def test_parameter_count_matches_reference(name: str, config: dict[str, object], reference: int) -> None:
    assert abs(_count(get_network(name, **config)) - reference) <= 0.05 * reference


def test_standard_unet_is_unchanged() -> None:
    # The default style keeps every conv of a level at the level's width (23.3 M / 1.46 M parameters).
    assert _count(UNet(3, 1, 1, base=64, levels=4)) == 23_339_521
    assert _count(get_network("unet3d", base=16, levels=4)) == 1_459_585


def test_deepcad_style_halves_the_first_encoder_conv() -> None:
    net = UNet(3, 1, 1, base=16, levels=4, style="deepcad")
    assert [m.out_channels for m in net.inc if isinstance(m, torch.nn.Conv3d)] == [8, 16]
    assert [m.out_channels for m in net.downs[0][1] if isinstance(m, torch.nn.Conv3d)] == [16, 32]


@pytest.mark.parametrize("levels", [2, 3])
def test_deepcad_style_shapes(levels: int) -> None:
    net = get_network("unet3d", base=4, levels=levels, style="deepcad")
    m = net.size_multiple
    x = torch.randn(1, 1, 2 * m, 3 * m, 5 * m)
    assert net(x).shape == x.shape


def test_unknown_style_raises() -> None:
    with pytest.raises(ValueError, match="unknown U-Net style 'nope'"):
        UNet(3, 1, 1, style="nope")  # type: ignore[arg-type]
