"""The package's RDF (``rdf.yaml``, BioImage Model Zoo model spec 0.5) as a plain mapping (pure Python).

Axes ``batch, time, y, x``: the graph's input planes are consecutive frames of the movie (plus, for a model
that reads it, the series' running mean frame), its output planes the denoised frames. The intensity
normalisation, ``(x - offset) / scale`` fitted on the training movie, is written as a ``scale_linear``
preprocessing (gain ``1/scale``, offset ``-offset/scale``) and its inverse as a ``scale_linear``
postprocessing (gain ``scale``, offset ``offset``): the same affine map, every normalisation kind livedenoise
fits (zscore, mean_sub, minmax, percentile) included, so the tensors a zoo tool passes and receives are raw
camera intensities, as in livedenoise. (CARE and Noise2Void packages write the same map as
``fixed_zero_mean_unit_variance``, whose ``eps`` added to the std would make it inexact.)
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from livedenoise.clients import __version__
from livedenoise.clients.model_spec import ModelSpec
from livedenoise.models.bmz._bioimageio import CONFIG_FORMAT, CONFIG_KEY
from livedenoise.models.bmz.method_facts import MethodFacts
from livedenoise.models.bmz.window_sample import WindowSample

__all__ = [
    "RDF_NAME",
    "WEIGHTS_NAME",
    "TEST_INPUT_NAME",
    "TEST_OUTPUT_NAME",
    "SAMPLE_INPUT_NAME",
    "SAMPLE_OUTPUT_NAME",
    "COVER_NAME",
    "DOCUMENTATION_NAME",
    "DEFAULT_LICENSE",
    "PackageOptions",
    "TestWindowSource",
    "default_name",
    "input_plane_names",
    "output_plane_names",
    "build_rdf",
]

# The files of a package (all at its root).
RDF_NAME = "rdf.yaml"
WEIGHTS_NAME = "weights.onnx"
TEST_INPUT_NAME = "test_input.npy"
TEST_OUTPUT_NAME = "test_output.npy"
SAMPLE_INPUT_NAME = "sample_input.tif"
SAMPLE_OUTPUT_NAME = "sample_output.tif"
COVER_NAME = "cover.png"
DOCUMENTATION_NAME = "README.md"

#: The licence most zoo models carry; the weights are the user's to license otherwise (``--license``).
DEFAULT_LICENSE = "CC-BY-4.0"

_NAME_CHARS = re.compile(r"[^A-Za-z0-9_+\- ()]")


@dataclass(frozen=True)
class PackageOptions:
    """What the person exporting says about the model (everything else comes from the model itself)."""

    name: str | None = None  # default: default_name(spec)
    description: str | None = None  # one line; default: method, window and movie
    authors: tuple[str, ...] = ()
    license: str = DEFAULT_LICENSE  # SPDX identifier
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class TestWindowSource:
    """Where the test window was cut from."""

    movie: str  # the movie's file name (no folders: packages are shared)
    shape: tuple[int, int, int]
    training_movie: bool | None  # its digest matches the model's training data (None: the model records none)


def default_name(spec: ModelSpec) -> str:
    """``<method> fluorescence movie denoiser (livedenoise)``, in the characters the zoo allows."""
    return _NAME_CHARS.sub("_", f"{spec.method} fluorescence movie denoiser (livedenoise)")


def input_plane_names(spec: ModelSpec) -> list[str]:
    """Each input plane: ``t-2``, ``t-1``, ``t``, ``t+1``, … relative to the first denoised frame ``t``, then
    ``running_mean`` for a model that reads it."""
    w = spec.window
    names = [f"t{p - w.before:+d}" if p != w.before else "t" for p in range(w.window_length)]
    return names + (["running_mean"] if w.reference == "running_mean" else [])


def output_plane_names(spec: ModelSpec) -> list[str]:
    """Each output plane: the denoised frames ``t``, ``t+1``, … (per estimate, ``final:t``, … when several)."""
    frames = ["t" if k == 0 else f"t+{k}" for k in range(spec.window.out_frames)]
    if not spec.estimates:
        return frames
    return [f"{e.name}:{f}" for e in spec.estimates for f in frames]


def _space_axes(spec: ModelSpec, sample: WindowSample) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    inputs: list[dict[str, Any]] = []
    outputs: list[dict[str, Any]] = []
    for i, axis in enumerate(("y", "x")):
        if spec.frame_shape is not None:
            size: Any = spec.frame_shape[i]
            note = "fixed: a prior computed from the training movie's frames"
        else:
            size = {"min": sample.min_side, "step": spec.window.spatial_multiple}
            note = (
                f"{sample.min_side} + n * {spec.window.spatial_multiple} pixels (livedenoise reflect-pads other sizes)"
            )
        inputs.append({"type": "space", "id": axis, "size": size, "description": note})
        outputs.append({"type": "space", "id": axis, "size": {"tensor_id": spec.input_name, "axis_id": axis}})
    return inputs, outputs


def _fit(text: str, limit: int = 128) -> str:
    """``text`` within the spec's length limit for descriptions (the documentation says the rest)."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _span(first: int, last: int) -> str:
    def rel(offset: int) -> str:
        return "t" if offset == 0 else f"t{offset:+d}"

    return rel(first) if first == last else f"{rel(first)}..{rel(last)}"


