"""OME-Zarr movies: stores written by another tool (ome-zarr-py, NGFF 0.4 and 0.5), our own writes, the growing
writer (readable while it grows, nothing lost on a crash but the frame in flight) and the errors bad stores get."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("zarr")

from livedenoise.clients.movie_io import read_movie, write_movie  # noqa: E402
from livedenoise.clients.ome_zarr import (  # noqa: E402
    OmeZarrMovieWriter,
    is_ome_zarr_path,
    read_ome_zarr,
    write_ome_zarr,
)
from livedenoise.clients.physical_scale import PhysicalScale, read_physical_scale  # noqa: E402

FIXTURES = Path(__file__).parent / "data"
FIXTURE_SHAPE = (3, 6, 7)


def expected_fixture(dtype: str) -> np.ndarray:
    """What data/make_ome_zarr_fixtures.py stored in every fixture."""
    return (np.arange(np.prod(FIXTURE_SHAPE)).reshape(FIXTURE_SHAPE) * 3 + 1).astype(dtype)


@pytest.mark.parametrize("version", ["v04", "v05"])
def test_reads_another_writers_tyx_image_and_its_scale(version: str) -> None:
    path = FIXTURES / f"{version}_tyx.ome.zarr"
    movie = read_movie(path)
    np.testing.assert_array_equal(movie, expected_fixture("uint16"))
    assert movie.dtype == np.uint16
    assert read_physical_scale(path) == PhysicalScale(pixel_size_um=(0.25, 0.125), frame_interval_s=0.5)


@pytest.mark.parametrize("version", ["v04", "v05"])
def test_reads_a_bioformats2raw_container_with_singleton_c_and_z(version: str) -> None:
    path = FIXTURES / f"{version}_bioformats2raw.ome.zarr"
    np.testing.assert_array_equal(read_ome_zarr(path), expected_fixture("float32"))
    # 300 nm pixels; the time axis has no unit there.
    assert read_physical_scale(path) == PhysicalScale(pixel_size_um=(0.3, 0.3), frame_interval_s=None)


@pytest.mark.parametrize("version", ["v04", "v05"])
def test_two_channels_are_refused_with_the_axes_named(version: str) -> None:
    with pytest.raises(ValueError, match=r"'c' of size 2.*single-channel"):
        read_movie(FIXTURES / f"{version}_two_channels.ome.zarr")


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "int16", "float32"])
def test_write_read_round_trip_keeps_pixels_type_and_metadata(tmp_path: Path, dtype: str) -> None:
    rng = np.random.default_rng(1)
    movie = (rng.random((9, 13, 21)) * 200).astype(dtype)
    attrs = {"livedenoise": {"model_id": "m-abc", "method": "deepcad_rt"}}
    path = write_movie(
        tmp_path / "out.ome.zarr", movie, pixel_size_um=(0.4, 0.4), frame_interval_s=0.033, attributes=attrs
    )
    back = read_movie(path)
    np.testing.assert_array_equal(back, movie)
    assert back.dtype == movie.dtype
    assert read_physical_scale(path) == PhysicalScale(pixel_size_um=(0.4, 0.4), frame_interval_s=0.033)
    stored = json.loads((path / "zarr.json").read_text())["attributes"]
    assert stored["livedenoise"] == attrs["livedenoise"]
    assert stored["ome"]["version"] == "0.5"
    assert [a["name"] for a in stored["ome"]["multiscales"][0]["axes"]] == ["t", "y", "x"]


def test_rewriting_replaces_a_store_but_never_another_folder(tmp_path: Path) -> None:
    path = write_ome_zarr(tmp_path / "m.zarr", np.zeros((2, 4, 4), np.uint16))
    write_ome_zarr(path, np.ones((3, 4, 4), np.uint16))
    assert read_ome_zarr(path).shape == (3, 4, 4)
    precious = tmp_path / "precious.zarr"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="not a Zarr store"):
        write_ome_zarr(precious, np.zeros((1, 4, 4), np.uint8))
    assert (precious / "notes.txt").read_text() == "keep me"


def test_the_writer_appends_frames_that_a_reader_sees_as_they_come(tmp_path: Path) -> None:
    path = tmp_path / "live.ome.zarr"
    frames = [np.full((5, 7), i, np.uint16) for i in range(6)]
    with OmeZarrMovieWriter(path, shape_yx=(5, 7), dtype="uint16", frame_interval_s=0.1) as writer:
        assert read_ome_zarr(path).shape == (0, 5, 7)
        for i, frame in enumerate(frames):
            assert writer.append(frame) == i
            seen = read_ome_zarr(path)
            assert seen.shape == (i + 1, 5, 7)
            np.testing.assert_array_equal(seen, np.stack(frames[: i + 1]))
    assert writer.frames == 6
    with pytest.raises(ValueError, match="closed"):
        writer.append(frames[0])


def test_a_concurrent_reader_never_sees_an_unwritten_frame(tmp_path: Path) -> None:
    path = tmp_path / "race.ome.zarr"
    writer = OmeZarrMovieWriter(path, shape_yx=(8, 8), dtype="uint16")
    done = threading.Event()
    problems: list[str] = []

    def read_while_growing() -> None:
        while not done.is_set():
            movie = read_ome_zarr(path)
            # Frame i is all i + 1, so a zero (the fill value) would be a frame read before it was stored.
            for i, frame in enumerate(movie):
                if not (frame == i + 1).all():
                    problems.append(f"frame {i} of {len(movie)} read as {np.unique(frame)}")

    reader = threading.Thread(target=read_while_growing)
    reader.start()
    try:
        for i in range(40):
            writer.append(np.full((8, 8), i + 1, np.uint16))
    finally:
        done.set()
        reader.join()
        writer.close()
    assert problems == []
    assert read_ome_zarr(path).shape[0] == 40


def test_a_crashed_writer_loses_nothing_it_appended(tmp_path: Path) -> None:
    path = tmp_path / "crash.ome.zarr"
    script = f"""
