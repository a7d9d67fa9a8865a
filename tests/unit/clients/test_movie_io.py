"""read_movie / write_movie round trips and the errors bad files get."""

from __future__ import annotations

import logging
import sys

import numpy as np
import pytest
import tifffile

from livedenoise.clients import movie_io
from livedenoise.clients.movie_io import read_movie, write_movie


def _movie(dtype: str, shape: tuple[int, ...] = (5, 12, 14)) -> np.ndarray:
    rng = np.random.default_rng(7)
    if np.dtype(dtype).kind == "f":
        return (rng.standard_normal(shape) * 100).astype(dtype)
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, size=shape, endpoint=True).astype(dtype)


@pytest.mark.parametrize("name", ["m.tif", "m.tiff", "m.ome.tif", "m.ome.tiff", "m.npy"])
@pytest.mark.parametrize("dtype", ["uint8", "uint16", "float32", "float64"])
def test_round_trip(tmp_path, name, dtype):
    movie = _movie(dtype)
    written = write_movie(tmp_path / name, movie)
    back = read_movie(written)
    assert back.dtype == movie.dtype and back.shape == movie.shape
    np.testing.assert_array_equal(back, movie)
    assert not list(tmp_path.glob(".*partial"))  # written beside and renamed into place


def test_tiff_axes_and_ome_metadata(tmp_path):
    movie = _movie("uint16")
    write_movie(tmp_path / "a.ome.tif", movie)
    write_movie(tmp_path / "b.tif", movie)
    write_movie(tmp_path / "c.tif", movie, ome=False)
    for name in ("a.ome.tif", "b.tif"):  # OME-TIFF whatever the extension
        with tifffile.TiffFile(tmp_path / name) as tif:
            assert tif.is_ome and tif.series[0].axes == "TYX"
            assert tif.pages[0].compression == 1  # none
    with tifffile.TiffFile(tmp_path / "c.tif") as tif:
        assert not tif.is_ome and tif.series[0].axes == "TYX"


def test_single_frame_becomes_one_time_point(tmp_path):
    frame = _movie("uint16", (12, 14))
    tifffile.imwrite(tmp_path / "one.tif", frame)
    np.save(tmp_path / "one.npy", frame)
    for name in ("one.tif", "one.npy"):
        back = read_movie(tmp_path / name)
        assert back.shape == (1, 12, 14)
        np.testing.assert_array_equal(back[0], frame)
    assert read_movie(write_movie(tmp_path / "w.npy", frame)).shape == (1, 12, 14)


def test_singleton_extra_dims_are_squeezed(tmp_path):
    movie = _movie("uint8", (4, 1, 10, 11))
    tifffile.imwrite(tmp_path / "c1.ome.tif", movie, ome=True, metadata={"axes": "TCYX"})
    np.save(tmp_path / "c1.npy", movie)
    for name in ("c1.ome.tif", "c1.npy"):
        back = read_movie(tmp_path / name)
        assert back.shape == (4, 10, 11)
        np.testing.assert_array_equal(back, movie[:, 0])


def test_real_extra_dims_are_refused_naming_the_shape(tmp_path):
    movie = _movie("uint16", (3, 2, 10, 11))
    tifffile.imwrite(tmp_path / "two_channels.ome.tif", movie, ome=True, metadata={"axes": "TCYX"})
    np.save(tmp_path / "4d.npy", movie)
    with pytest.raises(
        ValueError, match=r"two_channels\.ome\.tif: movie has shape \(3, 2, 10, 11\) \(axes 'TCYX'\).*channels, z"
    ):
        read_movie(tmp_path / "two_channels.ome.tif")
    with pytest.raises(ValueError, match=r"4d\.npy: movie has shape \(3, 2, 10, 11\)"):
        read_movie(tmp_path / "4d.npy")
    with pytest.raises(ValueError, match=r"expected \[T, Y, X\] or \[Y, X\]"):
        write_movie(tmp_path / "x.npy", movie)


def test_colour_image_is_not_a_time_series(tmp_path):
    tifffile.imwrite(tmp_path / "rgb.tif", _movie("uint8", (10, 11, 3)), photometric="rgb")
    with pytest.raises(ValueError, match=r"rgb\.tif: .*axes 'YXS'.*channel or colour axis"):
        read_movie(tmp_path / "rgb.tif")


