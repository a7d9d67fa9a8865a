"""OME-NGFF image metadata (versions 0.4 and 0.5): build it for a ``t, y, x`` movie, and parse another tool's.

Pure functions over attribute dictionaries; :mod:`livedenoise.clients.ome_zarr` does the Zarr I/O.
In 0.5 (Zarr v3) the metadata sits under ``attributes["ome"]`` with one ``version`` for the group; in 0.4
(Zarr v2) ``multiscales`` sits in ``.zattrs`` directly and each entry carries its own ``version``.
Spec: https://ngff.openmicroscopy.org/0.5/ and https://ngff.openmicroscopy.org/0.4/.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from livedenoise.clients.physical_scale import PhysicalScale, length_in_um, time_in_s

__all__ = ["NGFF_VERSION", "NgffImage", "ome_attributes", "parse_image", "is_bioformats2raw"]

#: The version livedenoise writes (Zarr v3).
NGFF_VERSION = "0.5"
# Before 0.3 the axes were implicit and always these five.
_IMPLICIT_AXES = ("t", "c", "z", "y", "x")


@dataclass(frozen=True)
class NgffImage:
    """The full-resolution level of one OME-NGFF image.

    Attributes
    ----------
    version
        The metadata's NGFF version (``"0.4"``, ``"0.5"``, …; ``""`` if it names none).
    dataset
        Path of the full-resolution array, relative to the image's group.
    axes
        Axis names in array order, lower case (``("t", "c", "z", "y", "x")``).
    scale
        Pixel size and frame interval of that level, where axes give units.
    """

    version: str
    dataset: str
    axes: tuple[str, ...]
    scale: PhysicalScale


def _ome(attrs: Mapping[str, Any]) -> Mapping[str, Any]:
    """The OME part of a group's attributes: ``attrs["ome"]`` in 0.5, the attributes themselves before."""
    ome = attrs.get("ome")
    return ome if isinstance(ome, Mapping) else attrs


def is_bioformats2raw(attrs: Mapping[str, Any]) -> bool:
    """Whether a group is a bioformats2raw-style container (its images at ``0``, ``1``, …)."""
    return "bioformats2raw.layout" in _ome(attrs)


def _axis_names(entry: Mapping[str, Any]) -> tuple[tuple[str, ...], tuple[str | None, ...]]:
    axes = entry.get("axes")
    if axes is None:
        return _IMPLICIT_AXES, (None,) * len(_IMPLICIT_AXES)
    if not isinstance(axes, list) or not axes:
        raise ValueError(f"'axes' must be a non-empty list, got {axes!r}")
    names: list[str] = []
    units: list[str | None] = []
    for axis in axes:
        if isinstance(axis, str):  # 0.3 named axes by string
            names.append(axis.lower())
            units.append(None)
        elif isinstance(axis, Mapping) and isinstance(axis.get("name"), str):
            names.append(str(axis["name"]).lower())
            unit = axis.get("unit")
            units.append(unit if isinstance(unit, str) else None)
        else:
            raise ValueError(f"an axis must be a name or an object with a 'name', got {axis!r}")
    return tuple(names), tuple(units)


def _scale_vector(transforms: object, ndim: int) -> list[float]:
    """The ``scale`` of a list of coordinate transformations (1 where there is none)."""
    if isinstance(transforms, list):
        for t in transforms:
            if isinstance(t, Mapping) and t.get("type") == "scale" and isinstance(t.get("scale"), list):
                values = t["scale"]
                if len(values) == ndim and all(isinstance(v, int | float) for v in values):
                    return [float(v) for v in values]
    return [1.0] * ndim


def _physical_scale(
    names: tuple[str, ...], units: tuple[str | None, ...], entry: Mapping[str, Any], dataset: Mapping[str, Any]
) -> PhysicalScale:
    ndim = len(names)
    level = _scale_vector(dataset.get("coordinateTransformations"), ndim)
    image = _scale_vector(entry.get("coordinateTransformations"), ndim)  # applies to every level
    scale = [a * b for a, b in zip(level, image)]
    by_name = {name: (scale[i], units[i]) for i, name in enumerate(names)}
    y = length_in_um(*by_name["y"]) if "y" in by_name else None
    x = length_in_um(*by_name["x"]) if "x" in by_name else None
    dt = time_in_s(*by_name["t"]) if "t" in by_name else None
    return PhysicalScale(pixel_size_um=(y, x) if y is not None and x is not None else None, frame_interval_s=dt)


def parse_image(attrs: Mapping[str, Any]) -> NgffImage | None:
    """The image a group's attributes describe (its first multiscale), or ``None`` if they describe none.

    Raises
    ------
    ValueError
        The group has ``multiscales`` but they are malformed (the message says which field).
    """
    ome = _ome(attrs)
    multiscales = ome.get("multiscales")
    if multiscales is None:
        return None
    if not isinstance(multiscales, list) or not multiscales or not isinstance(multiscales[0], Mapping):
        raise ValueError(f"'multiscales' must be a non-empty list of objects, got {multiscales!r}")
    entry = multiscales[0]
    datasets = entry.get("datasets")
    if not isinstance(datasets, list) or not datasets or not isinstance(datasets[0], Mapping):
        raise ValueError(f"'multiscales[0].datasets' must be a non-empty list of objects, got {datasets!r}")
    path = datasets[0].get("path")
    if not isinstance(path, str) or not path:
        raise ValueError(f"'multiscales[0].datasets[0].path' must be a non-empty string, got {path!r}")
    names, units = _axis_names(entry)
    version = ome.get("version", entry.get("version", ""))
    return NgffImage(
        version=str(version),
        dataset=path,
        axes=names,
        scale=_physical_scale(names, units, entry, datasets[0]),
    )


def ome_attributes(
    *,
    name: str,
    dataset: str,
    pixel_size_um: tuple[float, float] | None = None,
    frame_interval_s: float | None = None,
) -> dict[str, Any]:
    """The ``ome`` attribute (NGFF 0.5) of a one-level ``t, y, x`` image whose array is at ``dataset``.

    Axes without a known size get scale 1 and no unit, as the spec allows.
    """
    t_axis: dict[str, Any] = {"name": "t", "type": "time"}
    y_axis: dict[str, Any] = {"name": "y", "type": "space"}
    x_axis: dict[str, Any] = {"name": "x", "type": "space"}
    scale = [1.0, 1.0, 1.0]
    if frame_interval_s is not None:
        if not (math.isfinite(frame_interval_s) and frame_interval_s > 0):
            raise ValueError(f"frame_interval_s must be a positive number of seconds, got {frame_interval_s!r}")
        t_axis["unit"] = "second"
        scale[0] = float(frame_interval_s)
    if pixel_size_um is not None:
        sizes = tuple(pixel_size_um)
        if len(sizes) != 2 or not all(math.isfinite(s) and s > 0 for s in sizes):
            raise ValueError(f"pixel_size_um must be two positive sizes (y, x) in micrometres, got {pixel_size_um!r}")
        y_axis["unit"] = x_axis["unit"] = "micrometer"
        scale[1], scale[2] = float(sizes[0]), float(sizes[1])
    return {
        "version": NGFF_VERSION,
        "multiscales": [
            {
                "name": name,
                "axes": [t_axis, y_axis, x_axis],
                "datasets": [{"path": dataset, "coordinateTransformations": [{"type": "scale", "scale": scale}]}],
            }
        ],
    }
