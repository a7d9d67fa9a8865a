"""A microscope with no hardware, for pymmcore-plus: dry runs of acquisitions streamed to livedenoise.

:func:`simulated_microscope` builds a ``UniMMCore`` (pymmcore-plus' core that also drives devices written
in Python; experimental in pymmcore-plus 0.18) with a Python camera, XY stage, focus drive and shutter, a
``Channel`` group with one preset per fluorophore and a pixel size. Micro-Manager's C++ adapters are not
needed. The camera images a :class:`FluorescentSample`: cells that flash like a calcium indicator, recorded
with shot noise, read noise, gain and offset, as uint16 camera counts. Each stage position shows its own
field of cells and each fluorophore labels its own cells. Every frame takes the exposure time to acquire,
so the exposure sets the camera's frame rate.

The sample needs numpy only. pymmcore-plus is imported when a microscope is built: it comes with the
``mmcore`` extra.
"""

from __future__ import annotations

import functools
import logging
import math
import threading
import time
import zlib
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:
    from pymmcore_plus.experimental.unicore import UniMMCore

__all__ = ["FluorescentSample", "SimulatedCamera", "SimulatedMicroscope", "simulated_microscope"]

logger = logging.getLogger(__name__)

CAMERA = "Camera"
XY_STAGE = "XY"
FOCUS = "Z"
SHUTTER = "Shutter"
CHANNEL_GROUP = "Channel"
FLUOROPHORE_PROPERTY = "Fluorophore"
PHOTONS_PROPERTY = "Photons"
_LAYOUT_CACHE = 64  # fields of view whose cells are kept (a field is drawn once, then re-used)


def _stable_hash(text: str) -> int:
    """A hash of ``text`` that is the same in every process (``hash()`` of a str is salted)."""
    return zlib.crc32(text.encode("utf-8"))


@dataclass(frozen=True)
class _Field:
    """The cells of one field of view in one fluorophore: footprints and how each one flashes."""

    footprints: NDArray[np.float32]  # [cells, Y * X], peak 1
    rate_hz: NDArray[np.float64]
    phase: NDArray[np.float64]
    peak: NDArray[np.float64]


