"""Writes the OME-Zarr fixtures beside this file with ome-zarr-py's own writer (not livedenoise's).

Run once, in an environment with ``ome-zarr`` (0.18 was used): ``python make_ome_zarr_fixtures.py``.
The stores are committed so the reader is tested against another tool's output without that tool installed.
Each holds ``expected_movie(dtype)`` below; tests recompute it.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import zarr
from ome_zarr.format import FormatV04, FormatV05
from ome_zarr.writer import write_image

HERE = Path(__file__).resolve().parent
SHAPE = (3, 6, 7)  # T, Y, X: odd sizes, two pyramid levels


def expected_movie(dtype: str) -> np.ndarray:
    return (np.arange(np.prod(SHAPE)).reshape(SHAPE) * 3 + 1).astype(dtype)


def _group(name: str, fmt: object) -> zarr.Group:
    path = HERE / name
    shutil.rmtree(path, ignore_errors=True)
    zarr_format = 2 if fmt.version == "0.4" else 3
    return zarr.open_group(path, mode="w", zarr_format=zarr_format)


def main() -> None:
    scale = {"t": 0.5, "y": 0.25, "x": 0.125}
    units = {"t": "second", "y": "micrometer", "x": "micrometer"}
    for fmt, tag in ((FormatV04(), "v04"), (FormatV05(), "v05")):
        # t, y, x at the root, physical sizes in micrometres and seconds.
        write_image(
            expected_movie("uint16"), _group(f"{tag}_tyx.ome.zarr", fmt), scale_factors=(2,), fmt=fmt,
            axes="tyx", scale=scale, axes_units=units,
        )  # fmt: skip
        # t, c, z, y, x with one channel and one plane, in a bioformats2raw-style folder (image at "0").
        root = _group(f"{tag}_bioformats2raw.ome.zarr", fmt)
        if tag == "v04":
            root.attrs["bioformats2raw.layout"] = 3
        else:
            root.attrs["ome"] = {"version": "0.5", "bioformats2raw.layout": 3}
        image = root.create_group("0")
        five_d = expected_movie("float32")[:, np.newaxis, np.newaxis]
        write_image(five_d, image, scale_factors=(2,), fmt=fmt, axes="tczyx", axes_units={"y": "nanometer", "x": "nanometer"},
                    scale={"y": 300.0, "x": 300.0})  # fmt: skip
        # Two channels: not a single-channel time series.
        two = np.stack([expected_movie("uint8"), expected_movie("uint8")], axis=1)
        write_image(two, _group(f"{tag}_two_channels.ome.zarr", fmt), scale_factors=(), fmt=fmt, axes="tcyx")


if __name__ == "__main__":
    main()
