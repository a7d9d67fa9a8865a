from __future__ import annotations

from pathlib import Path

import pytest
import torch

from livedenoise.models.networks import UNet, get_network, list_networks, register_network
from livedenoise.models.networks.blocks import upsample_nearest2x
from livedenoise.models.networks.registry import _NETWORKS


def test_builtin_networks_are_listed() -> None:
    assert {"unet2d", "unet3d"} <= set(list_networks())


def test_unknown_and_duplicate_names_raise() -> None:
    with pytest.raises(ValueError, match="unknown network 'nope'.*unet3d"):
        get_network("nope")
    with pytest.raises(ValueError, match="already registered"):
        register_network("unet3d")(lambda: torch.nn.Identity())


def test_register_custom_network() -> None:
    @register_network("test_identity_net")
    def build() -> torch.nn.Module:
        return torch.nn.Identity()

    try:
        assert isinstance(get_network("test_identity_net"), torch.nn.Identity)
        assert "test_identity_net" in list_networks()
    finally:
        del _NETWORKS["test_identity_net"]


@pytest.mark.parametrize("levels", [1, 2, 3])
def test_unet3d_shapes_on_odd_multiples(levels: int) -> None:
    net = get_network("unet3d", base=4, levels=levels)
    m = 2 ** (levels - 1)
    assert net.size_multiple == m
    x = torch.randn(2, 1, 3 * m, 5 * m, 7 * m)
    assert net(x).shape == x.shape


def test_unet2d_frames_as_channels() -> None:
    net = get_network("unet2d", in_channels=5, out_channels=1, base=4, levels=3, norm="group")
    assert net.size_multiple == 4
    assert net(torch.randn(3, 5, 12, 20)).shape == (3, 1, 12, 20)


def test_bad_unet_arguments() -> None:
    with pytest.raises(ValueError, match="dims"):
        UNet(4, 1, 1)
    with pytest.raises(ValueError, match="unknown norm"):
        UNet(2, 1, 1, norm="layer")


@pytest.mark.parametrize("shape", [(1, 3, 4, 5, 6), (2, 1, 3, 3, 3), (1, 2, 5, 7)])
def test_upsample_nearest2x_equals_interpolate(shape: tuple[int, ...]) -> None:
    # The 3-D path is written as a broadcast (it exports faster than Resize); it must stay the same values.
    x = torch.randn(*shape)
    expected = torch.nn.functional.interpolate(x, scale_factor=2.0, mode="nearest")
    assert torch.equal(upsample_nearest2x(x), expected)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_3d_unet_exports_without_a_5d_resize(tmp_path: Path) -> None:
    import onnx

    net = UNet(3, 1, 1, base=4, levels=3).eval()
    path = tmp_path / "u.onnx"
    with torch.no_grad():
        torch.onnx.export(net, (torch.randn(1, 1, 8, 16, 16),), str(path), dynamo=False, opset_version=17)
    graph = onnx.shape_inference.infer_shapes(onnx.load(str(path))).graph
    ranks = {v.name: len(v.type.tensor_type.shape.dim) for v in [*graph.value_info, *graph.input]}
    resized = [ranks[node.input[0]] for node in graph.node if node.op_type == "Resize"]
    assert resized and set(resized) == {4}, resized


@pytest.mark.parametrize(
    ("norm", "levels", "start", "count", "planes", "crops"),
    [
        ("none", 3, 4, 8, 16, True),  # DeepCAD-RT's served window
        ("none", 2, 3, 3, 10, True),  # odd start: the coarse frames are cut between two fine ones
        ("batch", 3, 2, 4, 8, True),
        ("none", 3, 1, 8, 16, True),  # the kept frames reach the temporal padding: padded where the stack ends
        ("none", 3, 0, 4, 8, True),
        ("none", 3, 5, 3, 8, True),
        ("none", 3, 0, 16, 16, False),  # every frame kept: nothing to crop
        ("instance", 3, 4, 8, 16, False),  # statistics over every frame: no crop
        ("none", 1, 4, 8, 16, False),  # no upsampling level
    ],
)
def test_unet_forward_frames_equals_the_sliced_whole_output(
    norm: str, levels: int, start: int, count: int, planes: int, crops: bool
) -> None:
    torch.manual_seed(0)
    net = UNet(3, 1, 1, base=4, levels=levels, norm=norm, style="deepcad").eval()
    x = torch.randn(2, 1, planes, 12, 8)
    assert net.crops_frames(planes, start, count) is crops
    with torch.no_grad():
        torch.testing.assert_close(
            net.forward_frames(x, start, count), net(x)[:, :, start : start + count], rtol=1e-5, atol=1e-6
        )


