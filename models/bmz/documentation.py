"""The package's documentation (``README.md``): what the model is, its window and normalisation, how it was
validated, how to run it (with livedenoise and with other zoo tools) and the paper to cite."""

from __future__ import annotations

from typing import Any

from livedenoise.clients.model_spec import ModelSpec
from livedenoise.models.bmz.description import (
    TestWindowSource,
    input_plane_names,
    output_plane_names,
)
from livedenoise.models.bmz.method_facts import MethodFacts
from livedenoise.models.bmz.window_sample import WindowSample

__all__ = ["render_documentation", "validation_sentence"]


def validation_sentence(validation: Any) -> str | None:
    """The held-out score beside the best classical filter's, as ``livedenoise train`` reports it (None: the
    model's metadata has no score)."""
    if not isinstance(validation, dict):
        return None
    try:
        frames = int(validation["heldout_frames"])
        model = float(validation["model_gain_db"])
        best = str(validation["best_filter"])
        floor = float(validation["best_filter_gain_db"])
    except (KeyError, TypeError, ValueError):
        return None
    head = (
        f"held-out score (last {frames} frames of the training movie, PSNR gain over raw): model {model:+.2f} dB, "
        f"best classical filter {best} {floor:+.2f} dB"
    )
    margin = model - floor
    if margin > 0:
        return f"{head}: the model is {margin:.2f} dB better."
    return f"{head}: the model does NOT beat the classical filter ({margin:+.2f} dB); prefer the filter on such movies."


def _window_section(spec: ModelSpec, sample: WindowSample) -> list[str]:
    w = spec.window
    planes = ", ".join(f"`{p}`" for p in input_plane_names(spec))
    outputs = ", ".join(f"`{p}`" for p in output_plane_names(spec))
    lines = [
        "## Input, output and window",
        "",
        f"- **Input** `{spec.input_name}`, axes `batch, time, y, x`: {w.input_planes} planes, {planes}: the "
        f"{w.before} frames before the first frame to denoise (`t`), the {w.out_frames} to denoise, the {w.after} "
        "after, consecutive frames of the movie in order.",
    ]
    if w.reference == "running_mean":
        lines.append(
            "  The last plane is the mean of the series' frames from its first frame up to the newest one the window "
            "reads (the running mean livedenoise's server keeps while it streams)."
        )
    lines += [
        f"- **Output** `{spec.output_name}`, axes `batch, time, y, x`: {spec.output_planes} planes, {outputs}.",
    ]
    if spec.estimates:
        lines.append(
            "  The model computes several estimates of the same frames in one pass; the first is the default, "
            + "; ".join(f"`{e.name}` reads {e.after} future frames" for e in spec.estimates)
            + "."
        )
    if spec.frame_shape is not None:
        fh, fw = spec.frame_shape
        lines.append(f"- **Frame size**: exactly {fh} x {fw} pixels (a prior computed from the training movie).")
    else:
        lines.append(
            f"- **Frame size**: height and width of {sample.min_side} + n x {w.spatial_multiple} pixels; livedenoise "
            "pads other sizes by reflection and crops the result back."
        )
    lines += [
        f"- **Over a movie**: the first window denoises frames 0..{w.out_frames - 1}, the next one the "
        f"{w.out_frames} after, and so on (the window steps by {w.out_frames} frame{'s' if w.out_frames > 1 else ''}); "
        "frames before the first and past the last are mirrored (numpy `reflect`, the edge frame not repeated). "
        f"A frame is denoised once the {w.after} frame{'s' if w.after != 1 else ''} after it "
        f"(and the rest of its block) have arrived: {w.latency_frames} frames of latency.",
        "",
    ]
    return lines


def _normalisation_section(spec: ModelSpec) -> list[str]:
    n = spec.normalization
    return [
        "## Normalisation",
        "",
        f"The network sees `(x - {n.offset:g}) / {n.scale:g}` (`{n.kind}`, fitted on the training movie) and its "
        f"output is mapped back with `y * {n.scale:g} + {n.offset:g}`. The package writes both as `scale_linear` "
        f"steps (preprocessing gain `{1.0 / n.scale:.6g}`, offset `{-n.offset / n.scale:.6g}`; postprocessing "
        f"gain `{n.scale:g}`, offset `{n.offset:g}`), the same affine maps, so the tensors in and out are raw "
        "intensities in the movie's units, as in livedenoise. Feed the raw frames (cast to float32), not frames "
        "normalised another way.",
        "",
    ]


