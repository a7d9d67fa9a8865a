"""Read back a BioImage Model Zoo package that livedenoise exported, check it, and write its ONNX model.

Checks, in order, each failing with a message that names the problem: the package is a readable zip (every
member passes its CRC check) or a folder with an ``rdf.yaml``; its RDF has the ``config.livedenoise`` section
of a package livedenoise wrote (otherwise it is some other zoo model, which livedenoise cannot serve); it
validates with bioimageio.spec, offline (every file present and matching its sha256, test tensors matching the
axes); the ONNX weights' sha256 is the one the RDF records and their livedenoise metadata is, byte for byte,
the copy the RDF keeps; and the test input run through the description gives the test output. The ONNX file
is then written unchanged.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import tempfile
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from livedenoise.clients.model_spec import ModelSpec
from livedenoise.models.bmz._bioimageio import (
    CONFIG_FORMAT,
    CONFIG_KEY,
    BmzError,
    open_package,
    require_bioimageio,
    summary_problems,
)
from livedenoise.models.bmz.onnx_model import read_onnx_model
from livedenoise.models.bmz.reproduce import Reproduction, reproduce_test_tensors

__all__ = ["ImportResult", "import_package", "read_package_rdf"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ImportResult:
    """The ONNX model written from a package."""

    path: Path
    name: str  # the package's model name
    spec: ModelSpec
    sha256: str
    status: str  # bioimageio.spec's validation status of the package
    reproduction: Reproduction

    def summary(self) -> str:
        w = self.spec.window
        return "\n".join(
            [
                f"wrote {self.path} (sha256 {self.sha256[:16]}…): {self.name!r}, method {self.spec.method}, "
                f"window {w.before} + {w.out_frames} + {w.after}",
                f"package: bioimageio.spec {self.status}; weights' sha256 and livedenoise metadata as exported; "
                + self.reproduction.summary(),
            ]
        )


def _rdf_name(names: list[str], source: Path) -> str:
    from bioimageio.spec.utils import identify_bioimageio_yaml_file_name

    try:
        return str(identify_bioimageio_yaml_file_name(names))
    except ValueError:
        raise BmzError(
            f"{source} has no rdf.yaml (or bioimageio.yaml) at its top level: it is not a BioImage Model Zoo package"
        ) from None


def _referenced_files(content: Any, key: str = "") -> list[str]:
    """The package files an RDF names (``source`` entries, and ``documentation``/``covers`` given as plain
    strings), URLs left out."""
    found: list[str] = []
    if isinstance(content, str):
        if key in ("source", "documentation", "covers") and not content.startswith(("http://", "https://")):
            found.append(content)
    elif isinstance(content, Mapping):
        for k, value in content.items():
            if k != "config":
                found += _referenced_files(value, str(k))
    elif isinstance(content, list):
        for value in content:
            found += _referenced_files(value, key)
    return found


def _package_names(source: Path) -> set[str]:
    if source.is_dir():
        return {str(p.relative_to(source).as_posix()) for p in source.rglob("*") if p.is_file()}
    with zipfile.ZipFile(source) as archive:
        return set(archive.namelist())


def read_package_rdf(source: Path) -> dict[str, Any]:
    """The raw RDF mapping of the package at ``source`` (a zip or a folder), after checking the zip's members.

    Raises
    ------
    FileNotFoundError
        Nothing at ``source``.
    BmzError
        Not a zip or folder, a corrupt zip, no RDF, or an RDF that is not a YAML mapping.
    """
    require_bioimageio()
    from bioimageio.spec.utils import read_yaml

    if source.is_dir():
        text = (source / _rdf_name([p.name for p in source.iterdir() if p.is_file()], source)).read_text("utf-8")
    elif source.is_file():
        if not zipfile.is_zipfile(source):
            raise BmzError(f"{source} is not a zip archive (a corrupt or truncated download, or not a package)")
        try:
            with zipfile.ZipFile(source) as archive:
                bad = archive.testzip()
                if bad is not None:
                    raise BmzError(f"{source} is corrupt: its member {bad!r} fails its CRC check")
                text = archive.read(_rdf_name([n for n in archive.namelist() if "/" not in n], source)).decode("utf-8")
        except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, UnicodeDecodeError) as exc:
            raise BmzError(f"{source} is corrupt: {exc}") from None
    else:
        raise FileNotFoundError(f"no package at {source}")
    try:
        content = read_yaml(io.StringIO(text))
    except Exception as exc:  # the YAML library's own error types
        raise BmzError(f"the rdf.yaml of {source} is not valid YAML: {exc}") from None
    if not isinstance(content, dict):
        raise BmzError(f"the rdf.yaml of {source} is not a YAML mapping")
    return {str(key): value for key, value in content.items()}


def _livedenoise_config(content: Mapping[str, Any], source: Path) -> dict[str, Any]:
    config = content.get("config")
    section = config.get(CONFIG_KEY) if isinstance(config, Mapping) else None
    if not isinstance(section, dict):
        kind = f"{content.get('type', 'resource')} {content.get('name', '')!r}".strip()
        raise BmzError(
            f"{source} was not exported by livedenoise: its rdf.yaml ({kind}) has no config.{CONFIG_KEY} section. "
            "import-bmz reads the packages `livedenoise export-bmz` writes; run other zoo models with their own "
            "tools (e.g. bioimageio.core)"
        )
    if section.get("format") != CONFIG_FORMAT:
        raise BmzError(
            f"{source}: config.{CONFIG_KEY} has format {section.get('format')!r}; this livedenoise reads format "
            f"{CONFIG_FORMAT} (export the package again with this version)"
        )
    if not isinstance(section.get("spec_json"), str):
        raise BmzError(f"{source}: config.{CONFIG_KEY} lacks the model's spec (spec_json); the package was altered")
    return section


def import_package(source: str | Path, out: str | Path) -> ImportResult:
    """Check the package at ``source`` (zip or folder) and write its ONNX model to ``out``.

    Raises
    ------
    FileNotFoundError
        Nothing at ``source``.
    BmzError
        Any check above fails (the message names which and why).
    ImportError
        bioimageio.spec (the ``bmz`` extra), onnxruntime or onnx is missing.
    """
    from bioimageio.spec.model.v0_5 import ModelDescr

    source, out = Path(source), Path(out)
    if out.is_dir():
        raise BmzError(f"{out} is a folder; name the ONNX file to write")
    content = read_package_rdf(source)
    section = _livedenoise_config(content, source)
    names = _package_names(source)
    missing = [f for f in dict.fromkeys(_referenced_files(content)) if f.removeprefix("./") not in names]
    if missing:
        raise BmzError(f"{source} is missing {', '.join(missing)}, which its rdf.yaml names (an incomplete package)")
    with open_package(source, content) as descr:
        if not isinstance(descr, ModelDescr):
            errors, _ = summary_problems(descr.validation_summary)
            raise BmzError(f"{source} does not validate as a BioImage Model Zoo model:\n  " + "\n  ".join(errors))
        weights = descr.weights.onnx
        if weights is None:
            raise BmzError(f"{source} has no ONNX weights (livedenoise packages carry weights.onnx)")
        data = weights.get_reader().read()
        sha256 = hashlib.sha256(data).hexdigest()
        if weights.sha256 is None or str(weights.sha256) != sha256:
            raise BmzError(
                f"{source}: the ONNX weights' sha256 ({sha256}) is not the one rdf.yaml records ({weights.sha256})"
            )
        model = read_onnx_model(data, f"the weights of {source}")
        if model.spec_json != section["spec_json"]:
            raise BmzError(
                f"{source}: the ONNX file's livedenoise metadata differs from the copy rdf.yaml keeps "
                f"(config.{CONFIG_KEY}.spec_json); the weights were changed after export"
            )
        reproduction = reproduce_test_tensors(descr, data)
        name, status = str(descr.name), str(descr.validation_summary.status)
    if not reproduction.passed:
        raise BmzError(f"{source}: {reproduction.summary()}")
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, staged = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(staged, out)
    except BaseException:
        Path(staged).unlink(missing_ok=True)
        raise
    logger.info("imported %s from %s", out, source)
    return ImportResult(
        path=out,
        name=name,
        spec=model.spec,
        sha256=sha256,
        status=status,
        reproduction=reproduction,
    )