def _input_description(spec: ModelSpec) -> str:
    w = spec.window
    text = (
        f"{w.window_length} consecutive raw frames in camera units: {w.before} before, {w.out_frames} to denoise, "
        f"{w.after} after (mirrored past the movie's ends)"
    )
    if w.reference == "running_mean":
        text = (
            f"{w.window_length} raw frames ({w.before} before, {w.out_frames} to denoise, {w.after} after), then "
            "the running mean of the series"
        )
    return _fit(text)


def _input_time_description(spec: ModelSpec) -> str:
    w = spec.window
    text = f"frames {_span(-w.before, w.out_frames - 1 + w.after)} of the movie, t the first frame denoised"
    return _fit(text + (", then their series' running mean" if w.reference == "running_mean" else ""))


def _output_description(spec: ModelSpec) -> str:
    k = spec.window.out_frames
    text = f"the denoised frame{'s' if k > 1 else ''} {_span(0, k - 1)} in camera units"
    if spec.estimates:
        text += f"; {len(spec.estimates)} estimates, {k} planes each: " + ", ".join(e.name for e in spec.estimates)
    return _fit(text)


def _output_time_description(spec: ModelSpec) -> str:
    frames = f"frames {_span(0, spec.window.out_frames - 1)}"
    if not spec.estimates:
        return _fit(frames)
    return _fit(f"{frames} of each estimate in turn: " + ", ".join(e.name for e in spec.estimates))


