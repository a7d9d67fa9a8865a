"""DeepVID, DeepVID v2 and TeD (provisional): the centre frame with blind pixels plus ``N`` neighbouring frames on each side,
masked MSE.

The trainable model is :class:`DetrendedWindowModel` (window in, centre estimate out; v2 also takes the mean
frame behind its edge prior); training blinds random centre pixels and scores only those, serving blinds a
fixed pattern (when the config says so) inside the graph.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from livedenoise.models.catalogue.masked_frame import BlindPixelConfig, DeepVIDv2Config, ResidualNetConfig, TeDConfig
from livedenoise.models.losses import l2
from livedenoise.models.networks.deepvid import EdgePrior
from livedenoise.models.recipes.base import Recipe, StepOutput, TrainingWindow
from livedenoise.models.sampling.blind_pixels import FixedBlindPixels, random_blind_pixels

__all__ = [
    "DetrendedWindowModel",
    "EdgePriorModel",
    "TemporalGradients",
    "BlindPixelRecipe",
    "EdgePriorRecipe",
    "TemporalGradientRecipe",
]


class DetrendedWindowModel(nn.Module):
    """``[B, L, H, W]`` window -> ``net`` -> ``[B, 1, H, W]``, optionally around the window's mean intensity.

    With ``detrend`` the mean over the window (frames and pixels) is subtracted before the network and added
    to its output: a slow trend (bleaching, drifting illumination) is taken out the way the references'
    polynomial detrend does, with what a streamed window holds (docs/decisions.md).
    """

    def __init__(self, net: nn.Module, detrend: bool) -> None:
        super().__init__()
        self.net = net
        self.detrend = bool(detrend)

    def forward(self, window: Tensor) -> Tensor:
        return self._denoise(window, None)

    def _denoise(self, window: Tensor, extra: Tensor | None) -> Tensor:
        level = window.mean(dim=(1, 2, 3), keepdim=True) if self.detrend else None
        x = window - level if level is not None else window
        out: Tensor = self.net(x if extra is None else torch.cat([x, extra], dim=1))
        return out + level if level is not None else out


class EdgePriorModel(DetrendedWindowModel):
    """DeepVID v2: the window plus the four edge-prior planes of a mean frame -> ``[B, 1, H, W]``.

    ``forward(window, mean_frame)`` takes the mean frame as ``[B, 1, H, W]``; without it the model uses the
    training movie's mean frame it keeps (``mean_frame`` buffer, saved with the weights; empty until
    :meth:`set_mean_frame`), which fixes the frame size it serves.
    """

    mean_frame: Tensor

    def __init__(self, net: nn.Module, detrend: bool, edge_prior: EdgePrior) -> None:
        super().__init__(net, detrend)
        self.edge_prior = edge_prior
        self.register_buffer("mean_frame", torch.zeros(0, 0))

    def set_mean_frame(self, mean_frame: Tensor) -> None:
        """Keep ``mean_frame`` ``[H, W]`` (normalised) as the fixed prior."""
        self.mean_frame = mean_frame.detach().to(torch.float32).clone()

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any, **kwargs: Any) -> None:
        # The buffer's size is the training frame size, unknown when the model is built: take the saved one.
        saved = state_dict.get(prefix + "mean_frame")
        if saved is not None:
            self.mean_frame = torch.empty_like(saved)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def forward(self, window: Tensor, mean_frame: Tensor | None = None) -> Tensor:
        if mean_frame is None:
            if self.mean_frame.numel() == 0:
                raise RuntimeError("this DeepVID v2 model has no fixed mean frame; pass one (running prior)")
            mean_frame = self.mean_frame.expand(window.shape[0], 1, -1, -1)
        return self._denoise(window, self.edge_prior(mean_frame))


class TemporalGradients(nn.Module):
    """``[B, L, H, W]`` window -> ``net`` on the window and its ``L - 1`` consecutive-frame differences."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, window: Tensor) -> Tensor:
        out: Tensor = self.net(torch.cat([window, window[:, 1:] - window[:, :-1]], dim=1))
        return out


class RunningPrior(nn.Module):
    """Served graph of a running prior: ``[B, L + 1, H, W]`` (window, then the series' running mean frame)."""

    def __init__(self, model: EdgePriorModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, planes: Tensor) -> Tensor:
        return self.model(planes[:, :-1], planes[:, -1:])


def _conv_weight_penalty(model: nn.Module, l1_weight: float, l2_weight: float) -> Tensor | None:
    """The references' explicit penalties on convolution weights (sums, as in DeepVID v2's worker)."""
    if not (l1_weight or l2_weight):
        return None
    total: Tensor | None = None
    for mod in model.modules():
        if isinstance(mod, nn.Conv2d):
            term = l1_weight * mod.weight.abs().sum() + l2_weight * mod.weight.square().sum()
            total = term if total is None else total + term
    return total