def _parity_merge_by_hand(model: torch.nn.Module, x: torch.Tensor, before: int, out_frames: int) -> torch.Tensor:
    """Run the even and the odd frames as two stacks, interleave, and weigh each frame 1/2 with its two
    neighbours 1/4 each, one frame at a time."""
    with torch.no_grad():
        even, odd = model(x[:, 0::2]), model(x[:, 1::2])
    est = torch.empty_like(x)
    est[:, 0::2], est[:, 1::2] = even, odd
    frames = [0.5 * est[:, t] + 0.25 * est[:, t - 1] + 0.25 * est[:, t + 1] for t in range(before, before + out_frames)]
    return torch.stack(frames, dim=1)


@pytest.mark.parametrize("crop", [True, False])
@pytest.mark.parametrize(("before", "out_frames", "after"), [(4, 8, 4), (1, 6, 1), (5, 8, 3), (2, 4, 2)])
def test_parity_served_graph_equals_the_merge_by_hand(crop: bool, before: int, out_frames: int, after: int) -> None:
    from livedenoise.models.recipes import get_recipe

    recipe = get_recipe(
        "deepcad_rt",
        patch_t=8,
        window_before=before,
        window_out_frames=out_frames,
        window_after=after,
        crop_served_frames=crop,
        inference="parity",
    )
    model = recipe.build_model().eval()
    served = recipe.export_module(model).eval()
    planes = before + out_frames + after
    assert served.cropped is (crop and planes > 8)  # an 8-frame window's 4-frame stacks are read whole
    x = torch.randn(2, planes, 16, 12)
    with torch.no_grad():
        torch.testing.assert_close(served(x), _parity_merge_by_hand(model, x, before, out_frames), rtol=1e-5, atol=1e-6)


def test_consecutive_served_graph_is_cropped_and_recorded() -> None:
    from livedenoise.models.recipes import get_recipe

    for crop in (True, False):
        recipe = get_recipe("deepcad_rt", crop_served_frames=crop, inference="consecutive")
        model = recipe.build_model().eval()
        served = recipe.export_module(model).eval()
        assert served.cropped is crop
        window = recipe.window()
        x = torch.randn(1, window.input_planes, 16, 16)
        with torch.no_grad():
            torch.testing.assert_close(
                served(x), model(x)[:, window.before : window.before + window.out_frames], rtol=1e-5, atol=1e-6
            )


def test_parity_model_is_scored_on_held_out_frames_as_one_stack() -> None:
    """The held-out frames are two apart already: a parity model is scored on them as one stack, the spacing
    each of its stacks has when served at the full rate."""
    from livedenoise.models.networks.adapters import ParityWindowOutput, WindowOutput
    from livedenoise.models.recipes import get_recipe

    recipe = get_recipe("deepcad_rt", inference="parity")
    model = recipe.build_model().eval()
    assert isinstance(recipe.export_module(model), ParityWindowOutput)
    heldout = recipe.heldout_module(model)
    assert isinstance(heldout, WindowOutput)
    window = recipe.window()
    x = torch.randn(1, window.input_planes, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(
            heldout(x), model(x)[:, window.before : window.before + window.out_frames], rtol=1e-5, atol=1e-6
        )
    other = get_recipe("support")
    net = other.build_model().eval()
    assert type(other.heldout_module(net)) is type(other.export_module(net))