class FluorescentSample:
    """Cells labelled with a calcium indicator, imaged through a Poisson-Gaussian camera (numpy only).

    The expected signal of a pixel, in photons, is ``background + photons * sum_k f_k(y, x) * a_k(t)``: round
    cells ``f_k`` whose activity ``a_k`` sits at a resting level and flashes periodically (each cell at its
    own rate and phase). The camera records ``gain * Poisson(signal) + offset + Normal(0, read_noise)``,
    rounded and clipped to uint16.

    Parameters
    ----------
    seed
        Draws the cells (per field of view and fluorophore) and the noise of every frame.
    photons
        Photons per pixel at a cell's centre while it rests.
    background_photons
        Photons per pixel everywhere (autofluorescence, out-of-focus light).
    cells_per_kilopixel
        Cell density: cells per 1000 pixels of the field of view.
    cell_radius_px
        Cell radius, in pixels.
    gain, offset, read_noise
        Camera counts per photon, counts added to every pixel, and the read noise's standard deviation in
        counts.
    """

    def __init__(
        self,
        *,
        seed: int = 0,
        photons: float = 8.0,
        background_photons: float = 1.0,
        cells_per_kilopixel: float = 3.0,
        cell_radius_px: float = 3.0,
        gain: float = 2.0,
        offset: float = 100.0,
        read_noise: float = 1.5,
    ) -> None:
        for name, value in (("photons", photons), ("cell_radius_px", cell_radius_px), ("gain", gain)):
            if not value > 0:
                raise ValueError(f"{name} must be > 0, got {value}")
        for name, value in (
            ("background_photons", background_photons),
            ("cells_per_kilopixel", cells_per_kilopixel),
            ("offset", offset),
            ("read_noise", read_noise),
        ):
            if not value >= 0:
                raise ValueError(f"{name} must be >= 0, got {value}")
        self.seed = int(seed)
        self.photons = float(photons)
        self.background_photons = float(background_photons)
        self.cells_per_kilopixel = float(cells_per_kilopixel)
        self.cell_radius_px = float(cell_radius_px)
        self.gain = float(gain)
        self.offset = float(offset)
        self.read_noise = float(read_noise)
        self._fields: dict[tuple[tuple[int, int], int, int, int], _Field] = {}
        self._lock = threading.Lock()

    def _field(self, shape: tuple[int, int], position_um: tuple[float, float], fluorophore: str) -> _Field:
        # A field of view is keyed by the stage position rounded to a micrometre: going back to a position
        # shows the same cells.
        key = (shape, round(position_um[0]), round(position_um[1]), _stable_hash(fluorophore))
        with self._lock:
            field = self._fields.get(key)
            if field is None:
                if len(self._fields) >= _LAYOUT_CACHE:
                    self._fields.clear()
                field = self._fields[key] = self._draw_field(shape, key)
            return field

    def _draw_field(self, shape: tuple[int, int], key: tuple[Any, ...]) -> _Field:
        h, w = shape
        rng = np.random.default_rng([self.seed, key[1] & 0xFFFFFFFF, key[2] & 0xFFFFFFFF, key[3]])
        n = max(1, round(self.cells_per_kilopixel * h * w / 1000))
        cy = rng.uniform(0, h, n)
        cx = rng.uniform(0, w, n)
        radius = self.cell_radius_px * rng.uniform(0.7, 1.3, n)
        yy, xx = np.mgrid[0:h, 0:w]
        d2 = (yy[None] - cy[:, None, None]) ** 2 + (xx[None] - cx[:, None, None]) ** 2
        # A soft-edged disk: flat inside the cell, falling off over about a pixel at its edge.
        footprints = 1.0 / (1.0 + np.exp((np.sqrt(d2) - radius[:, None, None]) / 0.6))
        return _Field(
            footprints=footprints.reshape(n, h * w).astype(np.float32),
            rate_hz=rng.uniform(0.2, 1.5, n),
            phase=rng.uniform(0, 2 * math.pi, n),
            peak=rng.uniform(2.0, 6.0, n),
        )

    def expected(
        self, shape: tuple[int, int], t_s: float, position_um: tuple[float, float] = (0.0, 0.0), fluorophore: str = ""
    ) -> NDArray[np.float32]:
        """The noise-free signal, in photons per pixel, of the field at ``position_um`` at time ``t_s``."""
        field = self._field((int(shape[0]), int(shape[1])), position_um, fluorophore)
        # Flashes: the positive lobe of a sine raised to a high power (a fast rise and decay, then rest).
        flash = np.maximum(0.0, np.sin(2 * math.pi * field.rate_hz * t_s + field.phase)) ** 8
        activity = (1.0 + field.peak * flash).astype(np.float32)
        signal: NDArray[np.float32] = self.background_photons + self.photons * (activity @ field.footprints)
        return signal.reshape(shape)

    def image(
        self,
        shape: tuple[int, int],
        t_s: float,
        frame_number: int,
        position_um: tuple[float, float] = (0.0, 0.0),
        fluorophore: str = "",
    ) -> NDArray[np.uint16]:
        """One camera frame (uint16 counts); the noise is drawn from ``seed`` and ``frame_number``."""
        rng = np.random.default_rng([self.seed, int(frame_number)])
        photons = rng.poisson(self.expected(shape, t_s, position_um, fluorophore))
        counts = self.gain * photons + self.offset + rng.normal(0.0, self.read_noise, photons.shape)
        return np.clip(np.rint(counts), 0, np.iinfo(np.uint16).max).astype(np.uint16)


class SimulatedCamera(Protocol):
    """What the simulated camera adds to pymmcore-plus' ``CameraDevice``."""

    sample: FluorescentSample
    frames_acquired: int
    history: deque[NDArray[np.uint16]]  # the last frames acquired (a copy of each), oldest first

    def get_exposure(self) -> float: ...
    def set_exposure(self, exposure: float) -> None: ...


@dataclass(frozen=True)
class SimulatedMicroscope:
    """A simulated microscope: the core to acquire with, and its camera and sample to inspect."""

    core: UniMMCore
    camera: SimulatedCamera
    sample: FluorescentSample
    fluorophores: tuple[str, ...]