def _validation_section(spec: ModelSpec, sample: WindowSample, source: TestWindowSource) -> list[str]:
    lines = ["## Validation", ""]
    sentence = validation_sentence(spec.extra.get("validation"))
    if sentence:
        lines += [
            f"Measured by `livedenoise train`, without ground truth: {sentence} The held-out frames were never "
            "trained on; their even frames are denoised and scored against the odd ones, whose noise is "
            "independent, and the classical filters (3-D Gaussians, moving averages) are scored the same way.",
            "",
        ]
    else:
        lines += [
            "The model's metadata holds no held-out score (`livedenoise train` holds frames out of movies long "
            "enough for it).",
            "",
        ]
    if source.training_movie is True:
        origin = f"the training movie (`{source.movie}`, its digest matches the model's)"
    elif source.training_movie is False:
        origin = f"`{source.movie}`, not the training movie (its digest differs from the model's)"
    else:
        origin = f"`{source.movie}`"
    y0, x0, h, w = sample.crop
    t, hh, ww = source.shape
    lines += [
        f"The test tensors are one window from {origin}, {t} frames of {hh} x {ww}: the window whose first denoised "
        f"frame is frame {sample.start}, cropped to {h} x {w} pixels at (y {y0}, x {x0}), and the model's own output "
        "for it, computed with ONNX Runtime. The export re-ran the test input through this description "
        "(preprocessing, weights, postprocessing) and checked that it reproduces the test output. The cover shows "
        "that window's frame `t` raw (left) and denoised (right) on one grey scale.",
        "",
    ]
    return lines


def _training_section(spec: ModelSpec) -> list[str]:
    extra = spec.extra
    facts: list[str] = []
    if spec.train_data_digest:
        facts.append(f"training data `{spec.train_data_digest}`")
    if isinstance(extra.get("train_steps"), int):
        facts.append(f"{extra['train_steps']} optimiser steps")
    if isinstance(extra.get("train_seconds"), (int, float)):
        facts.append(f"{extra['train_seconds']:g} s of training")
    if spec.created:
        facts.append(f"exported {spec.created}")
    if spec.version:
        facts.append(f"livedenoise {spec.version}")
    lines = ["## Training", "", "Self-supervised: trained on the noisy movie itself, with no clean data."]
    if facts:
        text = "; ".join(facts)
        lines[-1] += " " + text[0].upper() + text[1:] + "."
    config = extra.get("train_config")
    if isinstance(config, dict) and config:
        shown = ", ".join(
            f"`{k}={v}`" for k, v in sorted(config.items()) if v is not None and not isinstance(v, (dict, list))
        )
        lines += ["", f"Training settings: {shown}."]
    return [*lines, ""]


def render_documentation(
    *, name: str, spec: ModelSpec, facts: MethodFacts, sample: WindowSample, source: TestWindowSource
) -> str:
    """The Markdown documentation of a package (its ``documentation`` file)."""
    w = spec.window
    about = f"`{spec.method}`"
    if facts.paper:
        about += f" ({facts.paper})"
    what = f"{about}, a {facts.family} method" + (f": {facts.description}" if facts.description else "") + "."
    if facts.provisional:
        what += (
            " This method is **provisional** in livedenoise: its paper's code is not public and the implementation "
            "is livedenoise's reading of the paper."
        )
    lines = [
        f"# {name}",
        "",
        "A self-supervised denoiser for fluorescence microscopy movies (calcium, voltage, live-cell time-lapse), "
        f"trained with livedenoise on the noisy movie itself. Method: {what}",
        f"It reads {w.window_length} consecutive frames and returns {w.out_frames} denoised "
        f"frame{'s' if w.out_frames > 1 else ''}; livedenoise runs it offline and while a camera streams.",
        "",
        *_window_section(spec, sample),
        *_normalisation_section(spec),
        *_validation_section(spec, sample, source),
        *_training_section(spec),
        "## How to run it",
        "",
        "With livedenoise (`pip install 'livedenoise[server,bmz]'`):",
        "",
        "```bash",
        "livedenoise import-bmz package.zip model.onnx          # checks the package and writes the ONNX model",
        "livedenoise denoise movie.tif --model model.onnx --out denoised.tif",
        "livedenoise serve --model model.onnx                    # then stream frames during acquisition",
        "```",
        "",
        "`weights.onnx` is the same ONNX file: its metadata (`livedenoise.spec`) holds the window and normalisation, "
        "so livedenoise needs nothing else. With other bioimage.io tools (bioimageio.core, ...), slide the window "
        f"over the movie as described above, {w.out_frames} frame{'s' if w.out_frames > 1 else ''} at a time.",
        "",
        "## Limitations",
        "",
        "Trained on one movie: it suits movies of the same microscope, sample, labelling and noise level. "
        "Compare it with the classical filters on your own movie (`livedenoise compare`) and check the traces of "
        "what you measure against the raw movie before relying on the output.",
        "",
        "## Citation",
        "",
    ]
    if facts.citation:
        ref = facts.citation_text
        doi = facts.doi
        lines.append(f"If you use this model, cite the method's paper: {ref}" + (f", doi:{doi}." if doi else "."))
    else:
        lines.append(f"The method `{spec.method}` has no registered paper.")
    return "\n".join(lines) + "\n"
