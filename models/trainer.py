"""The single training loop for every method: config + movie -> trained network (+ progress, validation).

The loop knows nothing of any method: the recipe (:mod:`livedenoise.models.recipes`) says what to cut
from the movie, computes the loss of a batch and builds the served graph. The loop owns the schedule
(time budget or epochs, cosine learning rate), augmentation, held-out validation (after every epoch, or within
a tenth of the time on a budget), the best model so far and early stopping.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from livedenoise.clients.model_spec import Normalization, WindowSpec
from livedenoise.models.config import TrainConfig
from livedenoise.models.data import check_movie, fit_training_window, movie_digest, sample_patches
from livedenoise.models.device import resolve_device
from livedenoise.models.normalization import fit_normalization
from livedenoise.models.recipes.base import Recipe, recipe_for
from livedenoise.models.sampling.augment import random_dihedral
from livedenoise.models.validation import (
    HeldoutFrames,
    ValidationReport,
    final_report,
    heldout_frame_count,
    model_gain_db,
)

__all__ = ["TrainProgress", "TrainResult", "TrainingStopped", "fit"]

logger = logging.getLogger(__name__)

#: Early stopping: validations without an improvement of at least MIN_DELTA_DB, once half the run is over.
PATIENCE = 5
MIN_DELTA_DB = 0.01
#: Runs on a time budget validate after an epoch only while validation has taken at most this share of the time
#: so far (and always after the last epoch): on a 600-frame movie one validation costs about a third of a
#: DeepCAD-RT epoch on 2 CPU cores, time better spent training. Runs with a fixed epoch count validate every epoch.
VALIDATION_SHARE = 0.1


class TrainingStopped(RuntimeError):
    """Training was cancelled through ``should_stop`` (no result is produced)."""


@dataclass(frozen=True)
class TrainProgress:
    """One progress report: after each optimiser step and at the end of each epoch."""

    epoch: int  # 1-based epoch in progress
    epochs: int | None  # None when the run is bounded by its time budget
    step: int  # 1-based step within the epoch
    steps: int
    fraction: float  # of the whole run, 0..1
    loss: float  # running mean loss of the current epoch
    elapsed_s: float
    epoch_done: bool = False
    val_gain_db: float | None = None  # held-out score after this epoch (epoch_done reports only)


@dataclass(frozen=True)
class TrainResult:
    """A trained model and everything needed to export or checkpoint it.

    ``network`` is the recipe's trainable model at its best validation score (the last one without
    validation), in eval mode on the CPU.
    """

    network: nn.Module
    recipe: Recipe
    config: TrainConfig
    normalization: Normalization
    window: WindowSpec
    history: list[float] = field(default_factory=list)
    data_digest: str = ""
    steps: int = 0
    elapsed_s: float = 0.0
    stopped_early: bool = False  # the budget, early stopping or the epoch count ended the run before its schedule
    validation: ValidationReport | None = None
    val_history: list[float] = field(default_factory=list)  # the held-out gain of each validation, in order


def _lr_factor(schedule: str, run_fraction: float) -> float:
    if schedule == "constant":
        return 1.0
    # Cosine decay to 2% of the initial rate: averaging out the gradient noise at the end is worth
    # about as much as the extra steps in short CPU runs.
    return 0.02 + 0.98 * 0.5 * (1.0 + math.cos(math.pi * min(max(run_fraction, 0.0), 1.0)))


class _Schedule:
    """Where the run stands: by steps (``epochs``), by seconds (budget), or the first of both to end."""

    def __init__(self, config: TrainConfig, steps_per_epoch: int) -> None:
        self.epochs = config.epochs
        self.budget_s = config.budget_s
        self.total_steps = steps_per_epoch * config.epochs if config.epochs is not None else None
        self.t0 = time.monotonic()

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.t0

    def fraction(self, steps_done: int) -> float:
        parts = []
        if self.total_steps is not None:
            parts.append(steps_done / self.total_steps)
        if self.budget_s is not None:
            parts.append(self.elapsed / self.budget_s)
        return min(1.0, max(parts))

    def out_of_time(self) -> bool:
        return self.budget_s is not None and self.elapsed >= self.budget_s


class _WeightAverage:
    """Exponential moving average of a model's parameters (buffers copied), with a warm-up so the first
    steps' random weights fade out quickly: the decay is ``min(decay, (1 + n) / (10 + n))`` at step ``n``."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.model = copy.deepcopy(model).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.decay = decay
        self.updates = 0

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.updates += 1
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        for avg, p in zip(self.model.parameters(), model.parameters()):
            avg.mul_(d).add_(p.detach(), alpha=1.0 - d)
        for avg_b, b in zip(self.model.buffers(), model.buffers()):
            avg_b.copy_(b)


