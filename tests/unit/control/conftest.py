"""Fixtures for the control-plane unit tests: real tiny ONNX models (tests/onnx_models.py) and settings."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from livedenoise.clients.model_spec import WindowSpec
from livedenoise.server.settings import ServerSettings


def load_onnx_models() -> ModuleType:
    """tests/onnx_models.py, imported by path (pytest runs with --import-mode=importlib)."""
    name = "livedenoise_tests_onnx_models"
    if name not in sys.modules:
        path = Path(__file__).resolve().parents[2] / "onnx_models.py"
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.fixture
def onnx_models() -> ModuleType:
    return load_onnx_models()


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
