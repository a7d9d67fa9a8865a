"""What an exported model carries: the contract between the trainer (writer) and every engine (reader).

The whole spec is one JSON document stored under the ONNX metadata key :data:`METADATA_KEY`, so the
ONNX file alone is enough to serve (design invariant 2). Pure Python: the exporter (torch side), the
server (torch-free) and clients (to show a model) all read it.

Graph contract (layout ``BTHW``): input ``frames`` is float32 ``[batch, window_length, H, W]``, already
normalised; output ``denoised`` is float32 ``[batch, out_frames, H, W]`` in normalised units, the
denoised frames at window positions ``before … before+out_frames-1``. ``H`` and ``W`` must be multiples
of ``spatial_multiple`` (engines pad by reflection and crop back). A window with ``reference =
"running_mean"`` has one more input plane after its frames: the mean of the series' frames from the first
up to the newest one the window reads (see :mod:`livedenoise.clients.windowing`). A spec with
``frame_shape`` serves only frames of that height and width.

Estimates: a spec may name several ``estimates`` of the same frames that one graph computes at once (FAST's
final and causal values). The output then has ``out_frames`` planes per estimate, in the order listed, the
first being the default; each estimate reads at most ``after`` future frames of the window (the rest of the
window's future planes may hold anything, the estimate does not depend on them), so a series that asks for a
lower-latency estimate is answered as soon as that estimate's own frames have arrived.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "METADATA_KEY",
    "SPEC_FORMAT",
    "GRAPH_INPUT",
    "GRAPH_OUTPUT",
    "WindowSpec",
    "Normalization",
    "ModelSpec",
    "SpecError",
    "REFERENCE_KINDS",
    "EstimateSpec",
]

METADATA_KEY = "livedenoise.spec"
SPEC_FORMAT = 1
INPUT_LAYOUT = "BTHW"

#: Names of the exported graph's input ``[B, L, H, W]`` and output ``[B, out_frames, H, W]``.
GRAPH_INPUT = "frames"
GRAPH_OUTPUT = "denoised"

#: Extra input planes a window can carry after its frames: none, or the series' running mean frame.
REFERENCE_KINDS = ("none", "running_mean")


class SpecError(ValueError):
    """A model's embedded spec is missing or invalid; the message names the field."""


def _int_field(obj: dict[str, Any], name: str, minimum: int) -> int:
    value = obj.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise SpecError(f"spec field {name!r} must be an integer >= {minimum}, got {value!r}")
    return value


@dataclass(frozen=True)
class WindowSpec:
    """Temporal context a model needs: ``before`` and ``after`` frames around ``out_frames`` outputs.

    One call sees ``window_length = before + out_frames + after`` frames and returns ``out_frames``
    consecutive denoised frames. Future-frame latency is ``after`` (+ up to ``out_frames - 1`` while a
    block fills).
    """

    before: int
    after: int
    out_frames: int = 1
    spatial_multiple: int = 1
    reference: str = "none"

    def __post_init__(self) -> None:
        for name, minimum in (("before", 0), ("after", 0), ("out_frames", 1), ("spatial_multiple", 1)):
            _int_field(asdict(self), name, minimum)
        if self.reference not in REFERENCE_KINDS:
            raise SpecError(
                f"spec field 'reference' must be one of {', '.join(REFERENCE_KINDS)}, got {self.reference!r}"
            )

    @property
    def window_length(self) -> int:
        """Frames one call reads: ``before + out_frames + after``."""
        return self.before + self.out_frames + self.after

    @property
    def input_planes(self) -> int:
        """Planes of the graph input: the window's frames, plus the reference plane when there is one."""
        return self.window_length + (self.reference != "none")

    @property
    def latency_frames(self) -> int:
        return self.after + self.out_frames - 1

    @classmethod
    def from_dict(cls, obj: dict[str, Any]) -> WindowSpec:
        if not isinstance(obj, dict):
            raise SpecError(f"spec field 'window' must be an object, got {type(obj).__name__}")
        return cls(
            before=_int_field(obj, "before", 0),
            after=_int_field(obj, "after", 0),
            out_frames=_int_field(obj, "out_frames", 1),
            spatial_multiple=_int_field(obj, "spatial_multiple", 1),
            reference=str(obj.get("reference", "none")),
        )


@dataclass(frozen=True)
class EstimateSpec:
    """One of several estimates a graph outputs: its name and the future frames it reads (``<= window.after``)."""

    name: str
    after: int

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name or len(self.name) > 64:
            raise SpecError(f"spec estimate name must be a string of 1-64 characters, got {self.name!r}")
        _int_field(asdict(self), "after", 0)

    @classmethod
    def from_dict(cls, obj: Any) -> EstimateSpec:
        if not isinstance(obj, dict):
            raise SpecError(f"spec field 'estimates' must hold objects, got {type(obj).__name__}")
        return cls(name=obj.get("name"), after=_int_field(obj, "after", 0))  # type: ignore[arg-type]


def _estimates(value: Any, window: WindowSpec) -> tuple[EstimateSpec, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise SpecError(f"spec field 'estimates' must be a list, got {type(value).__name__}")
    estimates = tuple(EstimateSpec.from_dict(item) for item in value)
    _check_estimates(estimates, window)
    return estimates


def _check_estimates(estimates: tuple[EstimateSpec, ...], window: WindowSpec) -> None:
    names = [e.name for e in estimates]
    if len(set(names)) != len(names):
        raise SpecError(f"spec field 'estimates' repeats a name: {names}")
    for e in estimates:
        if e.after > window.after:
            raise SpecError(f"estimate {e.name!r} reads {e.after} future frames, more than the window's {window.after}")


def _frame_shape(value: Any) -> tuple[int, int] | None:
    if value is None:
        return None
    if (
        not isinstance(value, (list, tuple))
        or len(value) != 2
        or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in value)
    ):
        raise SpecError(f"spec field 'frame_shape' must be null or [height, width] of positive integers, got {value!r}")
    return int(value[0]), int(value[1])


