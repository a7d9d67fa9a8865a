"""A method is a recipe: sampler + network + loss + window + normalisation, registered by name.

Adding a method is adding a :class:`MethodRecipe` row with :func:`register_recipe`; the trainer,
checkpointing and export are shared.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from torch import Tensor, nn

from livedenoise.clients.model_spec import WindowSpec
from livedenoise.models.losses import l1_l2
from livedenoise.models.networks.adapters import VolumeAdapter, WindowOutput
from livedenoise.models.networks.registry import get_network
from livedenoise.models.sampling.base import Sampler
from livedenoise.models.sampling.neighbour_frame import OddEvenSplit
from livedenoise.models.windows import stack_window

if TYPE_CHECKING:
    from livedenoise.models.config import TrainConfig

__all__ = ["MethodRecipe", "register_recipe", "get_recipe", "list_recipes"]

Loss = Callable[[Tensor, Tensor, "Tensor | None"], Tensor]


@dataclass(frozen=True)
class MethodRecipe:
    """How one published method trains and serves.

    Attributes
    ----------
    name, family, citation : registry name, method family (METHODS.md section) and the paper.
    make_sampler : ``config -> Sampler`` producing (input, target, mask) pairs.
    network : registered network name; ``network_defaults`` its default keyword config, updated from the
        training config by ``network_config``.
    loss : ``(pred, target, mask) -> scalar``.
    make_window : ``config -> WindowSpec``, the default served window (honouring the config overrides);
        raises ``ValueError`` naming the fix when the window does not suit the network.
    normalization : normalisation kind for :func:`livedenoise.models.normalization.fit_normalization`.
    augmentation : whether dihedral augmentation is allowed (some blind-spot methods forbid rotations).
    adapt : wraps the raw network so it maps ``[B, T, H, W]`` stacks to ``[B, T', H, W]``.
    """

    name: str
    family: str
    citation: str
    make_sampler: Callable[[TrainConfig], Sampler]
    network: str
    loss: Loss
    make_window: Callable[[TrainConfig], WindowSpec]
    normalization: str
    augmentation: bool = True
    network_defaults: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    network_config: Callable[[TrainConfig, Mapping[str, Any]], dict[str, Any]] = field(
        default=lambda config, defaults: {**defaults, "base": config.base_channels, "levels": config.levels}
    )
    adapt: Callable[[nn.Module], nn.Module] = VolumeAdapter

    def sampler(self, config: TrainConfig) -> Sampler:
        return self.make_sampler(config)

    def window(self, config: TrainConfig) -> WindowSpec:
        return self.make_window(config)

    def network_kwargs(self, config: TrainConfig) -> dict[str, Any]:
        """The keyword config the network is built with (recorded in the exported model)."""
        return self.network_config(config, self.network_defaults)

    def build_model(self, config: TrainConfig) -> nn.Module:
        """The trainable model, ``[B, T, H, W] -> [B, T', H, W]`` in normalised units."""
        return self.adapt(get_network(self.network, **self.network_kwargs(config)))

    def export_module(self, model: nn.Module, window: WindowSpec) -> nn.Module:
        """The served graph for ``model``: ``frames [B, L, H, W] -> denoised [B, out_frames, H, W]``."""
        return WindowOutput(model, window.before, window.out_frames)


_RECIPES: dict[str, MethodRecipe] = {}


def register_recipe(recipe: MethodRecipe) -> MethodRecipe:
    """Add ``recipe`` to the registry; a duplicate name raises ``ValueError``."""
    if recipe.name in _RECIPES:
        raise ValueError(f"a recipe is already registered under the name {recipe.name!r}")
    _RECIPES[recipe.name] = recipe
    return recipe


def get_recipe(name: str) -> MethodRecipe:
    """The recipe registered as ``name``; ``ValueError`` listing the known names otherwise."""
    try:
        return _RECIPES[name]
    except KeyError:
        raise ValueError(f"unknown method {name!r}; known methods: {', '.join(sorted(_RECIPES))}") from None


def list_recipes() -> list[str]:
    """Names of all registered recipes, sorted."""
    return sorted(_RECIPES)


# --- DeepCAD-RT -------------------------------------------------------------------------------------


register_recipe(
    MethodRecipe(
        name="deepcad_rt",
        family="neighbouring frame (odd/even split)",
        citation="Li et al., Real-time denoising enables high-sensitivity fluorescence time-lapse imaging "
        "beyond the shot-noise limit, Nat Biotechnol 41, 282-292 (2023)",
        make_sampler=lambda config: OddEvenSplit(swap_p=0.5),
        network="unet3d",
        network_defaults=MappingProxyType({"in_channels": 1, "out_channels": 1, "norm": None, "act": "relu"}),
        loss=l1_l2,
        make_window=stack_window,
        # DeepCAD-RT subtracts the stack mean only; we also divide by the global std ("zscore") so one
        # learning rate fits 8-bit, 12-bit and 16-bit data alike.
        normalization="zscore",
        augmentation=True,
    )
)