class MaskedCentreRecipe(Recipe):
    """Windows centred on every movie frame, random blind pixels in the centre frame, MSE over them; the network
    is the subclass's."""

    config: BlindPixelConfig

    def build_model(self) -> nn.Module:
        return DetrendedWindowModel(super().build_model(), self.config.detrend)

    def training_window(self) -> TrainingWindow:
        n = self.config.pre_post_frame
        multiple = self.config.window().spatial_multiple
        return TrainingWindow(frames=2 * n + 1, size=self.config.patch_xy, spatial_multiple=multiple, centre=n)

    def training_step(self, model: nn.Module, patches: Tensor, generator: torch.Generator) -> StepOutput:
        c = self.config
        n = c.pre_post_frame
        centre = patches[:, n]
        blinded, mask = random_blind_pixels(centre, c.blind_pixel_ratio, c.blind_pixel_method, generator)
        window = torch.cat([patches[:, :n], blinded.unsqueeze(1), patches[:, n + 1 : 2 * n + 1]], dim=1)
        # Planes after the window (v2's mean frame) are extra model inputs.
        extra = (patches[:, 2 * n + 1 :],) if patches.shape[1] > 2 * n + 1 else ()
        masked_mse = l2(model(window, *extra), centre.unsqueeze(1), mask.unsqueeze(1))
        penalty = _conv_weight_penalty(model, c.weight_l1, c.weight_l2)
        if penalty is None:
            return StepOutput(masked_mse)
        return StepOutput(masked_mse + penalty, {"masked_mse": float(masked_mse.detach())})

    def export_module(self, model: nn.Module) -> nn.Module:
        c = self.config
        if not c.inference_blind_pixels:
            return model
        return nn.Sequential(FixedBlindPixels(c.pre_post_frame, c.blind_pixel_ratio, c.blind_pixel_method), model)


class BlindPixelRecipe(MaskedCentreRecipe):
    """DeepVID: the full-resolution residual network on the window."""

    config: ResidualNetConfig

    def network(self) -> tuple[str, dict[str, Any]]:
        c = self.config
        return "deepvid_resnet", {
            "in_channels": c.input_frames,
            "features": c.features,
            "blocks": c.blocks,
            "norm": c.norm,
        }


class EdgePriorRecipe(BlindPixelRecipe):
    """DeepVID v2: trained with the training movie's mean frame (cropped and augmented with each sample) behind
    the edge prior; served with that mean frame kept in the graph (``fixed``) or with the series' running mean
    frame the engine appends to each window (``running``)."""

    config: DeepVIDv2Config

    def network(self) -> tuple[str, dict[str, Any]]:
        name, kwargs = super().network()
        return name, {**kwargs, "in_channels": self.config.input_frames + EdgePrior.EDGE_CHANNELS}

    def build_model(self) -> nn.Module:
        c = self.config
        return EdgePriorModel(
            Recipe.build_model(self), c.detrend, EdgePrior(c.edge_gaussian_size, c.edge_gaussian_sigma)
        )

    def training_window(self) -> TrainingWindow:
        w = super().training_window()
        return TrainingWindow(w.frames, w.size, w.spatial_multiple, centre=w.centre, mean_frame=True)

    def attach_mean_frame(self, model: nn.Module, mean_frame: Tensor) -> None:
        if not isinstance(model, EdgePriorModel):
            raise TypeError(f"DeepVID v2 trains an EdgePriorModel, got {type(model).__name__}")
        model.set_mean_frame(mean_frame)

    def export_module(self, model: nn.Module) -> nn.Module:
        if not isinstance(model, EdgePriorModel):
            raise TypeError(f"DeepVID v2 exports an EdgePriorModel, got {type(model).__name__}")
        graph: nn.Module = RunningPrior(model) if self.config.edge_prior == "running" else model
        return super().export_module(graph)

    def served_frame_shape(self, model: nn.Module) -> tuple[int, int] | None:
        if self.config.edge_prior == "running" or not isinstance(model, EdgePriorModel):
            return None
        h, w = model.mean_frame.shape
        return int(h), int(w)


class TemporalGradientRecipe(MaskedCentreRecipe):
    """TeD (provisional): a 2-D U-Net on the window with blind centre pixels and its temporal gradients."""

    config: TeDConfig

    def network(self) -> tuple[str, dict[str, Any]]:
        c = self.config
        return "unet2d", {
            "in_channels": 2 * c.input_frames - 1,
            "out_channels": 1,
            "base": c.base_channels,
            "levels": c.levels,
        }

    def build_model(self) -> nn.Module:
        return DetrendedWindowModel(TemporalGradients(Recipe.build_model(self)), self.config.detrend)
