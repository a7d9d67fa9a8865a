"""Checkpoints without pickle: weights in safetensors, everything else in a JSON beside them."""

from __future__ import annotations

import json
import logging
from dataclasses import asdict
from pathlib import Path
from typing import Any

from safetensors.torch import load_file, save_file

from livedenoise.clients.model_spec import Normalization, WindowSpec
from livedenoise.models.config import TrainConfig
from livedenoise.models.recipes import recipe_for
from livedenoise.models.trainer import TrainResult
from livedenoise.models.validation import ValidationReport

__all__ = ["CHECKPOINT_FORMAT", "WEIGHTS_NAME", "META_NAME", "save_checkpoint", "load_checkpoint"]

logger = logging.getLogger(__name__)

CHECKPOINT_FORMAT = 2
WEIGHTS_NAME = "model.safetensors"
META_NAME = "checkpoint.json"


def save_checkpoint(result: TrainResult, directory: str | Path) -> Path:
    """Write ``result`` to ``directory`` (created if needed) as ``model.safetensors`` + ``checkpoint.json``."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    # safetensors refuses shared or non-contiguous storage; clone each tensor into its own buffer.
    state = {k: v.detach().cpu().contiguous().clone() for k, v in result.network.state_dict().items()}
    save_file(state, str(out / WEIGHTS_NAME), metadata={"format": str(CHECKPOINT_FORMAT), "method": result.recipe.name})
    meta: dict[str, Any] = {
        "format": CHECKPOINT_FORMAT,
        "method": result.recipe.name,
        "config": result.config.to_json_dict(),
        "normalization": asdict(result.normalization),
        "window": asdict(result.window),
        "history": list(result.history),
        "data_digest": result.data_digest,
        "steps": result.steps,
        "elapsed_s": result.elapsed_s,
        "stopped_early": result.stopped_early,
        "validation": asdict(result.validation) if result.validation is not None else None,
        "val_history": list(result.val_history),
    }
    (out / META_NAME).write_text(json.dumps(meta, indent=2, sort_keys=True))
    logger.info("checkpoint written to %s", out)
    return out


def load_checkpoint(directory: str | Path) -> TrainResult:
    """Rebuild the :class:`TrainResult` saved by :func:`save_checkpoint` (network in eval mode, on the CPU).

    Raises
    ------
    FileNotFoundError
        A checkpoint file is missing.
    ValueError
        Unknown format or method, or weights that do not match the network the config describes.
    """
    src = Path(directory)
    for name in (WEIGHTS_NAME, META_NAME):
        if not (src / name).is_file():
            raise FileNotFoundError(f"checkpoint {src} has no {name}")
    meta = json.loads((src / META_NAME).read_text())
    if meta.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"checkpoint format {meta.get('format')!r} is not supported (expected {CHECKPOINT_FORMAT})")
    config = TrainConfig(**meta["config"])
    if config.method != meta.get("method"):
        raise ValueError(
            f"checkpoint {src} names method {meta.get('method')!r} but its config is for {config.method!r}"
        )
    recipe = recipe_for(config.method_config)
    model = recipe.build_model()
    try:
        model.load_state_dict(load_file(str(src / WEIGHTS_NAME)), strict=True)
    except RuntimeError as exc:
        raise ValueError(f"weights in {src / WEIGHTS_NAME} do not match the {recipe.name} network: {exc}") from None
    model.eval()
    return TrainResult(
        network=model,
        recipe=recipe,
        config=config,
        normalization=Normalization.from_dict(meta["normalization"]),
        window=WindowSpec.from_dict(meta["window"]),
        history=[float(x) for x in meta.get("history", [])],
        data_digest=str(meta.get("data_digest", "")),
        steps=int(meta.get("steps", 0)),
        elapsed_s=float(meta.get("elapsed_s", 0.0)),
        stopped_early=bool(meta.get("stopped_early", False)),
        validation=ValidationReport(**meta["validation"]) if meta.get("validation") else None,
        val_history=[float(x) for x in meta.get("val_history", [])],
    )