@dataclass(frozen=True)
class Normalization:
    """Affine intensity normalisation fitted on the training movie: ``(x - offset) / scale``."""

    kind: str
    offset: float
    scale: float

    def __post_init__(self) -> None:
        if not (np.isfinite(self.offset) and np.isfinite(self.scale) and self.scale > 0):
            raise SpecError(
                f"normalization needs a finite offset and a positive scale, got {self.offset}, {self.scale}"
            )

    def apply(self, x: NDArray[Any]) -> NDArray[np.float32]:
        out = np.asarray(x, dtype=np.float32) - np.float32(self.offset)
        out *= np.float32(1.0 / self.scale)
        return out

    def invert(self, y: NDArray[np.float32]) -> NDArray[np.float32]:
        out = np.asarray(y, dtype=np.float32) * np.float32(self.scale)
        out += np.float32(self.offset)
        return out

    @classmethod
    def from_dict(cls, obj: dict[str, Any]) -> Normalization:
        if not isinstance(obj, dict):
            raise SpecError(f"spec field 'normalization' must be an object, got {type(obj).__name__}")
        try:
            return cls(kind=str(obj["kind"]), offset=float(obj["offset"]), scale=float(obj["scale"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise SpecError(
                f"spec field 'normalization' is invalid ({exc!r}); it needs kind, offset and scale"
            ) from None


@dataclass(frozen=True)
class ModelSpec:
    """Everything a server needs to run an exported model, embedded in the ONNX file."""

    method: str
    window: WindowSpec
    normalization: Normalization
    version: str
    input_name: str = GRAPH_INPUT
    output_name: str = GRAPH_OUTPUT
    input_layout: str = INPUT_LAYOUT
    train_data_digest: str = ""
    created: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    #: ``(H, W)`` when the graph serves only frames of that size (a per-pixel prior from the training movie).
    frame_shape: tuple[int, int] | None = None
    #: The estimates the graph outputs, default first (empty: one estimate reading the whole window).
    estimates: tuple[EstimateSpec, ...] = ()

    def __post_init__(self) -> None:
        _check_estimates(self.estimates, self.window)

    @property
    def output_planes(self) -> int:
        """Planes of the graph output: ``out_frames`` per estimate."""
        return self.window.out_frames * max(1, len(self.estimates))

    @property
    def estimate_names(self) -> tuple[str, ...]:
        """The estimates a series may ask for, default first (empty: only the model's one output)."""
        return tuple(e.name for e in self.estimates)

    def estimate(self, name: str | None) -> tuple[slice, int]:
        """Output planes and future frames read of estimate ``name`` (``None``: the default).

        Raises
        ------
        SpecError
            The model has no estimate of that name.
        """
        k = self.window.out_frames
        if name is None:
            return slice(0, k), self.estimates[0].after if self.estimates else self.window.after
        for i, e in enumerate(self.estimates):
            if e.name == name:
                return slice(i * k, (i + 1) * k), e.after
        offered = ", ".join(self.estimate_names) or "only its default output"
        raise SpecError(f"model ({self.method}) has no estimate {name!r}; it offers {offered}")

    def to_json(self) -> str:
        doc = {"format": SPEC_FORMAT, **asdict(self)}
        return json.dumps(doc, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ModelSpec:
        try:
            obj = json.loads(text)
        except (TypeError, json.JSONDecodeError) as exc:
            raise SpecError(f"model spec is not JSON: {exc}") from None
        if not isinstance(obj, dict):
            raise SpecError("model spec must be a JSON object")
        if obj.get("format") != SPEC_FORMAT:
            raise SpecError(f"model spec format {obj.get('format')!r} is not supported (expected {SPEC_FORMAT})")
        if obj.get("input_layout", INPUT_LAYOUT) != INPUT_LAYOUT:
            raise SpecError(f"input_layout {obj.get('input_layout')!r} is not supported (expected {INPUT_LAYOUT!r})")
        method = obj.get("method")
        if not isinstance(method, str) or not method:
            raise SpecError("spec field 'method' must be a non-empty string")
        window = WindowSpec.from_dict(obj.get("window"))  # type: ignore[arg-type]
        return cls(
            method=method,
            window=window,
            normalization=Normalization.from_dict(obj.get("normalization")),  # type: ignore[arg-type]
            version=str(obj.get("version", "")),
            input_name=str(obj.get("input_name", GRAPH_INPUT)),
            output_name=str(obj.get("output_name", GRAPH_OUTPUT)),
            train_data_digest=str(obj.get("train_data_digest", "")),
            created=str(obj.get("created", "")),
            extra=dict(obj.get("extra") or {}),
            frame_shape=_frame_shape(obj.get("frame_shape")),
            estimates=_estimates(obj.get("estimates"), window),
        )

    @classmethod
    def from_metadata(cls, metadata: dict[str, str]) -> ModelSpec:
        """Read the spec from an ONNX ``metadata_props`` / ORT ``custom_metadata_map`` mapping."""
        if METADATA_KEY not in metadata:
            raise SpecError(f"model has no {METADATA_KEY!r} metadata; export it with `livedenoise train`")
        return cls.from_json(metadata[METADATA_KEY])
