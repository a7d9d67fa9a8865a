"""Fixtures for the control-plane unit tests: real tiny ONNX models (tests/onnx_models.py) and settings."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest

from livedenoise.clients.model_spec import WindowSpec
from livedenoise.server.settings import ServerSettings


@pytest.fixture
def model_file(tmp_path: Path, onnx_models: ModuleType):
    """Factory: a valid tiny model file (``seed`` changes the weights, hence the id)."""

    def make(seed: int = 0, name: str = "mix") -> Path:
        return onnx_models.make_mix_model(tmp_path / f"{name}-{seed}.onnx", WindowSpec(before=1, after=1), seed=seed)

    return make


@pytest.fixture
def settings(tmp_home: Path) -> ServerSettings:
    s = ServerSettings(home=tmp_home, data_root=tmp_home / "data")
    s.ensure_dirs()
    return s
