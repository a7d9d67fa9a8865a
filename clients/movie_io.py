"""Read and write movies as ``[T, Y, X]`` arrays: TIFF (plain or OME), OME-Zarr and ``.npy``.

``tifffile`` and ``zarr`` are imported lazily so the light client install (numpy, pyzmq, httpx) can still
stream ``.npy`` movies; ``tifffile`` comes with the ``server`` and ``train`` extras, ``zarr`` with ``zarr``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import struct
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["MOVIE_SUFFIXES", "read_movie", "write_movie"]

logger = logging.getLogger(__name__)

MOVIE_SUFFIXES = (".tif", ".tiff", ".ome.tif", ".ome.tiff", ".npy", ".zarr", ".ome.zarr", ".zarr.zip")
# Axis letters tifffile uses for colour samples and channels: these are never time.
_CHANNEL_AXES = frozenset("SC")


def _tifffile() -> Any:
    try:
        import tifffile
    except ImportError:
        raise ImportError(
            "reading or writing TIFF movies needs the 'tifffile' package: `pip install tifffile` "
            "(or install `livedenoise[server]`)"
        ) from None
    return tifffile


def _kind(path: Path) -> str:
    name = path.name.lower()
    if name.endswith((".tif", ".tiff")):
        return "tiff"
    if name.endswith(".npy"):
        return "npy"
    if name.endswith((".zarr", ".zarr.zip")):
        return "zarr"
    raise ValueError(f"{path}: unknown movie file type {path.suffix!r}; expected one of {', '.join(MOVIE_SUFFIXES)}")


_DAMAGE_WORDS = ("invalid", "truncat")
# Damage messages of the reads in progress. The tifffile logger is one per process: every read in progress gets
# every damage message (as a handler per read did), so a damaged file read beside another one is never accepted.
_damage_lock = threading.Lock()
_damage_readers: set[_Damage] = set()


class _Damage:
    """What tifffile logged about damage during one read."""

    def __init__(self) -> None:
        self.messages: list[str] = []


def _keep_damage(record: logging.LogRecord) -> bool:
    """Filter on the tifffile logger: hand damage messages to the reads in progress, and stop them there."""
    message = record.getMessage()
    if record.levelno < logging.WARNING or not any(word in message.lower() for word in _DAMAGE_WORDS):
        return True
    with _damage_lock:
        for reader in _damage_readers:
            reader.messages.append(message)
    return False


@contextlib.contextmanager
def _tifffile_damage() -> Iterator[_Damage]:
    """Collect tifffile's damage messages during one read, and keep them off the root logger."""
    # A filter on the logger sees a record before any handler and can drop it, so the damage that the caller
    # raises about never reaches the root logger (the user's console); propagate and handlers stay untouched.
    damage = _Damage()
    tiff_logger = logging.getLogger("tifffile")
    with _damage_lock:
        _damage_readers.add(damage)
        tiff_logger.addFilter(_keep_damage)  # once: Filterer.addFilter ignores a filter it already has
    try:
        yield damage
    finally:
        with _damage_lock:
            _damage_readers.discard(damage)
            if not _damage_readers:
                tiff_logger.removeFilter(_keep_damage)


def _read_tiff(path: Path) -> tuple[NDArray[Any], str]:
    tifffile = _tifffile()
    # tifffile only *logs* some damage (an IFD offset past the end of a truncated file) and then reads
    # fewer pages than were written; such a movie must be refused, not silently shortened.
    with _tifffile_damage() as damage:
        try:
            with tifffile.TiffFile(path) as tif:
                if not tif.series:
                    raise ValueError("it holds no image series")
                series = tif.series[0]
                data, axes = np.asarray(series.asarray()), str(series.axes)
        # tifffile reports broken files through several exception types, depending on where it breaks.
        except (tifffile.TiffFileError, ValueError, struct.error, EOFError, IndexError, KeyError) as exc:
            raise ValueError(
                f"{path}: cannot read TIFF ({exc}); the file is corrupt, truncated or not a TIFF"
            ) from None
    if damage.messages:
        raise ValueError(f"{path}: damaged TIFF ({damage.messages[0]}); the file is corrupt or truncated")
    return data, axes


