"""TrainingData: jobs read only under the data root; uploads are stored by content id."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest

from livedenoise.server.errors import InvalidRequest
from livedenoise.server.jobs.data import TrainingData


@pytest.fixture
def data(tmp_path: Path) -> TrainingData:
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    np.save(root / "sub" / "movie.npy", np.zeros((4, 8, 8), np.uint16))
    (tmp_path / "outside.npy").write_bytes(b"secret")
    return TrainingData(root)


def test_relative_and_absolute_paths_inside_the_root(data: TrainingData) -> None:
    expected = (data.root / "sub" / "movie.npy").resolve()
    assert data.resolve("sub/movie.npy") == expected
    assert data.resolve(str(data.root / "sub" / "movie.npy")) == expected
    assert data.resolve("sub/../sub/movie.npy") == expected


@pytest.mark.parametrize("value", ["../outside.npy", "sub/../../outside.npy"])
def test_dotdot_escape_is_refused(data: TrainingData, value: str) -> None:
    with pytest.raises(InvalidRequest, match="outside the data root"):
        data.resolve(value)


def test_absolute_path_outside_is_refused(data: TrainingData, tmp_path: Path) -> None:
    with pytest.raises(InvalidRequest, match="outside the data root"):
        data.resolve(str(tmp_path / "outside.npy"))


def test_symlink_escape_is_refused(data: TrainingData, tmp_path: Path) -> None:
    os.symlink(tmp_path / "outside.npy", data.root / "link.npy")
    os.symlink(tmp_path, data.root / "dirlink")
    with pytest.raises(InvalidRequest, match="outside the data root"):
        data.resolve("link.npy")
    with pytest.raises(InvalidRequest, match="outside the data root"):
        data.resolve("dirlink/outside.npy")


@pytest.mark.parametrize(
    ("value", "message"),
    [("missing.npy", "does not exist"), ("sub", "not a file"), ("", "empty"), ("d-0123456789ab", "no uploaded data")],
)
def test_bad_values_name_the_problem(data: TrainingData, value: str, message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        data.resolve(value)


def test_wrong_suffix(data: TrainingData) -> None:
    (data.root / "notes.txt").write_text("x")
    with pytest.raises(InvalidRequest, match="suffix '.txt'"):
        data.resolve("notes.txt")


def test_upload_is_stored_by_content_and_resolvable(data: TrainingData) -> None:
    buf = io.BytesIO()
    np.save(buf, np.arange(64, dtype=np.uint16).reshape(4, 4, 4))
    first = data.store_upload(io.BytesIO(buf.getvalue()), "cam.npy")
    again = data.store_upload(io.BytesIO(buf.getvalue()), "other-name.npy")
    assert first.id == again.id and first.id.startswith("d-")
    assert data.resolve(first.id) == (data.root / first.path).resolve()
    assert np.load(data.resolve(first.id)).sum() == np.arange(64).sum()
    assert len(list(data.uploads.iterdir())) == 1
    with pytest.raises(InvalidRequest, match="must end in"):
        data.store_upload(io.BytesIO(b"x"), "evil.sh")


def test_upload_over_the_size_limit_is_refused(tmp_path: Path) -> None:
    import io

    from livedenoise.server.errors import UploadTooLarge

    data = TrainingData(tmp_path / "root", max_bytes=10)
    with pytest.raises(UploadTooLarge, match="limit of 10 bytes"):
        data.store_upload(io.BytesIO(b"x" * 11), "movie.npy")
    assert list((tmp_path / "root" / "uploads").iterdir()) == []


def test_an_ome_zarr_folder_is_a_movie_and_may_not_lead_outside(data: TrainingData, tmp_path: Path) -> None:
    store = data.root / "sub" / "cam.ome.zarr"
    (store / "0").mkdir(parents=True)
    (store / "zarr.json").write_text("{}")
    assert data.resolve("sub/cam.ome.zarr") == store.resolve()
    (data.root / "flat.zarr").write_text("not a folder")
    with pytest.raises(InvalidRequest, match="not a folder"):
        data.resolve("flat.zarr")
    os.symlink(tmp_path / "outside.npy", store / "0" / "c")
    with pytest.raises(InvalidRequest, match="symlink leading outside the data root: 'c'"):
        data.resolve("sub/cam.ome.zarr")


def test_a_zipped_ome_zarr_upload_keeps_its_double_suffix(data: TrainingData) -> None:
    record = data.store_upload(io.BytesIO(b"PK\x03\x04 zipped store"), "cam.ome.zarr.zip")
    assert record.path.endswith(".zarr.zip") and data.resolve(record.id).name.endswith(".zarr.zip")
    with pytest.raises(InvalidRequest, match="zip an OME-Zarr folder"):
        data.store_upload(io.BytesIO(b"x"), "cam.zip")
