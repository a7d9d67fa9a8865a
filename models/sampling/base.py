"""The ``Sampler`` protocol: how a method turns noisy patches into self-supervised training pairs."""

from __future__ import annotations

from typing import NamedTuple, Protocol, runtime_checkable

import torch
from torch import Tensor

__all__ = ["TrainingPair", "Sampler"]


class TrainingPair(NamedTuple):
    """Network input, target and an optional loss mask (1 where the loss counts), all ``[B, T, H, W]``."""

    input: Tensor
    target: Tensor
    mask: Tensor | None


@runtime_checkable
class Sampler(Protocol):
    """Turns a batch of normalised raw movie patches ``[B, raw_frames, H, W]`` into a :class:`TrainingPair`.

    Samplers are pure torch and take their randomness from the explicit ``generator`` only, so a seeded
    run is reproducible.
    """

    name: str

    def raw_frames(self, patch_t: int) -> int:
        """Raw movie frames a patch needs to yield a network input of ``patch_t`` frames."""
        ...

    def __call__(self, patch: Tensor, generator: torch.Generator) -> TrainingPair: ...