def _read_npy(path: Path) -> NDArray[Any]:
    try:
        data = np.load(path, allow_pickle=False)
    except (ValueError, EOFError, OSError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise ValueError(
            f"{path}: cannot read .npy ({exc}); the file is corrupt, truncated or not a .npy array"
        ) from None
    if not isinstance(data, np.ndarray):  # an .npz renamed to .npy loads as an archive
        raise ValueError(f"{path}: holds {type(data).__name__}, not a single array; save one array with np.save")
    return data


def _as_tyx(data: NDArray[Any], axes: str, path: Path) -> NDArray[Any]:
    if data.dtype.kind not in "uif":
        raise ValueError(f"{path}: pixel type {data.dtype} is not supported; use an integer or float movie")
    if len(axes) != data.ndim:
        axes = ""
    described = f"shape {data.shape}" + (f" (axes {axes!r})" if axes else "")
    # Singleton extra dimensions (a one-channel OME file, [T, 1, Y, X] arrays) carry no data: drop them.
    keep = [
        i
        for i, size in enumerate(data.shape)
        if size != 1 or (data.ndim <= 3 and not (axes and axes[i] in _CHANNEL_AXES))
    ]
    if len(keep) != data.ndim:
        data = data.reshape(tuple(data.shape[i] for i in keep))
        axes = "".join(axes[i] for i in keep) if axes else ""
    if data.ndim > 3:
        raise ValueError(
            f"{path}: movie has {described}; expected [T, Y, X]. Extra dimensions (channels, z) must be "
            "removed first: save one channel and one z-plane (or a projection) as a time series"
        )
    if data.ndim < 2:
        raise ValueError(f"{path}: movie has {described}; expected [T, Y, X] or a single [Y, X] frame")
    if any(axis in _CHANNEL_AXES for axis in axes):
        raise ValueError(
            f"{path}: movie has {described}: a channel or colour axis, not time. "
            "Save a single-channel [T, Y, X] time series"
        )
    return data[np.newaxis] if data.ndim == 2 else data


def read_movie(path: str | os.PathLike[str]) -> NDArray[Any]:
    """Read a movie as ``[T, Y, X]`` in its stored pixel type.

    Parameters
    ----------
    path
        A ``.tif``/``.tiff`` (including OME-TIFF) or ``.npy`` file, or an OME-Zarr store (``.zarr``/``.ome.zarr``
        folder, NGFF 0.4 or 0.5, or a zipped ``.zarr.zip``). 8-bit, 16-bit, other integer and float pixels are
        accepted. A single 2-D frame becomes ``T = 1``; singleton extra dimensions are
        squeezed.

    Returns
    -------
    NDArray
        The movie, ``[T, Y, X]``, dtype as stored.

    Raises
    ------
    FileNotFoundError
        The file does not exist.
    ValueError
        Unknown extension, a corrupt or truncated file, or a shape that is not a single-channel time
        series (the message names the file and the shape).
    ImportError
        A TIFF was given and ``tifffile`` is not installed, or an OME-Zarr store and ``zarr`` is not.
    """
    path = Path(path)
    kind = _kind(path)
    if kind == "zarr":
        from livedenoise.clients.ome_zarr import read_ome_zarr

        return read_ome_zarr(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such movie file")
    if kind == "tiff":
        data, axes = _read_tiff(path)
    else:
        data, axes = _read_npy(path), ""
    movie = _as_tyx(data, axes, path)
    logger.debug("read %s: shape %s dtype %s", path, movie.shape, movie.dtype)
    return movie


def _ome_tiff_scale(pixel_size_um: tuple[float, float] | None, frame_interval_s: float | None) -> dict[str, Any]:
    """OME-XML ``Pixels`` attributes (tifffile's metadata keys) for the sizes that are known."""
    scale: dict[str, Any] = {}
    if pixel_size_um is not None:
        y, x = (float(s) for s in pixel_size_um)
        scale.update(PhysicalSizeY=y, PhysicalSizeYUnit="µm", PhysicalSizeX=x, PhysicalSizeXUnit="µm")
    if frame_interval_s is not None:
        scale.update(TimeIncrement=float(frame_interval_s), TimeIncrementUnit="s")
    return scale


def write_movie(
    path: str | os.PathLike[str],
    movie: NDArray[Any],
    *,
    ome: bool = True,
    pixel_size_um: tuple[float, float] | None = None,
    frame_interval_s: float | None = None,
    attributes: Mapping[str, Any] | None = None,
) -> Path:
    """Write a ``[T, Y, X]`` movie (or one ``[Y, X]`` frame) to ``.tif``/``.ome.tif``, ``.ome.zarr`` or ``.npy``.

    The file is written beside its destination and renamed into place, so a reader never sees half a file.

    Parameters
    ----------
    path
        Destination; the extension picks the format (``.zarr``/``.ome.zarr``: OME-Zarr 0.5, a folder).
    movie
        ``[T, Y, X]`` or ``[Y, X]`` integer or float array.
    ome
        TIFF only: write OME-TIFF (OME-XML with axes ``TYX``, read by Fiji/Bio-Formats and every TIFF reader).
        ``ome=False`` writes a plain TIFF with the axes in tifffile's own metadata. No compression either way.
    pixel_size_um, frame_interval_s
        ``(y, x)`` pixel size in micrometres and seconds between frames, where known: stored in the OME
        metadata (OME-TIFF and OME-Zarr; a plain TIFF and ``.npy`` have no place for them).
    attributes
        OME-Zarr only: livedenoise's own JSON metadata beside ``ome`` (e.g. the model and method).

    Returns
    -------
    Path
        The written file.
    """
    path = Path(path)
    kind = _kind(path)
    data = np.asarray(movie)
    if data.ndim == 2:
        data = data[np.newaxis]
    if data.ndim != 3:
        raise ValueError(f"movie for {path} has shape {data.shape}; expected [T, Y, X] or [Y, X]")
    if data.dtype.kind not in "uif":
        raise ValueError(f"movie for {path} has pixel type {data.dtype}; expected an integer or float array")
    if kind == "zarr":
        if path.name.lower().endswith(".zip"):
            raise ValueError(f"{path}: zipped OME-Zarr is read only; write a .ome.zarr folder (and zip it after)")
        from livedenoise.clients.ome_zarr import write_ome_zarr

        return write_ome_zarr(
            path, data, pixel_size_um=pixel_size_um, frame_interval_s=frame_interval_s, attributes=attributes
        )
    tmp = path.with_name(f".{path.name}.partial")
    try:
        if kind == "npy":
            with open(tmp, "wb") as fh:
                np.save(fh, np.ascontiguousarray(data), allow_pickle=False)
        else:
            tifffile = _tifffile()
            tifffile.imwrite(
                tmp,
                np.ascontiguousarray(data),
                ome=ome,
                photometric="minisblack",
                compression=None,
                metadata={"axes": "TYX", **(_ome_tiff_scale(pixel_size_um, frame_interval_s) if ome else {})},
            )
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    logger.debug("wrote %s: shape %s dtype %s", path, data.shape, data.dtype)
    return path
