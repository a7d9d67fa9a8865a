"""`livedenoise export-bmz` and `livedenoise import-bmz` through the command line's own `main`, network blocked
(the upload to a real server: tests/integration/control/test_bmz_import.py)."""

from __future__ import annotations

import socket
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

pytest.importorskip("bioimageio.spec")
pytest.importorskip("onnxruntime")

from livedenoise.clients.cli import main  # noqa: E402
from livedenoise.clients.model_spec import WindowSpec  # noqa: E402


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    attempts: list[str] = []

    def refuse(*args: Any, **kwargs: Any) -> Any:
        attempts.append(repr(args[:3]))
        raise OSError("network access is blocked in the BioImage Model Zoo tests")

    for target, name in [(socket, "getaddrinfo"), (socket, "create_connection"), (socket.socket, "connect")]:
        monkeypatch.setattr(target, name, refuse)
    yield
    assert not attempts, f"network requests: {attempts}"


@pytest.fixture
def model_and_movie(onnx_models: ModuleType, tmp_path: Path) -> tuple[Path, Path]:
    model = onnx_models.make_mix_model(
        tmp_path / "model.onnx", WindowSpec(before=2, after=1, out_frames=2, spatial_multiple=4), levels=2
    )
    movie = tmp_path / "movie.npy"
    np.save(movie, np.random.default_rng(3).poisson(60.0, (12, 20, 28)).astype(np.uint16))
    return model, movie


def test_export_then_import_through_the_command_line(
    model_and_movie: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model, movie = model_and_movie
    package = tmp_path / "out" / "model.zip"
    args = ["export-bmz", str(model), str(package), "--movie", str(movie), "--author", "Ada Lovelace"]
    args += ["--author", "Grace Hopper", "--name", "calcium denoiser (lab 3)", "--license", "MIT", "--tag", "calcium"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert f"wrote {package}" in out and "valid-format" in out and "reproduces the test output" in out
    with zipfile.ZipFile(package) as archive:
        rdf = archive.read("rdf.yaml").decode()
    assert "name: calcium denoiser (lab 3)" in rdf and "license: MIT" in rdf and "- calcium" in rdf
    assert "Grace Hopper" in rdf and "movie: movie.npy" in rdf

    assert main(["import-bmz", str(package), str(tmp_path / "back.onnx")]) == 0
    assert (tmp_path / "back.onnx").read_bytes() == model.read_bytes()
    assert "wrote" in capsys.readouterr().out


def test_export_without_author_names_the_user_and_says_how_to_change_it(
    model_and_movie: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model, movie = model_and_movie
    assert main(["export-bmz", str(model), str(tmp_path / "p.zip"), "--movie", str(movie)]) == 0
    assert "--author" in capsys.readouterr().out


def test_import_of_a_foreign_or_broken_package_is_one_clear_line(
    model_and_movie: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "rdf.yaml").write_text("type: model\nname: someone else's model\nformat_version: 0.5.4\n")
    assert main(["import-bmz", str(tmp_path / "foreign"), str(tmp_path / "m.onnx")]) == 2
    err = capsys.readouterr().err
    assert "livedenoise import-bmz: error:" in err and "not exported by livedenoise" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    (tmp_path / "broken.zip").write_bytes(b"PK\x03\x04 not really a zip")
    assert main(["import-bmz", str(tmp_path / "broken.zip"), str(tmp_path / "m.onnx")]) == 2
    assert "not a zip archive" in capsys.readouterr().err
    assert not (tmp_path / "m.onnx").exists()


def test_export_of_a_file_that_is_no_livedenoise_model_is_one_clear_line(
    onnx_models: ModuleType, model_and_movie: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bare = onnx_models.write_model_without_spec(tmp_path / "bare.onnx")
    assert main(["export-bmz", str(bare), str(tmp_path / "p.zip"), "--movie", str(model_and_movie[1])]) == 2
    assert "no livedenoise metadata" in capsys.readouterr().err


def test_load_without_a_server_and_export_without_a_movie_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["import-bmz", str(tmp_path / "p.zip"), str(tmp_path / "m.onnx"), "--load"]) == 2
    assert "--load needs --url" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["export-bmz", "m.onnx", "p.zip"])
    assert "--movie" in capsys.readouterr().err


def test_both_commands_have_help(capsys: pytest.CaptureFixture[str]) -> None:
    """(Every option's help text is checked for every command in tests/unit/clients/test_cli.py.)"""
    for command in ("export-bmz", "import-bmz"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        assert "BioImage Model Zoo" in capsys.readouterr().out


def test_without_bioimageio_the_error_names_the_extra(model_and_movie: tuple[Path, Path], tmp_path: Path) -> None:
    model, movie = model_and_movie
    code = (
        "import sys; sys.modules['bioimageio'] = None\n"
        "from livedenoise.clients.cli import main\n"
        f"sys.exit(main(['export-bmz', {str(model)!r}, {str(tmp_path / 'p.zip')!r}, '--movie', {str(movie)!r}]))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "pip install 'livedenoise[bmz]'" in proc.stderr and "Traceback" not in proc.stderr
