"""Packaging guards: the three source folders install only as ``livedenoise.*`` (STYLE.md §2.1).

setuptools' package discovery would install bare ``server``/``models``/``clients``; the explicit
``packages`` list in pyproject.toml avoids that, and these tests keep the list complete.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = {"server": "livedenoise.server", "models": "livedenoise.models", "clients": "livedenoise.clients"}


def _source_packages() -> set[str]:
    found = set()
    for folder, prefix in SOURCES.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / folder)
            if "__pycache__" in rel.parts:
                continue
            found.add(".".join([prefix, *rel.parts]))
    return found


def _source_modules() -> set[str]:
    """Wheel paths every source .py file must have (``livedenoise/<folder>/...``)."""
    wanted = set()
    packages = _source_packages()
    for folder in SOURCES:
        for py in (ROOT / folder).rglob("*.py"):
            rel = py.relative_to(ROOT)
            package = ".".join(["livedenoise", *rel.parent.parts])
            if package in packages:  # files in folders without __init__.py are not part of the package
                wanted.add("livedenoise/" + rel.as_posix())
    return wanted


def test_every_package_folder_is_listed_in_pyproject():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    missing = sorted(_source_packages() - listed)
    assert not missing, f"add these to [tool.setuptools] packages in pyproject.toml: {missing}"
    assert all(name.startswith("livedenoise.") for name in listed), f"unprefixed packages listed: {sorted(listed)}"
    stale = sorted(listed - _source_packages())
    assert not stale, f"pyproject.toml lists packages with no folder/__init__.py: {stale}"
    assert config["package-dir"] == {prefix: folder for folder, prefix in SOURCES.items()}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Build from a copy so the build never writes build/ or *.egg-info into the working tree.
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        if (ROOT / name).exists():
            shutil.copy2(ROOT / name, src / name)
    for folder in SOURCES:
        shutil.copytree(ROOT / folder, src / folder, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    out = tmp / "dist"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "-q",
            "-w",
            str(out),
            str(src),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, f"wheel build failed:\n{proc.stdout}\n{proc.stderr}"
    wheels = list(out.glob("livedenoise-*.whl"))
    assert len(wheels) == 1, f"expected one wheel in {out}, got {wheels}"
    return wheels[0]


def test_wheel_installs_only_under_livedenoise(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    tops = {name.split("/")[0] for name in names}
    assert not tops & {"server", "models", "clients"}, f"bare top-level packages in the wheel: {sorted(tops)}"
    assert {t for t in tops if not t.endswith(".dist-info")} == {"livedenoise"}
    assert "livedenoise/__init__.py" not in names  # a PEP 420 namespace shared by the three parts
    missing = sorted(_source_modules() - set(names))
    assert not missing, f"source modules missing from the wheel: {missing[:20]}"
    for folder in SOURCES:
        assert f"livedenoise/{folder}/py.typed" in names


def test_wheel_imports_from_outside_the_repo(wheel, tmp_path):
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    code = (
        "import livedenoise.clients, livedenoise.clients.protocol, livedenoise.server.settings\n"
        f"assert livedenoise.clients.__file__.startswith(r'{site}'), livedenoise.clients.__file__\n"
        "try:\n    import server\nexcept ImportError:\n    pass\nelse:\n    raise SystemExit('bare `server` importable')\n"
    )
    env = {**os.environ, "PYTHONPATH": str(site)}
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
