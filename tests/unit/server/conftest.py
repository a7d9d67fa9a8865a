"""Fixtures for server unit tests: the tiny ONNX model builders of ``tests/onnx_models.py``."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest


def load_onnx_models() -> ModuleType:
    """Import ``tests/onnx_models.py`` by path (tests run with --import-mode=importlib, no repo on sys.path)."""
    name = "livedenoise_tests_onnx_models"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).resolve().parents[2] / "onnx_models.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.fixture(scope="session")
def onnx_models() -> ModuleType:
    return load_onnx_models()