@functools.cache
def _device_classes() -> dict[str, type[Any]]:
    """The Python device classes, built on first use so that this module imports without pymmcore-plus."""
    try:
        from pymmcore_plus.experimental.unicore import (
            ShutterDevice,
            SimpleCameraDevice,
            StageDevice,
            XYStageDevice,
        )
    except ImportError:
        raise ImportError(
            "the simulated microscope needs pymmcore-plus (>= 0.18, with its Python device layer): "
            "pip install 'livedenoise[mmcore]'"
        ) from None

    class _XYStage(XYStageDevice):  # type: ignore[misc, unused-ignore]  # Any without pymmcore-plus
        def __init__(self) -> None:
            super().__init__()
            self.position = (0.0, 0.0)

        def set_position_um(self, x: float, y: float) -> None:
            self.position = (float(x), float(y))

        def get_position_um(self) -> tuple[float, float]:
            return self.position

        def set_origin_x(self) -> None:
            self.position = (0.0, self.position[1])

        def set_origin_y(self) -> None:
            self.position = (self.position[0], 0.0)

        def home(self) -> None:
            self.position = (0.0, 0.0)

        def stop(self) -> None:
            pass

    class _Focus(StageDevice):  # type: ignore[misc, unused-ignore]  # Any without pymmcore-plus
        def __init__(self) -> None:
            super().__init__()
            self.position = 0.0

        def set_position_um(self, val: float) -> None:
            self.position = float(val)

        def get_position_um(self) -> float:
            return self.position

        def set_origin(self) -> None:
            self.position = 0.0

        def home(self) -> None:
            self.position = 0.0

        def stop(self) -> None:
            pass

    class _Shutter(ShutterDevice):  # type: ignore[misc, unused-ignore]  # Any without pymmcore-plus
        def __init__(self) -> None:
            super().__init__()
            self.is_open = False

        def get_open(self) -> bool:
            return self.is_open

        def set_open(self, open: bool) -> None:
            self.is_open = bool(open)

    class _Camera(SimpleCameraDevice):  # type: ignore[misc, unused-ignore]  # Any without pymmcore-plus
        """A camera that images a :class:`FluorescentSample` and takes its exposure time per frame."""

        def __init__(
            self,
            sample: FluorescentSample,
            shape: tuple[int, int],
            exposure_ms: float,
            fluorophores: Sequence[str],
            stage: _XYStage,
            history: int,
        ) -> None:
            super().__init__()
            self.sample = sample
            self._shape = shape
            self._exposure_ms = float(exposure_ms)
            self._stage = stage
            self._fluorophore = fluorophores[0]
            self._t0 = time.monotonic()
            self._next_frame_at = self._t0
            self.frames_acquired = 0
            self.history: deque[NDArray[np.uint16]] = deque(maxlen=max(0, history))
            self.register_property(
                FLUOROPHORE_PROPERTY,
                default_value=self._fluorophore,
                allowed_values=list(fluorophores),
                getter=_Camera._get_fluorophore,
                setter=_Camera._set_fluorophore,
            )
            self.register_property(
                PHOTONS_PROPERTY,
                default_value=sample.photons,
                limits=(0.01, 1e5),
                getter=_Camera._get_photons,
                setter=_Camera._set_photons,
            )

        def _get_fluorophore(self) -> str:
            return self._fluorophore

        def _set_fluorophore(self, value: str) -> None:
            self._fluorophore = str(value)

        def _get_photons(self) -> float:
            return self.sample.photons

        def _set_photons(self, value: float) -> None:
            self.sample.photons = float(value)

        def get_exposure(self) -> float:
            return self._exposure_ms

        def set_exposure(self, exposure: float) -> None:
            if not exposure >= 0:
                raise ValueError(f"exposure must be >= 0 ms, got {exposure}")
            self._exposure_ms = float(exposure)

        def sensor_shape(self) -> tuple[int, int]:
            return self._shape

        def dtype(self) -> Any:
            return np.uint16

        def snap(self, buffer: NDArray[Any]) -> Mapping[str, Any]:
            # Frames follow each other at the exposure time, as a camera streaming at full speed would.
            self._next_frame_at = max(self._next_frame_at, time.monotonic()) + self._exposure_ms / 1000
            while (wait := self._next_frame_at - time.monotonic()) > 0:
                time.sleep(wait)
            number = self.frames_acquired
            t_s = time.monotonic() - self._t0
            buffer[...] = self.sample.image(self._shape, t_s, number, self._stage.position, self._fluorophore)
            self.frames_acquired = number + 1
            if self.history.maxlen:
                self.history.append(buffer.copy())
            return {"SimFrameNumber": str(number), "SimTime-s": f"{t_s:.6f}"}

    return {"camera": _Camera, "xy": _XYStage, "focus": _Focus, "shutter": _Shutter}