def _finite(value: Any) -> Any:
    """``value`` with non-finite floats as None (the RDF allows no NaN or infinity)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def _cite(facts: MethodFacts) -> list[dict[str, str]]:
    if not facts.citation:
        return []
    doi = facts.doi
    return [
        {"text": facts.citation_text, "doi": doi} if doi else {"text": facts.citation_text, "url": facts.citation_url}
    ]


def _tags(spec: ModelSpec, facts: MethodFacts, extra: Sequence[str]) -> list[str]:
    tags = [
        "denoising",
        "self-supervised",
        "fluorescence-light-microscopy",
        "2d",
        "time-series",
        "onnx",
        "livedenoise",
        spec.method,
        facts.family.replace(" ", "-"),
    ]
    return list(dict.fromkeys([*tags, *extra]))


def _bioimageio_config(spec: ModelSpec, facts: MethodFacts, parameter_count: int | None) -> dict[str, Any]:
    norm = spec.normalization
    training: dict[str, Any] = {
        "training_preprocessing": (
            f"intensities normalised as (x - {norm.offset:g}) / {norm.scale:g} ({norm.kind}, fitted on the training "
            "movie); self-supervised: trained on the noisy movie itself, without clean data"
        )
    }
    seconds = spec.extra.get("train_seconds")
    if isinstance(seconds, (int, float)) and seconds > 0:
        training["training_duration"] = round(float(seconds) / 3600.0, 4)
    config: dict[str, Any] = {
        "task": "denoising",
        "modality": "fluorescence microscopy (time-lapse)",
        "architecture_description": facts.description or facts.family,
        "training": training,
        "bias_risks_limitations": {
            "limitations": (
                "Trained on one movie: it suits movies of the same microscope, sample, labelling and noise level. "
                "A self-supervised denoiser can smooth events shorter than its window resolves."
            ),
            "recommendations": (
                "Compare with the classical filters on your own movie (livedenoise compare) and check traces of "
                "the structures you measure against the raw movie before relying on the output."
            ),
        },
    }
    network = spec.extra.get("network")
    if isinstance(network, str) and network:
        config["architecture_type"] = network[:32]
    if parameter_count is not None:
        config["model_parameter_count"] = parameter_count
    return config


def build_rdf(
    *,
    spec: ModelSpec,
    spec_json: str,
    facts: MethodFacts,
    sample: WindowSample,
    source: TestWindowSource,
    options: PackageOptions,
    hashes: Mapping[str, str],
    opset: int,
    format_version: str,
    parameter_count: int | None = None,
) -> dict[str, Any]:
    """The RDF of a package holding the files named above, whose sha256 are ``hashes`` (file name → hex).

    ``spec_json`` is the model's embedded spec exactly as its ONNX metadata holds it: the importer compares
    the two. ``format_version`` is the model spec version written (the newest 0.5 one bioimageio.spec knows).
    """
    w = spec.window
    space_in, space_out = _space_axes(spec, sample)
    norm = spec.normalization
    paper = f" ({facts.paper})" if facts.paper else ""
    description = options.description or (
        f"Self-supervised denoising of fluorescence microscopy movies with {spec.method}{paper}, trained with "
        f"livedenoise on the noisy movie itself: {w.window_length} frames in ({w.before} before, {w.out_frames} "
        f"denoised, {w.after} after), {w.out_frames} denoised frame{'s' if w.out_frames > 1 else ''} out."
    )
    config = {
        "bioimageio": _bioimageio_config(spec, facts, parameter_count),
        CONFIG_KEY: {
            "format": CONFIG_FORMAT,
            "exported_with": f"livedenoise {__version__}",
            "method": spec.method,
            "window": {"before": w.before, "out_frames": w.out_frames, "after": w.after, "reference": w.reference},
            "normalization": {"kind": norm.kind, "offset": norm.offset, "scale": norm.scale},
            "input_planes": input_plane_names(spec),
            "output_planes": output_plane_names(spec),
            "test_window": {
                "movie": source.movie,
                "movie_shape": list(source.shape),
                "training_movie": source.training_movie,
                "first_denoised_frame": sample.start,
                "crop_yxhw": list(sample.crop),
            },
            "validation": _finite(spec.extra.get("validation")),
            # The model's spec exactly as its ONNX metadata holds it (import-bmz checks the two agree).
            "spec_json": spec_json,
        },
    }
    rdf: dict[str, Any] = {
        "type": "model",
        "format_version": format_version,
        "name": options.name or default_name(spec),
        "description": description,
        "authors": [{"name": a} for a in options.authors],
        "cite": _cite(facts),
        "license": options.license,
        "tags": _tags(spec, facts, options.tags),
        "documentation": {"source": DOCUMENTATION_NAME, "sha256": hashes[DOCUMENTATION_NAME]},
        "covers": [{"source": COVER_NAME, "sha256": hashes[COVER_NAME]}],
        "inputs": [
            {
                "id": spec.input_name,
                "description": _input_description(spec),
                "axes": [
                    {"type": "batch"},
                    {
                        "type": "time",
                        "id": "time",
                        "size": w.input_planes,
                        "description": _input_time_description(spec),
                    },
                    *space_in,
                ],
                "test_tensor": {"source": TEST_INPUT_NAME, "sha256": hashes[TEST_INPUT_NAME]},
                "sample_tensor": {"source": SAMPLE_INPUT_NAME, "sha256": hashes[SAMPLE_INPUT_NAME]},
                "data": {"type": "float32"},
                "preprocessing": [
                    {"id": "scale_linear", "kwargs": {"gain": 1.0 / norm.scale, "offset": -norm.offset / norm.scale}}
                ],
            }
        ],
        "outputs": [
            {
                "id": spec.output_name,
                "description": _output_description(spec),
                "axes": [
                    {"type": "batch"},
                    {
                        "type": "time",
                        "id": "time",
                        "size": spec.output_planes,
                        "description": _output_time_description(spec),
                    },
                    *space_out,
                ],
                "test_tensor": {"source": TEST_OUTPUT_NAME, "sha256": hashes[TEST_OUTPUT_NAME]},
                "sample_tensor": {"source": SAMPLE_OUTPUT_NAME, "sha256": hashes[SAMPLE_OUTPUT_NAME]},
                "data": {"type": "float32"},
                "postprocessing": [{"id": "scale_linear", "kwargs": {"gain": norm.scale, "offset": norm.offset}}],
            }
        ],
        "weights": {
            "onnx": {
                "source": WEIGHTS_NAME,
                "sha256": hashes[WEIGHTS_NAME],
                "opset_version": opset,
                "comment": f"the served graph of livedenoise's {spec.method}, its spec in the ONNX metadata",
            }
        },
        "config": json.loads(json.dumps(config)),  # plain JSON types only (tuples become lists)
    }
    if not rdf["cite"]:
        del rdf["cite"]  # a method with no paper (bioimageio.spec warns that the model cites nothing)
    return rdf
