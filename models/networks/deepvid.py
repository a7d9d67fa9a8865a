"""DeepVID's residual network (Platisa et al., Nat Methods 2023; Liu et al., bioRxiv 2024).

An SRResNet-style 2-D network at full resolution (no pooling, so any frame size): a 3x3 head with PReLU,
``blocks`` residual blocks (conv-BN-PReLU-conv-BN plus skip), a conv-BN closing the global skip, and a
3x3 conv to one channel with PReLU followed by a 1x1 conv. DeepVID uses 16 blocks (``fullyconv_mask``,
about 1.23 M parameters), DeepVID v2 4 blocks (``DeepVIDv2``, 340,804 parameters with 11 inputs).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from livedenoise.models.networks.registry import register_network

__all__ = ["DeepVIDNet", "EdgePrior", "deepvid_resnet"]

# The references use momentum 0.5 (Keras and torch alike). Our trainer serves an exponential moving average
# of the weights with the live network's batch-norm statistics; slower statistics (torch's default) follow
# the averaged weights more closely than statistics that jump with every 4-patch batch.
_BN_MOMENTUM = 0.1


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels, momentum=_BN_MOMENTUM)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm {kind!r}; expected 'batch' or 'none'")


class _ResBlock(nn.Module):
    """conv -> norm -> PReLU -> conv -> norm, plus the input."""

    def __init__(self, features: int, norm: str) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(features, features, 3, padding=1),
            _norm(norm, features),
            nn.PReLU(features, init=0.0),
            nn.Conv2d(features, features, 3, padding=1),
            _norm(norm, features),
        )

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = self.body(x) + x
        return out


class DeepVIDNet(nn.Module):
    """``[B, in_channels, H, W] -> [B, 1, H, W]`` at full resolution.

    Parameters
    ----------
    in_channels : input planes (DeepVID: the ``2N + 1`` window; v2 adds 4 edge-prior planes).
    features : channels of every hidden layer (published 64).
    blocks : residual blocks (published 16 for DeepVID, 4 for DeepVID v2).
    norm : ``"batch"`` (published) or ``"none"``.
    """

    def __init__(self, in_channels: int, features: int = 64, blocks: int = 16, norm: str = "batch") -> None:
        super().__init__()
        if in_channels < 1 or features < 1 or blocks < 0:
            raise ValueError(
                f"bad DeepVID network size: in_channels={in_channels}, features={features}, blocks={blocks}"
            )
        # PReLU slopes start at 0 (a ReLU), as the Keras reference's alpha_initializer='zeros'.
        self.head = nn.Sequential(nn.Conv2d(in_channels, features, 3, padding=1), nn.PReLU(features, init=0.0))
        self.blocks = nn.Sequential(*(_ResBlock(features, norm) for _ in range(blocks)))
        self.close = nn.Sequential(nn.Conv2d(features, features, 3, padding=1), _norm(norm, features))
        self.tail = nn.Sequential(nn.Conv2d(features, 1, 3, padding=1), nn.PReLU(1, init=0.0), nn.Conv2d(1, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        h = self.head(x)
        out: Tensor = self.tail(self.close(self.blocks(h)) + h)
        return out


@register_network("deepvid_resnet")
def deepvid_resnet(in_channels: int = 7, features: int = 64, blocks: int = 16, norm: str = "batch") -> DeepVIDNet:
    """DeepVID's network; ``blocks=4`` with 11 inputs is DeepVID v2's."""
    return DeepVIDNet(in_channels, features=features, blocks=blocks, norm=norm)


def _gaussian_kernel(size: int, sigma: float) -> Tensor:
    x = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
    k = torch.exp(-(x**2) / (2 * sigma**2))
    return k / k.sum()


# Sobel responses in four directions (vertical, horizontal and the two diagonals), as DeepVID v2's SobelBlock.
_SOBEL = torch.tensor(
    [
        [[-1, -2, -1], [0, 0, 0], [1, 2, 1]],
        [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]],
        [[0, 1, 2], [-1, 0, 1], [-2, -1, 0]],
        [[-2, -1, 0], [-1, 0, 1], [0, 1, 2]],
    ],
    dtype=torch.float32,
).unsqueeze(1)


class EdgePrior(nn.Module):
    """DeepVID v2's edge prior: a ``[B, 1, H, W]`` mean frame -> Gaussian blur -> four Sobel directions ->
    z-score over the four maps of each sample -> ``[B, 4, H, W]``. Fixed weights (buffers, not parameters).

    Reflection padding throughout, as the reference (``GaussianBlur`` and ``padding_mode="reflect"``).
    """

    EDGE_CHANNELS = 4

    blur_y: Tensor
    blur_x: Tensor
    sobel: Tensor

    def __init__(self, gaussian_size: int = 9, gaussian_sigma: float = 1.0) -> None:
        super().__init__()
        if gaussian_size < 1 or gaussian_size % 2 == 0 or gaussian_sigma <= 0:
            raise ValueError(
                f"edge prior needs an odd Gaussian size and sigma > 0, got {gaussian_size}, {gaussian_sigma}"
            )
        k = _gaussian_kernel(gaussian_size, gaussian_sigma)
        self.register_buffer("blur_y", k.view(1, 1, -1, 1), persistent=False)
        self.register_buffer("blur_x", k.view(1, 1, 1, -1), persistent=False)
        self.register_buffer("sobel", _SOBEL.clone(), persistent=False)
        self.radius = gaussian_size // 2

    def forward(self, frame: Tensor) -> Tensor:
        h = self.radius
        x = F.conv2d(F.pad(frame, (0, 0, h, h), mode="reflect"), self.blur_y)
        x = F.conv2d(F.pad(x, (h, h, 0, 0), mode="reflect"), self.blur_x)
        edges = F.conv2d(F.pad(x, (1, 1, 1, 1), mode="reflect"), self.sobel)
        mean = edges.mean(dim=(1, 2, 3), keepdim=True)
        std = edges.std(dim=(1, 2, 3), keepdim=True, unbiased=False)
        return (edges - mean) / (std + 1e-6)