def simulated_microscope(
    *,
    shape: tuple[int, int] = (64, 64),
    exposure_ms: float = 10.0,
    fluorophores: Sequence[str] = ("GFP", "mCherry"),
    pixel_size_um: float = 0.65,
    sample: FluorescentSample | None = None,
    history: int = 0,
    core_factory: Callable[..., UniMMCore] | None = None,
) -> SimulatedMicroscope:
    """A ``UniMMCore`` with a simulated camera, XY stage, focus drive and shutter, ready for ``core.mda.run``.

    Parameters
    ----------
    shape
        Camera frame size ``(Y, X)``.
    exposure_ms
        Exposure time; the camera delivers one frame per exposure time, so this sets its frame rate
        (``core.setExposure`` changes it, as do the channels' and events' exposures of an MDA sequence).
    fluorophores
        One ``Channel`` preset per name (the camera's ``Fluorophore`` property); each labels its own cells.
    pixel_size_um
        The pixel size the core reports (``core.getPixelSizeUm()``).
    sample
        What the camera images; default ``FluorescentSample()``.
    history
        Keep a copy of the last ``history`` frames the camera acquired (``microscope.camera.history``).
    core_factory
        Makes the core (default ``UniMMCore``); for a subclass.

    Returns
    -------
    SimulatedMicroscope
        ``core`` with devices ``Camera``, ``XY``, ``Z`` and ``Shutter`` loaded and selected.

    Raises
    ------
    ImportError
        pymmcore-plus is not installed (the ``mmcore`` extra).
    """
    if len(shape) != 2 or not all(int(s) >= 8 for s in shape):
        raise ValueError(f"shape must be (Y, X) with both at least 8 pixels, got {shape!r}")
    names = tuple(str(f) for f in fluorophores)
    if not names or len(set(names)) != len(names) or not all(names):
        raise ValueError(f"fluorophores must be distinct non-empty names, got {list(fluorophores)!r}")
    if not pixel_size_um > 0:
        raise ValueError(f"pixel_size_um must be > 0, got {pixel_size_um}")
    if not exposure_ms >= 0:
        raise ValueError(f"exposure_ms must be >= 0, got {exposure_ms}")
    devices = _device_classes()
    if core_factory is None:
        from pymmcore_plus.experimental.unicore import UniMMCore

        core_factory = UniMMCore
    sample = sample or FluorescentSample()
    # An adapter search path with no C++ adapters in it: every device here is Python, and without a path
    # pymmcore-plus would look for a Micro-Manager installation and log an error when it finds none.
    core = core_factory(mm_path=str(Path(__file__).resolve().parent))
    stage = devices["xy"]()
    camera = devices["camera"](sample, (int(shape[0]), int(shape[1])), exposure_ms, names, stage, history)
    core.loadPyDevice(CAMERA, camera)
    core.loadPyDevice(XY_STAGE, stage)
    core.loadPyDevice(FOCUS, devices["focus"]())
    core.loadPyDevice(SHUTTER, devices["shutter"]())
    core.initializeAllDevices()
    core.setCameraDevice(CAMERA)
    core.setXYStageDevice(XY_STAGE)
    core.setFocusDevice(FOCUS)
    core.setShutterDevice(SHUTTER)
    for name in names:
        core.defineConfig(CHANNEL_GROUP, name, CAMERA, FLUOROPHORE_PROPERTY, name)
    core.setChannelGroup(CHANNEL_GROUP)
    core.definePixelSizeConfig("sim")
    core.setPixelSizeUm("sim", float(pixel_size_um))
    core.setPixelSizeConfig("sim")
    logger.debug("simulated microscope: %s frames, %s ms exposure, fluorophores %s", shape, exposure_ms, names)
    return SimulatedMicroscope(core=core, camera=camera, sample=sample, fluorophores=names)
