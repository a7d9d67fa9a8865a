"""Train then export: the one function the CLI and the job worker call."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from numpy.typing import NDArray

from livedenoise.clients.model_spec import ModelSpec
from livedenoise.models.checkpoint import save_checkpoint
from livedenoise.models.config import TrainConfig
from livedenoise.models.export import export_onnx
from livedenoise.models.trainer import TrainProgress, TrainResult, fit

__all__ = ["train_and_export"]


def train_and_export(
    movie: NDArray[Any],
    config: TrainConfig,
    out_path: str | Path,
    progress: Callable[[TrainProgress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    *,
    device: torch.device | None = None,
    verify: bool = True,
    checkpoint_dir: str | Path | None = None,
) -> tuple[TrainResult, ModelSpec]:
    """Train ``config.method`` on ``movie`` and export the served ONNX model to ``out_path``.

    With ``checkpoint_dir`` the trained network is also saved there (safetensors + JSON, no pickle), so it
    can be re-exported or evaluated later without retraining.

    See :func:`livedenoise.models.trainer.fit` (raises ``TrainingStopped`` when ``should_stop`` fires) and
    :func:`livedenoise.models.export.export_onnx` (verified against ONNX Runtime unless ``verify=False``).
    """
    result = fit(config, movie, device=device, progress=progress, should_stop=should_stop)
    if checkpoint_dir is not None:
        save_checkpoint(result, checkpoint_dir)
    spec = export_onnx(result, out_path, verify=verify)
    return result, spec
