"""Losses shared by recipes; each takes ``(pred, target, mask=None)`` and returns a scalar tensor."""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor

Loss = Callable[[Tensor, Tensor, "Tensor | None"], Tensor]

__all__ = ["l1", "l2", "l1_l2", "LOSSES", "get_loss"]


def _reduce(err: Tensor, mask: Tensor | None) -> Tensor:
    if mask is None:
        return err.mean()
    mask = mask.to(err.dtype).expand_as(err)
    # Clamp so an empty mask yields 0 rather than NaN.
    return (err * mask).sum() / mask.sum().clamp_min(1.0)


def _check(pred: Tensor, target: Tensor) -> None:
    if pred.shape != target.shape:
        raise ValueError(f"prediction shape {tuple(pred.shape)} differs from target shape {tuple(target.shape)}")


def l1(pred: Tensor, target: Tensor, mask: Tensor | None = None) -> Tensor:
    """Mean absolute error (over ``mask`` where given)."""
    _check(pred, target)
    return _reduce((pred - target).abs(), mask)


def l2(pred: Tensor, target: Tensor, mask: Tensor | None = None) -> Tensor:
    """Mean squared error (over ``mask`` where given)."""
    _check(pred, target)
    return _reduce((pred - target).square(), mask)


def l1_l2(pred: Tensor, target: Tensor, mask: Tensor | None = None) -> Tensor:
    """``0.5 * L1 + 0.5 * L2``, the DeepCAD / DeepCAD-RT loss."""
    return 0.5 * l1(pred, target, mask) + 0.5 * l2(pred, target, mask)


# Names match the `loss` choices of TrainConfig (torch-free, so it cannot import this module).
LOSSES: dict[str, Loss] = {"l1": l1, "l2": l2, "l1_l2": l1_l2}


def get_loss(name: str) -> Loss:
    """The loss registered as ``name``; ``ValueError`` listing the known names otherwise."""
    try:
        return LOSSES[name]
    except KeyError:
        raise ValueError(f"unknown loss {name!r}; known losses: {', '.join(sorted(LOSSES))}") from None