def fit(
    config: TrainConfig,
    movie: NDArray[Any],
    *,
    device: torch.device | None = None,
    progress: Callable[[TrainProgress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> TrainResult:
    """Train ``config.method`` on ``movie`` (``[T, H, W]``, raw intensities).

    Parameters
    ----------
    config : the run; ``config.seed`` seeds torch, the patch sampler and the recipe's randomness.
    movie : the noisy movie; it is neither copied whole nor modified (patches are normalised on the fly).
    device : torch device; by default ``resolve_device(config.device)``.
    progress : called after every step and at each epoch end.
    should_stop : polled before every step; returning True raises :class:`TrainingStopped`.

    Raises
    ------
    ValueError
        Bad movie (shape, dtype, too short: the message names the minimum).
    TrainingStopped
        ``should_stop`` returned True.
    """
    movie = check_movie(movie)
    recipe = recipe_for(config.method_config)
    device = device if device is not None else resolve_device(config.device)
    window = recipe.window()
    norm = fit_normalization(movie, recipe.normalization)
    digest = movie_digest(movie)
    n_heldout = heldout_frame_count(movie.shape[0], config.validation_frames, movie.shape[1:])
    train_movie = movie[: movie.shape[0] - n_heldout]
    heldout = HeldoutFrames.from_stretch(movie[train_movie.shape[0] :], train_movie.shape[0]) if n_heldout else None
    training_window = recipe.training_window()
    shape = fit_training_window(training_window, train_movie.shape)
    mean_frame = train_movie.mean(axis=0, dtype=np.float64) if training_window.mean_frame else None
    augment = config.augment and recipe.augmentation
    batch = config.method_config.batch

    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    gen = torch.Generator(device="cpu").manual_seed(config.seed)
    model = recipe.build_model().to(device)
    if mean_frame is not None:
        recipe.attach_mean_frame(model, torch.from_numpy(norm.apply(mean_frame)).to(device))
    if device.type == "cpu" and any(isinstance(mod, nn.Conv3d) for mod in model.modules()):
        # oneDNN's 3-D convolutions (notably their backward) run markedly faster channels-last on CPU.
        model = model.to(memory_format=torch.channels_last_3d)  # type: ignore[call-overload]  # torch accepts it; its stubs do not say so
    # The served model is an exponential moving average of the trained weights: at the learning rates
    # that make short CPU runs converge, single-step weights jitter (their held-out score jumps by several
    # dB from one epoch to the next); the average does not, and scores better.
    averaged = _WeightAverage(model, config.weight_averaging) if config.weight_averaging else None
    served = averaged.model if averaged is not None else model
    heldout_view = recipe.heldout_module(served)
    lr = config.learning_rate
    opt = torch.optim.Adam(model.parameters(), lr=lr, betas=config.betas)

    steps = math.ceil(config.epoch_patches / batch)
    schedule = _Schedule(config, steps)
    logger.info(
        "training %s on movie %s (%s) on %s: %s, %d steps of %d patches per epoch, patch %d frames %dx%d, "
        "%d parameters, lr %.3g, normalisation %s, %s",
        recipe.name,
        movie.shape,
        movie.dtype,
        device,
        f"{config.epochs} epochs" if config.epochs else f"time budget {schedule.budget_s:.0f} s",
        steps,
        batch,
        shape.frames,
        shape.h,
        shape.w,
        sum(p.numel() for p in model.parameters()),
        lr,
        norm.kind,
        f"validation on the last {n_heldout} frames"
        if heldout
        else "no validation (movie too small to hold frames out)",
    )
    history: list[float] = []
    val_history: list[float] = []
    val_seconds, since_best = 0.0, 0
    best: tuple[float, int, dict[str, torch.Tensor]] | None = None
    done = 0
    epoch = 0
    stopped_early = False
    model.train()
    while True:
        epoch += 1
        losses: list[float] = []
        for step in range(1, steps + 1):
            if should_stop is not None and should_stop():
                logger.info("training stopped at epoch %d step %d", epoch, step)
                raise TrainingStopped(f"training of {recipe.name} was stopped at epoch {epoch}, step {step}")
            if done and schedule.out_of_time():
                stopped_early = True
                break
            for group in opt.param_groups:
                group["lr"] = lr * _lr_factor(config.lr_schedule, schedule.fraction(done))
            patches = torch.from_numpy(norm.apply(sample_patches(train_movie, batch, shape, rng, mean_frame)))
            if augment:
                patches = random_dihedral(patches, gen)
            opt.zero_grad(set_to_none=True)
            out = recipe.training_step(model, patches.to(device), gen)
            if not torch.isfinite(out.loss):
                raise FloatingPointError(
                    f"loss became {out.loss.item()} at epoch {epoch} step {step}; lower lr (now {lr})"
                )
            out.loss.backward()  # type: ignore[no-untyped-call]
            opt.step()
            if averaged is not None:
                averaged.update(model)
            losses.append(float(out.loss.detach()))
            done += 1
            if progress is not None:
                progress(
                    TrainProgress(
                        epoch,
                        config.epochs,
                        step,
                        steps,
                        schedule.fraction(done),
                        float(np.mean(losses)),
                        schedule.elapsed,
                    )
                )
        if not losses:
            break
        history.append(float(np.mean(losses)))
        end = None
        if config.epochs is not None and epoch >= config.epochs:
            end = "epochs"
        elif stopped_early or schedule.out_of_time():
            end = f"time budget of {schedule.budget_s:.0f} s reached"
        gain = None
        due = end is not None or config.epochs is not None or val_seconds <= VALIDATION_SHARE * schedule.elapsed
        if heldout is not None and due:
            started = time.monotonic()
            gain = model_gain_db(heldout_view, norm, window, heldout, device)
            val_seconds += time.monotonic() - started
            model.train()
            val_history.append(gain)
            if best is None or gain > best[0] + MIN_DELTA_DB:
                best = (gain, epoch, copy.deepcopy(served.state_dict()))
                since_best = 0
            else:
                since_best += 1
        logger.info(
            "epoch %s: loss %.5f%s (%.1f s)",
            f"{epoch}/{config.epochs}" if config.epochs else epoch,
            history[-1],
            ""
            if gain is None
            else f", held-out gain {gain:+.2f} dB (best {best[0]:+.2f} dB, epoch {best[1]})"
            if best
            else "",
            schedule.elapsed,
        )
        if (
            end is None
            and config.early_stopping
            and best is not None
            and since_best >= PATIENCE
            and schedule.fraction(done) >= 0.5
        ):
            end = f"early stop: no held-out improvement for {PATIENCE} validations"
        if progress is not None:
            progress(
                TrainProgress(
                    epoch,
                    config.epochs,
                    len(losses),
                    steps,
                    1.0 if end else schedule.fraction(done),
                    history[-1],
                    schedule.elapsed,
                    epoch_done=True,
                    val_gain_db=gain,
                )
            )
        if end:
            stopped_early = end != "epochs"
            logger.info("training ends after epoch %d, %d steps, %.1f s: %s", epoch, done, schedule.elapsed, end)
            break
    if done == 0:
        raise ValueError(f"no training step ran (time_budget_s={config.time_budget_s}); raise the budget")
    model = served
    report = None
    if heldout is not None and best is not None:
        model.load_state_dict(best[2])
        report = final_report(best[0], heldout, best[1])
        log = logger.info if report.beats_floor else logger.warning
        log("%s", report.summary())
    decided = recipe.resolved(report.best_filter if report is not None else None)
    if decided != recipe.config:
        changes = {k: v for k, v in decided.model_dump().items() if getattr(recipe.config, k) != v}
        logger.info(
            "decided as training ended (%s): %s",
            f"best filter on the held-out frames {report.best_filter}" if report is not None else "no held-out frames",
            ", ".join(f"{k}={v}" for k, v in changes.items()),
        )
        config = TrainConfig(**{**config.to_json_dict(), **decided.model_dump(mode="json")})
        recipe = recipe_for(config.method_config)
    model = model.eval().cpu().to(memory_format=torch.contiguous_format)  # type: ignore[call-overload]  # torch accepts it; its stubs do not say so
    return TrainResult(
        network=model,
        recipe=recipe,
        config=config,
        normalization=norm,
        window=window,
        history=history,
        data_digest=digest,
        steps=done,
        elapsed_s=schedule.elapsed,
        stopped_early=stopped_early,
        validation=report,
        val_history=val_history,
    )