@pytest.mark.parametrize("name", ["m.tif", "m.ome.tif", "m.npy"])
def test_truncated_file_is_refused_naming_it(tmp_path, name):
    path = write_movie(tmp_path / name, _movie("uint16", (6, 16, 16)))
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ValueError, match=rf"{name.replace('.', '[.]')}: .*(corrupt|truncated)"):
        read_movie(path)


@pytest.mark.parametrize("name", ["m.tif", "m.ome.tif"])
def test_truncated_tiff_damage_stays_off_the_root_logger(tmp_path, caplog, name):
    """tifffile only logs some damage; read_movie raises about it, and the log records go no further."""
    path = write_movie(tmp_path / name, _movie("uint16", (6, 16, 16)))
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    tiff_logger = logging.getLogger("tifffile")
    propagate, filters, handlers = tiff_logger.propagate, list(tiff_logger.filters), list(tiff_logger.handlers)
    caplog.set_level(logging.DEBUG)

    with pytest.raises(ValueError, match=r"damaged TIFF \(.*invalid.*\); the file is corrupt or truncated"):
        read_movie(path)

    assert [r for r in caplog.records if r.name.startswith("tifffile")] == []
    assert tiff_logger.propagate is propagate
    assert tiff_logger.filters == filters and tiff_logger.handlers == handlers


def test_overlapping_reads_each_see_the_damage_and_nothing_else_is_kept(caplog):
    """Reads in progress together (threads) share the one tifffile logger: each gets every damage message,
    other tifffile messages still reach the root logger, and the filter goes with the last read."""
    tiff_logger = logging.getLogger("tifffile")
    caplog.set_level(logging.DEBUG)

    with movie_io._tifffile_damage() as first:
        with movie_io._tifffile_damage() as second:
            tiff_logger.error("<tifffile.TiffPages @8> invalid page offset 3296")
            tiff_logger.warning("a note that is not about damage")
        tiff_logger.error("data truncated")

    assert second.messages == ["<tifffile.TiffPages @8> invalid page offset 3296"]
    assert first.messages == [*second.messages, "data truncated"]
    assert [r.getMessage() for r in caplog.records if r.name == "tifffile"] == ["a note that is not about damage"]
    assert movie_io._keep_damage not in tiff_logger.filters


def test_garbage_file_is_refused_naming_it(tmp_path):
    (tmp_path / "junk.tif").write_bytes(b"this is not a tiff at all")
    (tmp_path / "junk.npy").write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(ValueError, match=r"junk\.tif: cannot read TIFF"):
        read_movie(tmp_path / "junk.tif")
    with pytest.raises(ValueError, match=r"junk\.npy: cannot read \.npy"):
        read_movie(tmp_path / "junk.npy")


def test_pickled_npy_is_refused(tmp_path):
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match=r"obj\.npy: cannot read \.npy"):
        read_movie(tmp_path / "obj.npy")


def test_unknown_extension_and_missing_file(tmp_path):
    (tmp_path / "movie.avi").write_bytes(b"RIFF")
    with pytest.raises(ValueError, match=r"movie\.avi: unknown movie file type '\.avi'.*\.tif"):
        read_movie(tmp_path / "movie.avi")
    with pytest.raises(ValueError, match="unknown movie file type"):
        write_movie(tmp_path / "movie.png", _movie("uint8"))
    with pytest.raises(FileNotFoundError, match=r"nothere\.tif"):
        read_movie(tmp_path / "nothere.tif")


def test_non_numeric_pixels_are_refused(tmp_path):
    np.save(tmp_path / "b.npy", np.zeros((2, 4, 4), dtype=bool))
    with pytest.raises(ValueError, match=r"b\.npy: pixel type bool"):
        read_movie(tmp_path / "b.npy")


def test_missing_tifffile_names_the_install(tmp_path, monkeypatch):
    np.save(tmp_path / "ok.npy", _movie("uint8"))
    write_movie(tmp_path / "ok.tif", _movie("uint8"))
    monkeypatch.setitem(sys.modules, "tifffile", None)  # makes `import tifffile` fail
    assert read_movie(tmp_path / "ok.npy").shape == (5, 12, 14)  # .npy needs no tifffile
    with pytest.raises(ImportError, match=r"pip install tifffile.*livedenoise\[server\]"):
        read_movie(tmp_path / "ok.tif")
    with pytest.raises(ImportError, match="pip install tifffile"):
        write_movie(tmp_path / "new.tif", _movie("uint8"))
