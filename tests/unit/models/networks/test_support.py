from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import onnx
import pytest
import torch

from livedenoise.models.networks import get_network
from livedenoise.models.networks.support import HoleConv2d, SupportNet

# The ``onnx_roundtrip`` fixture (conftest.py): (net, channels, multiple) -> relative error.
ExportCheck = Callable[[torch.nn.Module, int, int], float]

TINY: dict[str, Any] = {
    "frames": 5,
    "unet_channels": (4, 8),
    "blind_channels": 8,
    "one_by_one_channels": (8, 4),
    "fusion_channels": (8, 4),
}


def _open_all_paths(net: torch.nn.Module) -> torch.nn.Module:
    """Positive weights on a positive input keep every ReLU active, so every structural path shows."""
    with torch.no_grad():
        for p in net.parameters():
            p.abs_().add_(1e-3)
    return net.double().eval()


def _changes_at(
    net: torch.nn.Module, x: torch.Tensor, pixels: list[tuple[int, int, int]], y: int, xx: int
) -> list[float]:
    """Relative change of output ``(y, xx)`` when input pixel ``(frame, y+dy, xx+dx)`` is raised by 1, per pixel."""
    moved = x.repeat(len(pixels) + 1, 1, 1, 1)
    for i, (frame, dy, dx) in enumerate(pixels, start=1):
        moved[i, frame, y + dy, xx + dx] += 1.0
    with torch.no_grad():
        out = net(moved)[:, 0, y, xx]
    return ((out[1:] - out[0]).abs() / out[0].abs()).tolist()


@pytest.mark.parametrize("bs_size", [1, 3, 5])
def test_blind_spot_is_bs_by_bs_on_the_centre_frame_only(bs_size: int) -> None:
    torch.manual_seed(0)
    net = _open_all_paths(get_network("support_net", bs_size=bs_size, **TINY))
    x = torch.rand(1, 5, 32, 32, dtype=torch.float64)
    r = bs_size // 2
    hole = [(2, dy, dx) for dy in range(-r, r + 1) for dx in range(-r, r + 1)]
    # Just outside the hole on the centre frame, and the same pixel of every neighbouring frame.
    seen = [(2, 0, r + 1), (2, r + 1, r + 1), (2, -r - 1, 0), *((f, 0, 0) for f in (0, 1, 3, 4))]
    changes = _changes_at(net, x, hole + seen, 16, 16)
    assert max(changes[: len(hole)]) < 1e-12
    assert min(changes[len(hole) :]) > 1e-8


def test_hole_stays_zero_through_training_and_out_of_the_state_dict() -> None:
    conv = HoleConv2d(2, 3, kernel=5, dilation=3)
    opt = torch.optim.AdamW(conv.parameters(), lr=0.1, weight_decay=0.5)
    for _ in range(3):
        opt.zero_grad()
        conv(torch.randn(1, 2, 20, 20)).square().mean().backward()
        opt.step()
    assert torch.all((conv.weight * conv.hole)[:, :, 2, 2] == 0)
    assert conv.weight.grad is not None and torch.all(conv.weight.grad[:, :, 2, 2] == 0)
    assert set(conv.state_dict()) == {"weight", "bias"}


def test_centre_channel_and_wiring() -> None:
    net = get_network("support_net")
    assert isinstance(net, SupportNet)
    assert net.centre == 30 and net.size_multiple == 16
    assert net.unet.encoders[0][0].in_channels == 60
    assert [layer.dilation for layer in net.towers[0].layers] == [(1, 1), (2, 2), (4, 4), (8, 8), (17, 17)]
    assert [layer.dilation for layer in net.towers[1].layers] == [(1, 1), (3, 3), (10, 10)]
    assert net.blind_head[0].in_channels == 2 * 64
    assert get_network("support_net", bs_size=1).blind_head[0].in_channels == 8 * 64


@pytest.mark.parametrize(("h", "w"), [(1, 1), (2, 3), (5, 2)])
def test_output_shape(h: int, w: int) -> None:
    net = get_network("support_net", **{**TINY, "unet_channels": (4, 8, 8)})
    m = net.size_multiple
    assert m == 4
    assert net(torch.randn(2, 5, h * m, w * m)).shape == (2, 1, h * m, w * m)


@pytest.mark.parametrize("bs_size", [1, 3])
def test_onnx_matches_torch(onnx_roundtrip: ExportCheck, tmp_path: Path, bs_size: int) -> None:
    net = get_network("support_net", bs_size=bs_size, **{**TINY, "unet_channels": (4, 8, 8)})
    assert onnx_roundtrip(net, 5, net.size_multiple) < 1e-4
    # The hole mask is folded away: every Conv takes a stored weight, not a computed one.
    graph = onnx.load(str(tmp_path / "net.onnx")).graph
    stored = {init.name for init in graph.initializer}
    assert all(node.input[1] in stored for node in graph.node if node.op_type == "Conv")


@pytest.mark.parametrize(
    ("config", "match"),
    [
        ({"frames": 4}, "frames must be odd"),
        ({"bs_size": 2}, "bs_size must be odd"),
        ({"bs_size": 0}, "bs_size must be odd"),
        ({"depth": 2}, "depth must be >= 3"),
        ({"unet_channels": (16,)}, "at least two levels"),
    ],
)
def test_bad_arguments(config: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        SupportNet(**config)  # type: ignore[arg-type]