import os, numpy as np
from livedenoise.clients.ome_zarr import OmeZarrMovieWriter
w = OmeZarrMovieWriter({str(path)!r}, shape_yx=(6, 9), dtype="uint8")
for i in range(5):
    w.append(np.full((6, 9), i, np.uint8))
os._exit(3)  # no close, no flush: as a killed acquisition
"""
    assert subprocess.run([sys.executable, "-c", script], timeout=60).returncode == 3
    movie = read_movie(path)
    np.testing.assert_array_equal(movie, np.stack([np.full((6, 9), i, np.uint8) for i in range(5)]))


def test_the_writer_refuses_frames_that_do_not_match(tmp_path: Path) -> None:
    with OmeZarrMovieWriter(tmp_path / "w.zarr", shape_yx=(4, 4), dtype="uint16") as writer:
        with pytest.raises(ValueError, match=r"float32 \[4, 4\] but the movie is uint16 \[4, 4\]"):
            writer.append(np.zeros((4, 4), np.float32))
        with pytest.raises(ValueError, match=r"\[4, 5\]"):
            writer.append(np.zeros((4, 5), np.uint16))
        writer.append(np.zeros((4, 4), ">u2"))  # byte order is not a type difference
    assert read_ome_zarr(tmp_path / "w.zarr").shape == (1, 4, 4)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        OmeZarrMovieWriter(tmp_path / "w.zarr", shape_yx=(4, 4), dtype="uint16")
    with pytest.raises(ValueError, match="'ome'"):
        OmeZarrMovieWriter(tmp_path / "x.zarr", shape_yx=(4, 4), dtype="uint16", attributes={"ome": {}})
    with pytest.raises(ValueError, match="pixel_size_um"):
        OmeZarrMovieWriter(tmp_path / "y.zarr", shape_yx=(4, 4), dtype="uint16", pixel_size_um=(0.0, 1.0))


def test_a_zipped_store_is_read_in_place(tmp_path: Path) -> None:
    movie = np.arange(2 * 5 * 3, dtype=np.uint16).reshape(2, 5, 3)
    store = write_ome_zarr(tmp_path / "m.ome.zarr", movie)
    zipped = tmp_path / "m.ome.zarr.zip"
    with zipfile.ZipFile(zipped, "w") as zf:
        for file in sorted(store.rglob("*")):
            if file.is_file():
                zf.write(file, file.relative_to(store.parent).as_posix())  # inside a top folder, as zip -r does
    np.testing.assert_array_equal(read_movie(zipped), movie)
    with pytest.raises(ValueError, match="read only"):
        write_movie(tmp_path / "new.zarr.zip", movie)


def test_bad_stores_get_errors_that_name_them(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nothere.zarr"):
        read_movie(tmp_path / "nothere.zarr")
    empty = tmp_path / "empty.zarr"
    empty.mkdir()
    with pytest.raises(ValueError, match="empty.zarr: not a readable Zarr group"):
        read_movie(empty)
    garbage = tmp_path / "garbage.zarr"
    garbage.mkdir()
    (garbage / "zarr.json").write_text("{ not json")
    with pytest.raises(ValueError, match="garbage.zarr"):
        read_movie(garbage)
    plain = tmp_path / "plain.zarr"
    write_ome_zarr(plain, np.zeros((1, 3, 3), np.uint8))
    meta = json.loads((plain / "zarr.json").read_text())
    meta["attributes"].pop("ome")
    (plain / "zarr.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="no OME-NGFF image"):
        read_movie(plain)
    damaged = write_ome_zarr(tmp_path / "damaged.zarr", np.ones((2, 3, 3), np.uint16))
    for chunk in (damaged / "0" / "c").rglob("*"):
        if chunk.is_file():
            chunk.write_bytes(b"\x00\x01garbage")
    with pytest.raises(ValueError, match="damaged"):
        read_movie(damaged)
    not_zip = tmp_path / "fake.zarr.zip"
    not_zip.write_bytes(b"PK but not really")
    with pytest.raises(ValueError, match="not a zip file"):
        read_movie(not_zip)


def test_ome_zarr_paths_are_recognised() -> None:
    assert is_ome_zarr_path("a.ome.zarr") and is_ome_zarr_path("b.zarr/") and is_ome_zarr_path("C.ZARR")
    assert not is_ome_zarr_path("a.tif") and not is_ome_zarr_path("zarr")


def test_fixtures_stay_in_the_repository_as_written(tmp_path: Path) -> None:
    """Reading never modifies a store (a fixture copied and read is byte-identical afterwards)."""
    copy = tmp_path / "copy.ome.zarr"
    shutil.copytree(FIXTURES / "v05_tyx.ome.zarr", copy)
    before = {p.relative_to(copy): p.read_bytes() for p in copy.rglob("*") if p.is_file()}
    read_movie(copy)
    read_physical_scale(copy)
    assert {p.relative_to(copy): p.read_bytes() for p in copy.rglob("*") if p.is_file()} == before


def test_the_reply_sink_keeps_t_equal_to_the_sent_index(tmp_path: Path) -> None:
    from livedenoise.clients.protocol import Header, MessageType
    from livedenoise.clients.reply_sink import ZarrReplySink
    from livedenoise.clients.stream_result import Reply

    def reply(kind: MessageType, index: int | None, series: str = "s1") -> Reply:
        header = Header(type=kind, stream="cam", series=series, index=index, model="m-1")
        pixels = np.full((3, 4), float(index or 0), np.float32) if kind is MessageType.FRAME else None
        return Reply(header=header, frame=pixels)

    writer = OmeZarrMovieWriter(tmp_path / "out.ome.zarr", shape_yx=(3, 4), dtype="float32")
    sink = ZarrReplySink(writer, "s1", {"stream": "cam"})
    for r in [
        reply(MessageType.FRAME, 0),
        reply(MessageType.FRAME, 7, series="old"),  # a previous series being flushed: not ours
        reply(MessageType.SKIPPED, 1),
        reply(MessageType.FRAME, 3),  # ahead of 2: held until 2 arrives
        reply(MessageType.ERROR, 2),
        reply(MessageType.FRAME, 4),
        reply(MessageType.END, None),
    ]:
        sink(r)
    writer.close()
    assert sink.waiting == 0
    movie = read_ome_zarr(tmp_path / "out.ome.zarr")
    assert movie.shape == (5, 3, 4)
    assert [float(f[0, 0]) if np.isfinite(f).all() else "nan" for f in movie] == [0.0, "nan", "nan", 3.0, 4.0]
    attrs = json.loads((tmp_path / "out.ome.zarr" / "zarr.json").read_text())["attributes"]
    assert attrs["livedenoise"] == {"stream": "cam", "model_id": "m-1"}
