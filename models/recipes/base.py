"""The torch-side recipe protocol: how one method trains and what graph it serves.

A recipe is built from its method's config (:mod:`livedenoise.models.catalogue`) and answers four
questions for the one trainer and the one exporter:

- :meth:`Recipe.build_model` — the trainable network;
- :meth:`Recipe.training_window` — what the trainer cuts from the (normalised) movie for one sample;
- :meth:`Recipe.training_step` — the loss of a batch of such samples (each method owns its pairs, masks,
  losses and extra forward passes), plus anything it wants logged;
- :meth:`Recipe.export_module` — the served graph ``frames [B, L, H, W] -> denoised [B, out_frames, H, W]``
  (normalised units), with any input construction inside the graph.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

import torch
from torch import Tensor, nn

from livedenoise.clients.model_spec import EstimateSpec, WindowSpec
from livedenoise.models.catalogue import MethodConfig, MethodInfo, method_info

__all__ = ["Recipe", "StepOutput", "TrainingWindow", "get_recipe", "recipe_for"]


@dataclass(frozen=True)
class TrainingWindow:
    """What one training sample is cut from: ``frames`` consecutive movie frames of ``size`` x ``size`` pixels.

    ``centre`` set: samples are windows around a uniformly drawn movie frame at slot ``centre``, mirrored at
    the movie's ends exactly as the server mirrors a series (so movies shorter than the window train, and
    edges are trained as they are served). ``centre`` None: consecutive frames inside the movie (the length is
    shortened, in steps of ``frames_multiple``, when the movie is too short). ``size`` shrinks to the frame
    (in steps of ``spatial_multiple``) on small movies.
    """

    frames: int
    size: int
    spatial_multiple: int
    centre: int | None = None
    frames_multiple: int = 1
    min_frames: int = 1
    #: With ``centre`` None: on a movie shorter than ``min_frames``, fall back to mirrored windows centred at this
    #: slot (instead of refusing the movie).
    short_movie_centre: int | None = None
    #: Append the training movie's mean frame as one more plane after the frames of every sample (the same
    #: crop and augmentation, normalised like the frames), for methods with a per-pixel prior.
    mean_frame: bool = False


class StepOutput(NamedTuple):
    """A training step's loss (a scalar to minimise) and extra figures to log (floats)."""

    loss: Tensor
    logs: dict[str, float] = {}


class Recipe(ABC):
    """Base of the torch side of a method; subclasses are named in the catalogue by import string."""

    #: Normalisation fitted on the training movie (see :mod:`livedenoise.models.normalization`).
    normalization: ClassVar[str] = "zscore"
    #: Whether random rotations and flips of training samples are allowed.
    augmentation: ClassVar[bool] = True

    def __init__(self, config: MethodConfig) -> None:
        self.config = config
        self.info: MethodInfo = method_info(config.method)

    @property
    def name(self) -> str:
        return self.info.name

    def window(self) -> WindowSpec:
        return self.config.window()

    @abstractmethod
    def network(self) -> tuple[str, dict[str, Any]]:
        """Registered network name and keyword config (both recorded in the exported model)."""

    def build_model(self) -> nn.Module:
        """The trainable model (whatever layout :meth:`training_step` and :meth:`export_module` agree on)."""
        from livedenoise.models.networks import get_network

        name, kwargs = self.network()
        return get_network(name, **kwargs)

    @abstractmethod
    def training_window(self) -> TrainingWindow:
        """What the trainer cuts from the movie for one sample."""

    def attach_mean_frame(self, model: nn.Module, mean_frame: Tensor) -> None:  # noqa: B027  # optional hook
        """Called once before training, when :attr:`TrainingWindow.mean_frame` is set, with the normalised
        ``[H, W]`` mean of the training frames (e.g. to keep it in the served graph)."""

    @abstractmethod
    def training_step(self, model: nn.Module, patches: Tensor, generator: torch.Generator) -> StepOutput:
        """Loss of ``patches`` (normalised, augmented ``[B, frames, h, w]``); randomness only from ``generator``."""

    @abstractmethod
    def export_module(self, model: nn.Module) -> nn.Module:
        """The served graph ``[B, P, H, W] -> [B, out_frames, H, W]`` (normalised units; ``P`` is the window's
        ``input_planes``)."""

    def resolved(self, best_filter: str | None) -> MethodConfig:
        """The method's config once training has ended, with anything left to decide from the held-out frames
        decided (``best_filter``: the best classical filter there, ``None`` without held-out frames)."""
        return self.config

    def heldout_module(self, model: nn.Module) -> nn.Module:
        """The graph that scores ``model`` on the held-out frames, which are two apart (the even frames of a
        stretch, ``models/validation.py``); the served graph unless the method serves another spacing."""
        return self.export_module(model)

    def estimates(self) -> tuple[EstimateSpec, ...]:
        """The estimates :meth:`export_module`'s output holds, default first (``ModelSpec.estimates``); empty
        for the usual single output."""
        return ()

    def served_frame_shape(self, model: nn.Module) -> tuple[int, int] | None:
        """``(H, W)`` when the trained ``model`` serves only frames of that size (recorded in the spec)."""
        return None


def recipe_for(config: MethodConfig) -> Recipe:
    """The recipe of ``config.method`` built from ``config`` (imports the recipe module on first use)."""
    info = method_info(config.method)
    module_name, _, attr = info.recipe.partition(":")
    cls = getattr(importlib.import_module(module_name), attr)
    recipe = cls(config)
    if not isinstance(recipe, Recipe):
        raise TypeError(f"{info.recipe} is not a Recipe (method {info.name!r})")
    return recipe


def get_recipe(method: str, **fields: Any) -> Recipe:
    """The recipe of ``method`` with its config's defaults (or ``fields``); ``ValueError`` for unknown names."""
    from livedenoise.models.catalogue import parse_method_config

    return recipe_for(parse_method_config({"method": method, **fields}))
