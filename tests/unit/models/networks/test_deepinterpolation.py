from __future__ import annotations

from collections.abc import Callable

import pytest
import torch

from livedenoise.models.networks import get_network
from livedenoise.models.networks.deepinterpolation import DeepInterpolationUNet

# The ``onnx_roundtrip`` fixture (conftest.py): (net, channels, multiple) -> relative error.
ExportCheck = Callable[[torch.nn.Module, int, int], float]


def test_published_structure() -> None:
    net = get_network("deepinterpolation_unet")
    assert isinstance(net, DeepInterpolationUNet)
    assert net.unet.widths == (64, 128, 256, 512, 1024)
    assert net.size_multiple == 16
    # One 3x3 conv per level, decoders on [upsampled, skip].
    assert [enc[0].in_channels for enc in net.unet.encoders] == [60, 64, 128, 256, 512]
    assert [dec[0].in_channels for dec in net.unet.decoders] == [1536, 768, 384, 192]
    assert net.head.kernel_size == (1, 1) and net.head.out_channels == 1


@pytest.mark.parametrize(("h", "w"), [(1, 1), (3, 5), (4, 2)])
def test_output_shape(h: int, w: int) -> None:
    net = get_network("deepinterpolation_unet", in_channels=6, base=4, levels=3)
    m = net.size_multiple
    assert m == 4
    assert net(torch.randn(2, 6, h * m, w * m)).shape == (2, 1, h * m, w * m)


def test_onnx_matches_torch(onnx_roundtrip: ExportCheck) -> None:
    net = get_network("deepinterpolation_unet", in_channels=6, base=4, levels=3)
    assert onnx_roundtrip(net, 6, net.size_multiple) < 1e-4


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="levels, base and out_channels"):
        DeepInterpolationUNet(levels=0)
    with pytest.raises(ValueError, match="in_channels and every width"):
        DeepInterpolationUNet(in_channels=0)
