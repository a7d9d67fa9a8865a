"""Movies as OME-Zarr images: read OME-NGFF 0.4/0.5 stores, write 0.5 (Zarr v3), and append frame by frame.

What livedenoise writes is one image at the store's root: axes ``t, y, x``, one resolution level (array ``0``),
physical sizes where known, and livedenoise's own metadata (``attributes``) beside the ``ome`` attribute.
Reading takes the full-resolution level of the first multiscale image at the root, or at ``0`` of a
bioformats2raw-style container, and squeezes singleton ``c``/``z`` axes; a zipped store (``.zarr.zip``) is
read in place. ``zarr`` (v3) is imported lazily: it comes with the ``zarr`` extra.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import threading
import uuid
import zipfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from livedenoise.clients.ngff import NgffImage, is_bioformats2raw, ome_attributes, parse_image
from livedenoise.clients.physical_scale import PhysicalScale

__all__ = [
    "OmeZarrMovieWriter",
    "read_ome_zarr",
    "read_ome_zarr_scale",
    "write_ome_zarr",
    "is_ome_zarr_path",
]

logger = logging.getLogger(__name__)

_DATASET = "0"
_AXES = ("t", "y", "x")
# The growing writer's write handle is this long in t (in memory only, never stored): room for any acquisition.
_CAPACITY = 2**40
# Whole movies are written in chunks of several frames up to about this size: fewer files, same reads.
_CHUNK_BYTES = 1 << 20
_METADATA_FILES = ("zarr.json", ".zgroup", ".zattrs", ".zarray")


def _zarr() -> Any:
    try:
        import zarr
    except ImportError:
        raise ImportError(
            "reading or writing OME-Zarr movies needs the 'zarr' package (v3): pip install 'livedenoise[zarr]'"
        ) from None
    return zarr


def is_ome_zarr_path(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` names an OME-Zarr store: its name ends with ``.zarr`` (``.ome.zarr`` included).

    A trailing slash is allowed (``movie.ome.zarr/``); the path need not exist.
    """
    return os.fspath(path).rstrip("/\\").lower().endswith(".zarr")


def _is_zipped(path: Path) -> bool:
    return path.name.lower().endswith(".zarr.zip")


def _default_name(path: Path) -> str:
    name = path.name
    for suffix in (".ome.zarr", ".zarr"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)] or name
    return name


def _pixel_dtype(dtype: npt.DTypeLike) -> np.dtype[Any]:
    dt = np.dtype(dtype)
    if dt.kind not in "uif":
        raise ValueError(f"pixel type {dt} cannot be written; use an integer or float type")
    return dt.newbyteorder("=")


def _check_attributes(attributes: Mapping[str, Any] | None) -> dict[str, Any]:
    attrs = dict(attributes or {})
    if "ome" in attrs:
        raise ValueError("attributes must not contain 'ome': that key holds the OME-NGFF metadata")
    try:
        json.dumps(attrs, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"attributes must be plain JSON (str, numbers, lists, dicts): {exc}") from None
    return attrs


def _looks_like_zarr(path: Path) -> bool:
    return any((path / name).is_file() for name in _METADATA_FILES)


def _check_replaceable(path: Path) -> None:
    """Refuse to delete anything at ``path`` that is not a Zarr store (or an empty folder)."""
    if path.is_symlink() or not path.is_dir():
        raise FileExistsError(f"{path} exists and is not a Zarr store (a folder); refusing to replace it")
    if not _looks_like_zarr(path) and any(path.iterdir()):
        raise FileExistsError(f"{path} is a folder but not a Zarr store (no zarr.json/.zgroup); refusing to replace it")


def _create_image(
    path: Path,
    *,
    shape: tuple[int, int, int],
    chunks: tuple[int, int, int],
    dtype: np.dtype[Any],
    name: str,
    pixel_size_um: tuple[float, float] | None,
    frame_interval_s: float | None,
    attributes: dict[str, Any],
) -> tuple[Any, Any]:
    """Create the group and its ``t, y, x`` array; the OME metadata is written last, once the array exists."""
    zarr = _zarr()
    ome = ome_attributes(name=name, dataset=_DATASET, pixel_size_um=pixel_size_um, frame_interval_s=frame_interval_s)
    root = zarr.create_group(store=zarr.storage.LocalStore(path), zarr_format=3)
    array = root.create_array(_DATASET, shape=shape, chunks=chunks, dtype=dtype, fill_value=0, dimension_names=_AXES)
    root.update_attributes({"ome": ome, **attributes})
    return root, array


