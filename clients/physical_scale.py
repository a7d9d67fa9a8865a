"""Physical pixel size and frame interval of a movie, read from OME-Zarr or OME-TIFF metadata.

Only what a denoised copy should carry over: the ``y``/``x`` pixel size in micrometres and the time between
frames in seconds. Either is ``None`` where the file does not say (a plain TIFF, an ``.npy``, a unit-less axis).
"""

from __future__ import annotations

import logging
import math
import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

__all__ = ["PhysicalScale", "length_in_um", "time_in_s", "read_physical_scale"]

logger = logging.getLogger(__name__)

# OME-NGFF names its units after UDUNITS-2, OME-XML by symbol; both spellings map to one factor.
_UM_PER_LENGTH_UNIT = {
    "angstrom": 1e-4,
    "Å": 1e-4,
    "nanometer": 1e-3,
    "nm": 1e-3,
    "micrometer": 1.0,
    "micron": 1.0,
    "µm": 1.0,
    "μm": 1.0,  # Greek mu, as some writers spell it
    "um": 1.0,
    "millimeter": 1e3,
    "mm": 1e3,
    "centimeter": 1e4,
    "cm": 1e4,
    "meter": 1e6,
    "m": 1e6,
}
_S_PER_TIME_UNIT = {
    "nanosecond": 1e-9,
    "ns": 1e-9,
    "microsecond": 1e-6,
    "µs": 1e-6,
    "μs": 1e-6,
    "us": 1e-6,
    "millisecond": 1e-3,
    "ms": 1e-3,
    "second": 1.0,
    "s": 1.0,
    "minute": 60.0,
    "min": 60.0,
    "hour": 3600.0,
    "h": 3600.0,
}


@dataclass(frozen=True)
class PhysicalScale:
    """What one pixel and one frame of a movie measure.

    Attributes
    ----------
    pixel_size_um
        ``(y, x)`` pixel size in micrometres, or ``None`` when unknown.
    frame_interval_s
        Seconds between frames, or ``None`` when unknown.
    """

    pixel_size_um: tuple[float, float] | None = None
    frame_interval_s: float | None = None


def _positive(value: object) -> float | None:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) and number > 0 else None


def length_in_um(value: object, unit: str | None) -> float | None:
    """``value`` in micrometres; ``None`` for a missing, unknown or non-positive size."""
    factor = _UM_PER_LENGTH_UNIT.get(unit) if unit is not None else None
    number = _positive(value)
    return None if factor is None or number is None else number * factor


def time_in_s(value: object, unit: str | None) -> float | None:
    """``value`` in seconds; ``None`` for a missing, unknown or non-positive interval."""
    factor = _S_PER_TIME_UNIT.get(unit) if unit is not None else None
    number = _positive(value)
    return None if factor is None or number is None else number * factor


def _ome_xml_scale(xml: str) -> PhysicalScale:
    """Pixel size and time increment of the first image of an OME-XML document."""
    try:
        root = ET.fromstring(xml)
    except ET.ParseError:
        return PhysicalScale()
    pixels = next((el for el in root.iter() if el.tag.rsplit("}", 1)[-1] == "Pixels"), None)
    if pixels is None:
        return PhysicalScale()
    # OME-XML's default units are micrometres and seconds.
    y = length_in_um(pixels.get("PhysicalSizeY"), pixels.get("PhysicalSizeYUnit", "µm"))
    x = length_in_um(pixels.get("PhysicalSizeX"), pixels.get("PhysicalSizeXUnit", "µm"))
    dt = time_in_s(pixels.get("TimeIncrement"), pixels.get("TimeIncrementUnit", "s"))
    return PhysicalScale(pixel_size_um=(y, x) if y is not None and x is not None else None, frame_interval_s=dt)


def _tiff_scale(path: Path) -> PhysicalScale:
    try:
        import tifffile
    except ImportError:
        return PhysicalScale()
    try:
        with tifffile.TiffFile(path) as tif:
            xml = tif.ome_metadata
    except (tifffile.TiffFileError, OSError, ValueError) as exc:
        logger.debug("%s: no OME metadata read (%s)", path, exc)
        return PhysicalScale()
    return _ome_xml_scale(xml) if xml else PhysicalScale()


def read_physical_scale(path: str | os.PathLike[str]) -> PhysicalScale:
    """The pixel size and frame interval a movie's metadata states.

    Parameters
    ----------
    path
        An OME-Zarr store (``.zarr``/``.ome.zarr``, or zipped ``.zarr.zip``) or an OME-TIFF. Any other movie
        (plain TIFF, ``.npy``) states nothing.

    Returns
    -------
    PhysicalScale
        Fields the metadata does not state (or states in units this module does not know) are ``None``.
    """
    path = Path(path)
    name = path.name.lower()
    if name.endswith((".zarr", ".zarr.zip")):
        from livedenoise.clients.ome_zarr import read_ome_zarr_scale

        return read_ome_zarr_scale(path)
    if name.endswith((".tif", ".tiff")):
        return _tiff_scale(path)
    return PhysicalScale()
