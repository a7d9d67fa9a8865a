"""Fixtures shared by the whole suite (keep this file small; put area fixtures in the area's conftest)."""

from __future__ import annotations

import importlib.util
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def free_port() -> Callable[[], int]:
    """A function returning a TCP port on 127.0.0.1 that was free a moment ago (prefer port 0 binds)."""
    return _free_port


@pytest.fixture
def tmp_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private ``LIVEDENOISE_HOME`` (registry, job DB, logs) and data root, with no token or model from the env."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("LIVEDENOISE_HOME", str(home))
    monkeypatch.setenv("LIVEDENOISE_DATA_ROOT", str(home / "data"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    for name in ("LIVEDENOISE_API_TOKEN", "LIVEDENOISE_MODEL", "LIVEDENOISE_BIND"):
        monkeypatch.delenv(name, raising=False)
    return home


@pytest.fixture(scope="session")
def onnx_models() -> ModuleType:
    """``tests/onnx_models.py`` (torch-free test models), imported by path: the suite runs with
    ``--import-mode=importlib``, so the repository root is never on ``sys.path``."""
    name = "livedenoise_tests_onnx_models"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).resolve().parent / "onnx_models.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def _cuda_available() -> bool:
    """A CUDA device and ONNX Runtime's CUDA provider (the GPU image's onnxruntime-gpu)."""
    try:
        import onnxruntime as ort
    except ImportError:
        return False
    return Path("/dev/nvidia0").exists() and "CUDAExecutionProvider" in ort.get_available_providers()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``gpu`` run where a CUDA GPU is usable and are skipped, saying why, everywhere else."""
    if _cuda_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU and onnxruntime-gpu (the gpu marker)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
