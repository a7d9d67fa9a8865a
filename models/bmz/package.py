"""Write a BioImage Model Zoo package (model spec 0.5) of a livedenoise ONNX model.

The package is a zip of ``rdf.yaml``, the ONNX file as it is (``weights.onnx``, its livedenoise metadata
intact), one test window cut from a movie with the model's output for it (``.npy``, and as TIFF samples), a
cover (the window's frame raw beside denoised) and ``README.md``. The description is built and validated with
bioimageio.spec; the written zip is loaded back and validated again (every file against its sha256, the test
tensors against the axes), offline, and its test input is run through the description (preprocessing, the
weights in ONNX Runtime, postprocessing) to check that it gives the test output. The zip replaces ``out``
only once all of that passed.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from livedenoise.clients.model_spec import ModelSpec
from livedenoise.models.bmz._bioimageio import (
    BmzError,
    build_offline,
    open_package,
    require_bioimageio,
    summary_problems,
)
from livedenoise.models.bmz.cover import write_cover
from livedenoise.models.bmz.description import (
    COVER_NAME,
    DOCUMENTATION_NAME,
    RDF_NAME,
    SAMPLE_INPUT_NAME,
    SAMPLE_OUTPUT_NAME,
    TEST_INPUT_NAME,
    TEST_OUTPUT_NAME,
    WEIGHTS_NAME,
    PackageOptions,
    TestWindowSource,
    build_rdf,
    default_name,
)
from livedenoise.models.bmz.documentation import render_documentation
from livedenoise.models.bmz.method_facts import method_facts
from livedenoise.models.bmz.onnx_model import read_onnx_model
from livedenoise.models.bmz.reproduce import Reproduction, reproduce_test_tensors
from livedenoise.models.bmz.window_sample import GraphSession, WindowSample, sample_window
from livedenoise.models.data import movie_digest

__all__ = ["ExportResult", "export_package"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExportResult:
    """A written package and what its validation found."""

    path: Path
    name: str
    spec: ModelSpec
    status: str  # bioimageio.spec's validation status of the written zip ("valid-format": format and files)
    warnings: tuple[str, ...]  # bioimageio.spec's warnings (none for a registered method)
    reproduction: Reproduction
    sample: WindowSample
    source: TestWindowSource
    files: tuple[str, ...]

    def summary(self) -> str:
        """A few lines for the command line."""
        from bioimageio.spec import __version__ as spec_version

        y0, x0, h, w = self.sample.crop
        origin = {True: "the training movie", False: "not the training movie", None: "the movie"}[
            self.source.training_movie
        ]
        lines = [
            f"wrote {self.path} ({self.path.stat().st_size / 1024:.0f} KiB): {', '.join(self.files)}",
            f"model {self.name!r}: {self.spec.method}, axes batch,time,y,x, input {list(self.sample.window.shape)}, "
            f"output {list(self.sample.output.shape)}",
            f"test window: {self.source.movie} ({origin}), first denoised frame {self.sample.start}, "
            f"crop {h}x{w} at ({y0}, {x0})",
            f"bioimageio.spec {spec_version}: {self.status} (format, file hashes, test tensor shapes; offline)",
            self.reproduction.summary(),
        ]
        for warning in self.warnings:
            lines.append(f"warning: {warning}")
            if "github_user" in warning:
                lines.append(
                    "  (the zoo asks for a maintainer's GitHub user name when you upload on bioimage.io; livedenoise "
                    "names none, because checking one would ask GitHub and the export validates offline)"
                )
        return "\n".join(lines)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _write_tiff(path: Path, array: NDArray[np.float32]) -> None:
    import tifffile

    # Planes are frames, never colour channels (tifffile would take 3 or 4 planes for RGB).
    tifffile.imwrite(path, array, photometric="minisblack")


def _write_files(folder: Path, data: bytes, sample: WindowSample, spec: ModelSpec) -> None:
    (folder / WEIGHTS_NAME).write_bytes(data)
    np.save(folder / TEST_INPUT_NAME, sample.window, allow_pickle=False)
    np.save(folder / TEST_OUTPUT_NAME, sample.output, allow_pickle=False)
    # Samples for people and the zoo's previews: the same tensors without the batch axis, readable by imageio.
    _write_tiff(folder / SAMPLE_INPUT_NAME, sample.window[0])
    _write_tiff(folder / SAMPLE_OUTPUT_NAME, sample.output[0])
    write_cover(folder / COVER_NAME, sample.window[0, spec.window.before], sample.output[0, 0])


def _zip(folder: Path, names: list[str], target: Path) -> None:
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as archive:
        for name in names:
            archive.write(folder / name, arcname=name)


def _invalid(what: str, descr: Any) -> BmzError:
    errors, _ = summary_problems(descr.validation_summary)
    return BmzError(f"{what} is not a valid BioImage Model Zoo model:\n  " + "\n  ".join(errors or ["(no detail)"]))


def export_package(
    model: str | Path,
    out: str | Path,
    movie: NDArray[Any],
    *,
    movie_name: str,
    options: PackageOptions | None = None,
) -> ExportResult:
    """Write the BioImage Model Zoo package of ``model`` (a livedenoise ONNX file) to ``out`` (a .zip).

    Parameters
    ----------
    model
        The ONNX file written by ``livedenoise train``.
    out
        The package to write (replaced once the new one has been validated).
    movie
        ``[T, H, W]`` raw frames to cut the test window from: the training movie (recognised by its digest)
        or another movie of the same kind.
    movie_name
        The movie's file name, recorded in the package.
    options
        Name, description, authors, licence and extra tags.

    Raises
    ------
    BmzError
        The model is not a livedenoise ONNX file, the movie does not suit it, or the package does not validate.
    ImportError
        bioimageio.spec (the ``bmz`` extra), onnxruntime, onnx or tifffile is missing.
    """
    spec_module = require_bioimageio()
    from bioimageio.spec.model.v0_5 import ModelDescr

    options = options or PackageOptions()
    model, out = Path(model), Path(out)
    if out.is_dir():
        raise BmzError(f"{out} is a folder; name the package file to write (a .zip)")
    onnx_model = read_onnx_model(model.read_bytes(), str(model))
    spec = onnx_model.spec
    movie = np.asarray(movie)
    sample = sample_window(GraphSession(onnx_model.data, spec), movie)
    training_movie = movie_digest(movie) == spec.train_data_digest if spec.train_data_digest else None
    source = TestWindowSource(
        movie=Path(movie_name).name,
        shape=(int(movie.shape[0]), int(movie.shape[1]), int(movie.shape[2])),
        training_movie=training_movie,
    )
    facts = method_facts(spec)
    name = options.name or default_name(spec)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".bmz-", dir=out.parent) as tmp:
        folder = Path(tmp) / "package"
        folder.mkdir()
        _write_files(folder, onnx_model.data, sample, spec)
        (folder / DOCUMENTATION_NAME).write_text(
            render_documentation(name=name, spec=spec, facts=facts, sample=sample, source=source), encoding="utf-8"
        )
        files = [
            WEIGHTS_NAME,
            TEST_INPUT_NAME,
            TEST_OUTPUT_NAME,
            SAMPLE_INPUT_NAME,
            SAMPLE_OUTPUT_NAME,
            COVER_NAME,
            DOCUMENTATION_NAME,
        ]
        rdf = build_rdf(
            spec=spec,
            spec_json=onnx_model.spec_json,
            facts=facts,
            sample=sample,
            source=source,
            options=options,
            hashes={f: _sha256(folder / f) for f in files},
            opset=onnx_model.opset,
            format_version=str(ModelDescr.implemented_format_version),
            parameter_count=onnx_model.parameter_count,
        )
        descr = build_offline(rdf, folder)
        if not isinstance(descr, ModelDescr):
            raise _invalid(f"the package of {model}", descr)
        spec_module.save_bioimageio_yaml_only(descr, folder / RDF_NAME)
        staged = Path(tmp) / "package.zip"
        _zip(folder, [RDF_NAME, *files], staged)
        with open_package(staged, rdf) as loaded:
            if not isinstance(loaded, ModelDescr):
                raise _invalid(f"the written package of {model}", loaded)
            if loaded.weights.onnx is None:  # not reachable: the description was built with them
                raise BmzError(f"the written package of {model} lost its ONNX weights")
            reproduction = reproduce_test_tensors(loaded, loaded.weights.onnx.get_reader().read())
            summary = loaded.validation_summary
        if not reproduction.passed:
            raise BmzError(f"the package of {model} is inconsistent: {reproduction.summary()}")
        _, warnings = summary_problems(summary)
        os.replace(staged, out)
    logger.info("wrote %s: %s, %s", out, summary.status, reproduction.summary())
    return ExportResult(
        path=out,
        name=name,
        spec=spec,
        status=str(summary.status),
        warnings=tuple(warnings),
        reproduction=reproduction,
        sample=sample,
        source=source,
        files=(RDF_NAME, *files),
    )
