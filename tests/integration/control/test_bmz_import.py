"""`livedenoise import-bmz --url … --load` against a real control plane and ingest: the package's model is
uploaded unchanged, becomes the served model, and a refused upload still leaves the checked model on disk."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

pytest.importorskip("bioimageio.spec")

from livedenoise.clients.cli import main  # noqa: E402
from livedenoise.clients.control import ControlClient  # noqa: E402
from livedenoise.clients.model_spec import WindowSpec  # noqa: E402

TOKEN = "bmz-s3cret"


@pytest.fixture
def package(onnx_models: ModuleType, tmp_path: Path) -> tuple[Path, Path]:
    model = onnx_models.make_mix_model(
        tmp_path / "model.onnx", WindowSpec(before=2, after=1, out_frames=2, spatial_multiple=4), levels=2
    )
    movie = tmp_path / "movie.npy"
    np.save(movie, np.random.default_rng(3).poisson(60.0, (12, 20, 28)).astype(np.uint16))
    out = tmp_path / "model.zip"
    assert main(["export-bmz", str(model), str(out), "--movie", str(movie), "--author", "A B"]) == 0
    return model, out


def test_import_uploads_and_serves_the_packaged_model(
    start_server: Callable[..., str], package: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = start_server(token=TOKEN)
    model, zipped = package
    written = tmp_path / "imported.onnx"
    args = ["import-bmz", str(zipped), str(written), "--url", url, "--token", TOKEN, "--name", "from-zoo", "--load"]
    assert main(args) == 0
    assert written.read_bytes() == model.read_bytes()
    with ControlClient(url, token=TOKEN) as control:
        (info,) = [m for m in control.models() if m.name == "from-zoo"]
        assert info.sha256 == hashlib.sha256(model.read_bytes()).hexdigest()
        status = control.status()
        assert status.model is not None and status.model.id == info.id
    assert f"model {info.id}" in capsys.readouterr().out


def test_a_refused_upload_still_leaves_the_checked_model(
    start_server: Callable[..., str], package: tuple[Path, Path], tmp_path: Path
) -> None:
    url = start_server(token=TOKEN)
    model, zipped = package
    with pytest.raises(SystemExit, match="was written, but the upload failed"):
        main(["import-bmz", str(zipped), str(tmp_path / "m.onnx"), "--url", url])  # no token
    assert (tmp_path / "m.onnx").read_bytes() == model.read_bytes()
