"""The lazy import of ``bioimageio.spec`` (the ``bmz`` extra) and validation that never touches the network.

``bioimageio.spec`` checks a description's URLs (a HEAD request each) and GitHub user names over the network
whenever it performs "io checks", which are also what loads and checks the package's own files (hashes, test
tensor shapes, the sample images). A :class:`ValidationContext` with every URL of the description in
``known_files`` keeps those checks local: a known URL is never requested. Our descriptions name no GitHub
user, no zoo id and no linked resource (each of which would be looked up online), so nothing else goes out.
"""

from __future__ import annotations

import gc
import logging
import warnings
import zipfile
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bioimageio.spec import ValidationContext, ValidationSummary

__all__ = [
    "CONFIG_KEY",
    "CONFIG_FORMAT",
    "BmzError",
    "require_bioimageio",
    "offline_context",
    "urls_in",
    "open_package",
    "build_offline",
    "unclosed_files_collected",
    "summary_problems",
]

logger = logging.getLogger(__name__)

#: The ``config`` section of a package's RDF that marks it as exported by livedenoise.
CONFIG_KEY = "livedenoise"
#: Version of that section's layout (bumped on an incompatible change).
CONFIG_FORMAT = 1


class BmzError(ValueError):
    """A BioImage Model Zoo package cannot be written, read or validated; the message names the problem."""


def require_bioimageio() -> ModuleType:
    """``bioimageio.spec``, or an ImportError naming the ``livedenoise[bmz]`` extra."""
    try:
        import bioimageio.spec as spec
        from loguru import logger as loguru_logger
    except ImportError as exc:
        raise ImportError(
            "BioImage Model Zoo packages need bioimageio.spec: pip install 'livedenoise[bmz]'", name="bioimageio"
        ) from exc
    # bioimageio.spec logs through loguru and attributes some messages to its caller's module: keep them out
    # of our users' terminals (its validation summary, which we report, says what matters).
    loguru_logger.disable("livedenoise")
    return spec


def urls_in(content: Any) -> Iterator[str]:
    """Every ``http(s)://`` string anywhere in a (YAML-like) nested mapping/list."""
    if isinstance(content, str):
        if content.startswith(("http://", "https://")):
            yield content
    elif isinstance(content, Mapping):
        for value in content.values():
            yield from urls_in(value)
    elif isinstance(content, (list, tuple)):
        for value in content:
            yield from urls_in(value)


def offline_context(root: Path, urls: Iterable[str]) -> ValidationContext:
    """A validation context that checks the files under ``root`` (hashes, test tensors) and requests none of
    ``urls``."""
    spec = require_bioimageio()
    return spec.ValidationContext(
        root=root,
        perform_io_checks=True,
        known_files=dict.fromkeys(urls),
        log_warnings=False,
        progressbar=False,
        disable_cache=True,
    )


@contextmanager
def unclosed_files_collected() -> Iterator[None]:
    """Run bioimageio.spec calls that read a package's files.

    bioimageio.spec (0.5.14) opens those files and leaves closing them to the garbage collector, one
    ResourceWarning each, raised wherever the collector happens to run (under ``-W error``, in whatever code
    runs then). Here they are expected, so they are silenced and collected before leaving.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        try:
            yield
        finally:
            gc.collect()


def build_offline(content: Mapping[str, Any], root: Path) -> Any:
    """Build and validate the description ``content`` whose files lie in the folder ``root``, offline."""
    spec = require_bioimageio()
    with unclosed_files_collected():
        return spec.build_description(content, context=offline_context(root, urls_in(content)))


@contextmanager
def open_package(source: Path, content: Mapping[str, Any]) -> Iterator[Any]:
    """Load and fully validate the package at ``source`` (zip or folder) whose RDF is ``content``, offline.

    Every file is read and checked against its sha256, the test tensors against the axes; the URLs of
    ``content`` are taken as valid without a request. Yields the description (``ModelDescr`` or
    ``InvalidDescr``), whose ``validation_summary`` says what passed; its files can be read until the
    context ends (a zip is opened here and closed after, which bioimageio.spec would leave open).
    """
    spec = require_bioimageio()
    known = dict.fromkeys(urls_in(content))
    with unclosed_files_collected():
        if source.is_dir():
            yield spec.load_description(source, perform_io_checks=True, known_files=known, progressbar=False)
            return
        with zipfile.ZipFile(source) as archive:
            yield spec.load_description(archive, perform_io_checks=True, known_files=known, progressbar=False)


def summary_problems(summary: ValidationSummary) -> tuple[list[str], list[str]]:
    """The ``(errors, warnings)`` of a validation summary, one line each (``location: message``)."""
    errors: list[str] = []
    warnings: list[str] = []
    for detail in summary.details:
        for error in detail.errors:
            errors.append(f"{'.'.join(map(str, error.loc)) or detail.name}: {error.msg}")
        for warning in detail.warnings:
            warnings.append(f"{'.'.join(map(str, warning.loc)) or detail.name}: {warning.msg}")
    return errors, warnings
