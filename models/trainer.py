"""The single training loop for every method: config + movie -> trained network (+ progress)."""

from __future__ import annotations

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
from livedenoise.models.data import check_movie, fit_patch_shape, movie_digest, sample_patches
from livedenoise.models.device import resolve_device
from livedenoise.models.losses import get_loss
from livedenoise.models.normalization import fit_normalization
from livedenoise.models.recipes import MethodRecipe, get_recipe
from livedenoise.models.sampling.augment import random_dihedral

__all__ = ["TrainProgress", "TrainResult", "TrainingStopped", "fit"]

logger = logging.getLogger(__name__)


class TrainingStopped(RuntimeError):
    """Training was cancelled through ``should_stop`` (no result is produced)."""


@dataclass(frozen=True)
class TrainProgress:
    """One progress report: after each optimiser step and at the end of each epoch."""

    epoch: int  # 1-based epoch in progress
    epochs: int
    step: int  # 1-based step within the epoch
    steps: int
    fraction: float  # of the whole run, 0..1
    loss: float  # running mean loss of the current epoch
    elapsed_s: float
    epoch_done: bool = False


@dataclass(frozen=True)
class TrainResult:
    """A trained model and everything needed to export or checkpoint it.

    ``network`` is the recipe-adapted model (``[B, T, H, W] -> [B, T', H, W]``), in eval mode on the CPU.
    """

    network: nn.Module
    recipe: MethodRecipe
    config: TrainConfig
    normalization: Normalization
    window: WindowSpec
    history: list[float] = field(default_factory=list)
    data_digest: str = ""
    steps: int = 0
    elapsed_s: float = 0.0
    stopped_early: bool = False  # the time limit ended training before the last epoch


def _lr_factor(schedule: str, run_fraction: float) -> float:
    if schedule == "constant":
        return 1.0
    # Cosine decay to 2% of the initial rate: averaging out the gradient noise at the end is worth
    # about as much as the extra steps in short CPU runs.
    return 0.02 + 0.98 * 0.5 * (1.0 + math.cos(math.pi * min(max(run_fraction, 0.0), 1.0)))


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
    config : the run; ``config.seed`` seeds torch, the patch sampler and the training-pair sampler.
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
    recipe = get_recipe(config.method)
    device = device if device is not None else resolve_device(config.device)
    window = recipe.window(config)
    sampler = recipe.sampler(config)
    m = config.size_multiple
    shape = fit_patch_shape(movie.shape, config.patch_t, config.patch_xy, m, sampler.raw_frames)
    norm = fit_normalization(movie, recipe.normalization)
    digest = movie_digest(movie)
    augment = config.augment and recipe.augmentation
    loss_fn = get_loss(config.loss) if config.loss is not None else recipe.loss

    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    gen = torch.Generator(device="cpu").manual_seed(config.seed)
    model = recipe.build_model(config).to(device)
    if device.type == "cpu" and any(isinstance(mod, nn.Conv3d) for mod in model.modules()):
        # oneDNN's 3-D convolutions (notably their backward) run markedly faster channels-last on CPU.
        model = model.to(memory_format=torch.channels_last_3d)
    opt = torch.optim.Adam(model.parameters(), lr=config.lr, betas=config.betas)

    steps = math.ceil(config.patches_per_epoch / config.batch_size)
    total = steps * config.epochs
    logger.info(
        "training %s on movie %s (%s) on %s: %d epochs x %d steps, batch %d, patch t=%d (raw %d) %dx%d, "
        "%d parameters, normalisation %s offset=%.4g scale=%.4g",
        recipe.name, movie.shape, movie.dtype, device, config.epochs, steps, config.batch_size,
        shape.patch_t, shape.raw_t, shape.h, shape.w, sum(p.numel() for p in model.parameters()),
        norm.kind, norm.offset, norm.scale,
    )
    history: list[float] = []
    t0 = time.monotonic()
    done = 0
    stopped_early = False
    model.train()
    for epoch in range(1, config.epochs + 1):
        losses: list[float] = []
        for step in range(1, steps + 1):
            if should_stop is not None and should_stop():
                logger.info("training stopped at epoch %d step %d", epoch, step)
                raise TrainingStopped(f"training of {recipe.name} was stopped at epoch {epoch}, step {step}")
            if config.time_limit_s is not None and time.monotonic() - t0 >= config.time_limit_s:
                stopped_early = True
                break
            run_fraction = done / total
            if config.time_limit_s is not None:
                run_fraction = max(run_fraction, (time.monotonic() - t0) / config.time_limit_s)
            for group in opt.param_groups:
                group["lr"] = config.lr * _lr_factor(config.lr_schedule, run_fraction)
            raw = sample_patches(movie, config.batch_size, shape.raw_t, shape.h, shape.w, rng)
            batch = torch.from_numpy(norm.apply(raw))
            if augment:
                batch = random_dihedral(batch, gen)
            pair = sampler(batch, gen)
            inp, target = pair.input.to(device), pair.target.to(device)
            mask = pair.mask.to(device) if pair.mask is not None else None
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(inp), target, mask)
            if not torch.isfinite(loss):
                raise FloatingPointError(
                    f"loss became {loss.item()} at epoch {epoch} step {step}; lower lr (now {config.lr})"
                )
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
            done += 1
            if progress is not None:
                progress(TrainProgress(epoch, config.epochs, step, steps, done / total, float(np.mean(losses)),
                                       time.monotonic() - t0))
        if losses:
            history.append(float(np.mean(losses)))
            logger.info("epoch %d/%d: loss %.5f (%.1f s)", epoch, config.epochs, history[-1], time.monotonic() - t0)
            if progress is not None:
                progress(TrainProgress(epoch, config.epochs, len(losses), steps,
                                       1.0 if stopped_early else done / total, history[-1],
                                       time.monotonic() - t0, epoch_done=True))
        if stopped_early:
            logger.info("time limit of %.1f s reached after %d steps", config.time_limit_s, done)
            break
    if done == 0:
        raise ValueError(f"no training step ran (time_limit_s={config.time_limit_s}); raise the time limit")
    model = model.eval().cpu().to(memory_format=torch.contiguous_format)
    return TrainResult(
        network=model, recipe=recipe, config=config, normalization=norm, window=window, history=history,
        data_digest=digest, steps=done, elapsed_s=time.monotonic() - t0, stopped_early=stopped_early,
    )