class OmeZarrMovieWriter:
    """Append ``[Y, X]`` frames to an OME-Zarr image (axes t, y, x), one chunk per frame, readable while it grows.

    Each :meth:`append` stores the frame's chunk first and then grows the array's ``t`` extent by one, each
    step an atomic file write; so a reader opening the store at any moment sees exactly the frames appended
    so far, and a crash loses only the frame being appended. The OME metadata is written once, at creation.

    Parameters
    ----------
    path
        The store to create (a folder, named ``*.zarr`` or ``*.ome.zarr`` by convention).
    shape_yx
        Frame size ``(Y, X)``.
    dtype
        Pixel type of every frame (an integer or float type).
    name
        Image name in the metadata; default the store's name without ``.ome.zarr``.
    pixel_size_um
        ``(y, x)`` pixel size in micrometres, if known.
    frame_interval_s
        Seconds between frames, if known.
    attributes
        livedenoise's own metadata (JSON), stored in the image's attributes beside ``ome``, e.g.
        ``{"livedenoise": {"model_id": ..., "method": ..., "source": ...}}``.
    overwrite
        Replace an existing Zarr store at ``path``; anything else there is never deleted.

    Raises
    ------
    FileExistsError
        ``path`` exists (and ``overwrite`` is false, or it is not a Zarr store).
    ValueError
        A bad shape, pixel type, physical size or attribute.
    ImportError
        ``zarr`` is not installed.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        shape_yx: tuple[int, int],
        dtype: npt.DTypeLike,
        name: str | None = None,
        pixel_size_um: tuple[float, float] | None = None,
        frame_interval_s: float | None = None,
        attributes: Mapping[str, Any] | None = None,
        overwrite: bool = False,
    ) -> None:
        zarr = _zarr()
        self._path = Path(path)
        if len(shape_yx) != 2 or not all(int(s) == s and s > 0 for s in shape_yx):
            raise ValueError(f"shape_yx must be two positive sizes (Y, X), got {shape_yx!r}")
        self._shape = (int(shape_yx[0]), int(shape_yx[1]))
        self._dtype = _pixel_dtype(dtype)
        attrs = _check_attributes(attributes)
        if self._path.exists() or self._path.is_symlink():
            if not overwrite:
                raise FileExistsError(f"{self._path} exists; pass overwrite=True to replace it")
            _check_replaceable(self._path)
            shutil.rmtree(self._path)
        self._group, self._visible = _create_image(
            self._path,
            shape=(0, *self._shape),
            chunks=(1, *self._shape),
            dtype=self._dtype,
            name=name or _default_name(self._path),
            pixel_size_um=pixel_size_um,
            frame_interval_s=frame_interval_s,
            attributes=attrs,
        )
        # A second handle on the same array whose (in-memory) shape has room for every frame to come: it
        # stores frame n's chunk while the stored shape still says n frames, so no reader sees an unwritten one.
        wide = {**self._visible.metadata.to_dict(), "shape": (_CAPACITY, *self._shape)}
        self._wide = zarr.Array.from_dict(self._visible.store_path, wide)
        self._frames = 0
        self._closed = False
        self._lock = threading.Lock()
        logger.debug("writing %s: frames %s %s", self._path, self._shape, self._dtype)

    @property
    def path(self) -> Path:
        """The store being written."""
        return self._path

    @property
    def shape_yx(self) -> tuple[int, int]:
        """Frame size ``(Y, X)``."""
        return self._shape

    @property
    def frames(self) -> int:
        """Frames appended so far (the array's ``t`` extent)."""
        return self._frames

    def append(self, frame: npt.ArrayLike) -> int:
        """Store one ``[Y, X]`` frame after the others and return its ``t`` index.

        Raises
        ------
        ValueError
            The frame's shape or pixel type differs from the writer's (the message names both), or the
            writer is closed.
        """
        data = np.asarray(frame)
        if data.shape != self._shape or data.dtype.newbyteorder("=") != self._dtype:
            raise ValueError(
                f"{self._path}: frame is {data.dtype} {list(data.shape)} but the movie is "
                f"{self._dtype} {list(self._shape)}"
            )
        with self._lock:
            if self._closed:
                raise ValueError(f"{self._path}: append to a closed OmeZarrMovieWriter")
            index = self._frames
            self._wide[index] = data
            self._visible.resize((index + 1, *self._shape))
            self._frames = index + 1
        return index

    def update_attributes(self, attributes: Mapping[str, Any]) -> None:
        """Merge livedenoise's own metadata into the image's attributes (not ``ome``), e.g. the serving model
        once the first reply names it. One atomic write of the group's metadata."""
        attrs = _check_attributes(attributes)
        with self._lock:
            if self._closed:
                raise ValueError(f"{self._path}: update_attributes on a closed OmeZarrMovieWriter")
            self._group.update_attributes(attrs)

    def close(self) -> None:
        """Stop appending; every appended frame is already stored. Safe to call twice."""
        with self._lock:
            if not self._closed:
                self._closed = True
                logger.debug("closed %s: %d frames", self._path, self._frames)

    def __enter__(self) -> OmeZarrMovieWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def write_ome_zarr(
    path: str | os.PathLike[str],
    movie: npt.ArrayLike,
    *,
    pixel_size_um: tuple[float, float] | None = None,
    frame_interval_s: float | None = None,
    attributes: Mapping[str, Any] | None = None,
) -> Path:
    """Write a whole ``[T, Y, X]`` movie (or one ``[Y, X]`` frame) as an OME-Zarr 0.5 image.

    The store is written beside ``path`` and renamed into place, so a reader never sees half a movie; an
    existing Zarr store at ``path`` is replaced (anything else there is refused). Chunks hold whole frames,
    several small frames per chunk (up to about 1 MiB).

    Parameters
    ----------
    path
        Destination folder, ``*.zarr`` or ``*.ome.zarr``.
    movie
        Integer or float pixels.
    pixel_size_um, frame_interval_s, attributes
        As for :class:`OmeZarrMovieWriter`.

    Returns
    -------
    Path
        The written store.
    """
    path = Path(path)
    data = np.asarray(movie)
    if data.ndim == 2:
        data = data[np.newaxis]
    if data.ndim != 3:
        raise ValueError(f"movie for {path} has shape {data.shape}; expected [T, Y, X] or [Y, X]")
    dtype = _pixel_dtype(data.dtype)
    attrs = _check_attributes(attributes)
    if path.exists() or path.is_symlink():
        _check_replaceable(path)
    frame_bytes = max(1, data.shape[1] * data.shape[2] * dtype.itemsize)
    t_chunk = max(1, min(data.shape[0], _CHUNK_BYTES // frame_bytes))
    tmp = path.with_name(f".{path.name}.partial-{uuid.uuid4().hex[:8]}")
    old = path.with_name(f".{path.name}.old-{uuid.uuid4().hex[:8]}")
    try:
        _, array = _create_image(
            tmp,
            shape=(int(data.shape[0]), int(data.shape[1]), int(data.shape[2])),
            chunks=(t_chunk, int(data.shape[1]), int(data.shape[2])),
            dtype=dtype,
            name=_default_name(path),
            pixel_size_um=pixel_size_um,
            frame_interval_s=frame_interval_s,
            attributes=attrs,
        )
        if data.size:
            array[...] = data
        # A folder cannot be renamed over a non-empty one: move the old store aside, then drop it.
        if path.exists():
            os.rename(path, old)
        os.rename(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)
    logger.debug("wrote %s: shape %s dtype %s", path, data.shape, data.dtype)
    return path


def _zip_root(path: Path) -> str:
    """Folder inside a zipped store that holds the root metadata ('' when it is at the top)."""
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
    except zipfile.BadZipFile:
        raise ValueError(f"{path}: not a zip file; a .zarr.zip must be a zipped Zarr store") from None
    roots = sorted(
        (n.rsplit("/", 1)[0] if "/" in n else "" for n in names if n.rsplit("/", 1)[-1] in _METADATA_FILES),
        key=lambda n: (n.count("/") if n else -1, n),
    )
    if not roots:
        raise ValueError(f"{path}: the zip holds no Zarr metadata (zarr.json or .zgroup); zip a .zarr folder")
    return roots[0]


@contextlib.contextmanager
def _open_root(path: Path) -> Iterator[Any]:
    """The store's root group, read-only; a ValueError naming ``path`` if it is not a Zarr group."""
    zarr = _zarr()
    if _is_zipped(path):
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such zipped OME-Zarr file")
        prefix = _zip_root(path)
        store: Any = zarr.storage.ZipStore(path, mode="r")
    else:
        if not path.is_dir():
            raise FileNotFoundError(f"{path}: no such OME-Zarr store (a .zarr folder)")
        prefix, store = "", zarr.storage.LocalStore(path, read_only=True)
    try:
        try:
            root = zarr.open_group(store=store, path=prefix, mode="r")
        except (FileNotFoundError, KeyError, ValueError, TypeError, json.JSONDecodeError) as exc:
            raise ValueError(
                f"{path}: not a readable Zarr group ({type(exc).__name__}: {exc}); an OME-Zarr store needs "
                "zarr.json (Zarr v3) or .zgroup/.zattrs (Zarr v2) at its root"
            ) from None
        yield root
    finally:
        store.close()


def _find_image(root: Any, path: Path) -> tuple[Any, NgffImage]:
    """The first OME-NGFF image: at the root, or at ``0`` of a bioformats2raw-style container."""
    zarr = _zarr()
    try:
        image = parse_image(root.attrs.asdict())
        if image is not None:
            return root, image
        child = root.get("0")
        if isinstance(child, zarr.Group):
            image = parse_image(child.attrs.asdict())
            if image is not None:
                return child, image
    except ValueError as exc:
        raise ValueError(f"{path}: malformed OME-NGFF metadata: {exc}") from None
    kind = "a bioformats2raw container without an image at '0'" if is_bioformats2raw(root.attrs.asdict()) else ""
    raise ValueError(
        f"{path}: no OME-NGFF image ('multiscales' metadata) at the root or at '0'"
        + (f"; it is {kind}" if kind else "; is it an OME-Zarr image (plates and labels are not movies)?")
    )


def _to_tyx(data: npt.NDArray[Any], axes: tuple[str, ...], path: Path) -> npt.NDArray[Any]:
    """Squeeze singleton axes other than t, y, x; refuse anything that is not a single-channel time series."""
    described = f"axes {','.join(axes)} with shape {data.shape}"
    if data.dtype.kind not in "uif":
        raise ValueError(f"{path}: pixel type {data.dtype} is not supported; use an integer or float movie")
    if "y" not in axes or "x" not in axes:
        raise ValueError(f"{path}: image has {described}; expected axes t, y, x (c and z of size 1 allowed)")
    extra = [(name, size) for name, size in zip(axes, data.shape) if name not in _AXES and size != 1]
    if extra:
        what = ", ".join(f"{name!r} of size {size}" for name, size in extra)
        raise ValueError(
            f"{path}: image has {described}: {what}. Expected a single-channel time series (t, y, x): "
            "save one channel and one z-plane (or a projection)"
        )
    keep = [i for i, name in enumerate(axes) if name in _AXES]
    data = data.reshape(tuple(data.shape[i] for i in keep))
    kept = [axes[i] for i in keep]
    if "t" not in kept:
        data, kept = data[np.newaxis], ["t", *kept]
    # The spec puts time first and space last; transpose anyway for stores that do not.
    return np.transpose(data, [kept.index(a) for a in _AXES]) if kept != list(_AXES) else data


def read_ome_zarr(path: str | os.PathLike[str]) -> npt.NDArray[Any]:
    """Read the full-resolution level of an OME-Zarr image as ``[T, Y, X]``, in its stored pixel type.

    Parameters
    ----------
    path
        A ``.zarr``/``.ome.zarr`` folder (OME-NGFF 0.4 on Zarr v2 or 0.5 on Zarr v3, by any writer) or a
        zipped store ``.zarr.zip``. The image is the first multiscale at the root or at ``0``
        (bioformats2raw layout). Singleton ``c``/``z`` axes are squeezed; without a ``t`` axis, ``T = 1``.

    Returns
    -------
    NDArray
        ``[T, Y, X]``; a store still being written holds the frames appended so far.

    Raises
    ------
    FileNotFoundError
        Nothing at ``path``.
    ValueError
        Not a Zarr store, no or malformed OME-NGFF metadata, or not a single-channel time series; the
        message names the path (and the axes).
    ImportError
        ``zarr`` is not installed.
    """
    path = Path(path)
    zarr = _zarr()
    with _open_root(path) as root:
        group, image = _find_image(root, path)
        array = group.get(image.dataset)
        if not isinstance(array, zarr.Array):
            raise ValueError(f"{path}: the image's full-resolution array {image.dataset!r} is missing")
        if array.ndim != len(image.axes):
            raise ValueError(
                f"{path}: array {image.dataset!r} has {array.ndim} dimensions {array.shape} but the metadata "
                f"names {len(image.axes)} axes ({','.join(image.axes)})"
            )
        try:
            data = np.asarray(array[...])
        except (ValueError, OSError, RuntimeError) as exc:
            raise ValueError(f"{path}: cannot read array {image.dataset!r} ({exc}); the store is damaged") from None
    movie = _to_tyx(data, image.axes, path)
    logger.debug("read %s (OME-NGFF %s): shape %s dtype %s", path, image.version, movie.shape, movie.dtype)
    return movie


def read_ome_zarr_scale(path: str | os.PathLike[str]) -> PhysicalScale:
    """Pixel size and frame interval of an OME-Zarr image's full-resolution level, where its axes have units.

    Raises as :func:`read_ome_zarr` for a store that is not an OME-Zarr image.
    """
    path = Path(path)
    with _open_root(path) as root:
        return _find_image(root, path)[1].scale
