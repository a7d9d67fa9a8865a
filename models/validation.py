"""Validation without ground truth while a model trains, and the final comparison with classical filters.

The last ``n`` frames of the movie are held out of training. Their even frames ``A`` are denoised by the
served graph through the server's own windowing (:func:`livedenoise.clients.windowing.denoise_series`) and
compared with their odd frames ``B`` (independent noise) by the held-out score of
:mod:`livedenoise.models.heldout`: an estimate of the PSNR gain over the raw frames, in dB. The classical
filters are applied to the same ``A`` and scored the same way, so the model's score and the floor it must
beat are measured on the same frames by the same rule.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from livedenoise.clients.model_spec import Normalization, WindowSpec
from livedenoise.clients.windowing import denoise_series, pad_to_multiple
from livedenoise.models.heldout import best_filter, heldout_gain_db, score_filters, split_even_odd

__all__ = ["HeldoutFrames", "ValidationReport", "heldout_frame_count", "torch_infer", "model_gain_db", "final_report"]

#: Held-out frames by default: an eighth of the movie, at least 8 and at most 128 (an even count).
MIN_HELDOUT, MAX_HELDOUT = 8, 128
#: Below this many frames no stretch is held out (training needs them more than the score does).
MIN_MOVIE_FOR_HELDOUT = 48
#: Nor when the scored even frames would hold fewer pixels than this: on a 100-frame 32x32 movie, 4 pairs
#: of frames score so noisily that picking the "best" epoch by them cost 3.3 dB of true gain (11.0 against
#: 14.4 dB training on every frame, the classical floor at 13.1 dB).
MIN_HELDOUT_PIXELS = 1 << 16
#: Pixels per held-out frame at most: a centred crop keeps validation a small share of the training time.
MAX_HELDOUT_SIDE = 128


def heldout_frame_count(n_frames: int, requested: int | None, frame_shape: tuple[int, int] = (128, 128)) -> int:
    """Frames to hold out at the end of a movie of ``n_frames`` of ``frame_shape`` (even; 0 = no validation).

    ``requested`` None picks an eighth of the movie within [8, 128], or 0 below 48 frames or when the even
    half would score fewer than :data:`MIN_HELDOUT_PIXELS` pixels; an explicit request must leave at least
    half the movie for training.
    """
    if requested is None:
        if n_frames < MIN_MOVIE_FOR_HELDOUT:
            return 0
        count = int(min(MAX_HELDOUT, max(MIN_HELDOUT, n_frames // 8)) // 2 * 2)
        side_h, side_w = (min(s, MAX_HELDOUT_SIDE) for s in frame_shape)
        return count if count // 2 * side_h * side_w >= MIN_HELDOUT_PIXELS else 0
    if requested == 0:
        return 0
    if requested < 4 or requested > n_frames // 2:
        raise ValueError(
            f"validation_frames={requested} must be 0 (none) or between 4 and half the movie ({n_frames // 2} "
            f"of {n_frames} frames)"
        )
    return requested // 2 * 2


@dataclass(frozen=True)
class HeldoutFrames:
    """The held-out stretch, split into even frames ``a`` (denoised) and odd frames ``b`` (the reference)."""

    a: NDArray[np.float32]
    b: NDArray[np.float32]
    first_frame: int

    @classmethod
    def from_stretch(cls, stretch: NDArray[Any], first_frame: int) -> HeldoutFrames:
        h, w = stretch.shape[1:]
        ch, cw = min(h, MAX_HELDOUT_SIDE), min(w, MAX_HELDOUT_SIDE)
        y0, x0 = (h - ch) // 2, (w - cw) // 2
        crop = np.asarray(stretch[:, y0 : y0 + ch, x0 : x0 + cw], dtype=np.float32)
        a, b = split_even_odd(crop)
        return cls(a=a, b=b, first_frame=first_frame)


@dataclass(frozen=True)
class ValidationReport:
    """The trained model's held-out score beside the classical filters' on the same frames (dB of PSNR gain)."""

    heldout_frames: int
    model_gain_db: float
    best_filter: str
    best_filter_gain_db: float
    filters: dict[str, float] = field(default_factory=dict)
    best_epoch: int | None = None

    @property
    def margin_db(self) -> float:
        return self.model_gain_db - self.best_filter_gain_db

    @property
    def beats_floor(self) -> bool:
        return self.margin_db > 0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "margin_db": self.margin_db, "beats_floor": self.beats_floor}

    def summary(self) -> str:
        """One plain sentence for logs and the CLI, with advice when the model loses to the filter."""
        head = (
            f"held-out score (last {self.heldout_frames} frames, PSNR gain over raw): model {self.model_gain_db:+.2f} dB,"
            f" best classical filter {self.best_filter} {self.best_filter_gain_db:+.2f} dB"
        )
        if self.beats_floor:
            return f"{head}: the model is {self.margin_db:.2f} dB better."
        return (
            f"{head}: the model does NOT beat the classical filter ({self.margin_db:+.2f} dB). Use the filter "
            "instead, or train longer (--time-budget), on a longer movie, or with another method (livedenoise methods)."
        )


def torch_infer(
    module: nn.Module, normalization: Normalization, window: WindowSpec, device: torch.device
) -> Callable[[NDArray[np.float32]], NDArray[np.float32]]:
    """The engine's pre/post-processing around a torch served graph: normalise, reflect-pad to the spatial
    multiple, run, crop, de-normalise (raw windows in, raw frames out)."""

    def infer(windows: NDArray[np.float32]) -> NDArray[np.float32]:
        h, w = windows.shape[-2:]
        x = pad_to_multiple(normalization.apply(windows), window.spatial_multiple)
        with torch.no_grad():
            y = module(torch.from_numpy(np.ascontiguousarray(x)).to(device)).float().cpu().numpy()
        return normalization.invert(y[:, :, :h, :w])

    return infer


def model_gain_db(
    module: nn.Module, normalization: Normalization, window: WindowSpec, heldout: HeldoutFrames, device: torch.device
) -> float:
    """Held-out score of the served graph ``module`` (evaluated in eval mode; the caller restores train mode)."""
    module.eval()
    denoised = denoise_series(torch_infer(module, normalization, window, device), window, heldout.a, batch_size=4)
    return heldout_gain_db(denoised, heldout.a, heldout.b)


def final_report(model_gain: float, heldout: HeldoutFrames, best_epoch: int | None) -> ValidationReport:
    """Score the classical filters on the same held-out frames and put the model beside the best one."""
    scores = score_filters(heldout.a, heldout.b)
    name, gain = best_filter(scores)
    return ValidationReport(
        heldout_frames=2 * heldout.a.shape[0],
        model_gain_db=float(model_gain),
        best_filter=name,
        best_filter_gain_db=float(gain),
        filters={k: float(v) for k, v in scores.items()},
        best_epoch=best_epoch,
    )
