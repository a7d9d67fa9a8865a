"""BioImage Model Zoo (bioimage.io) packages of livedenoise models: :func:`export_package` writes one,
:func:`import_package` checks one livedenoise wrote and gives back its ONNX model.

Needs the ``bmz`` extra (bioimageio.spec) and ONNX Runtime; importing this package imports neither (nor
torch), so a missing extra is reported when a package is written or read.
"""

from __future__ import annotations

from livedenoise.models.bmz._bioimageio import CONFIG_FORMAT, CONFIG_KEY, BmzError
from livedenoise.models.bmz.description import DEFAULT_LICENSE, PackageOptions
from livedenoise.models.bmz.importer import ImportResult, import_package
from livedenoise.models.bmz.package import ExportResult, export_package

__all__ = [
    "BmzError",
    "CONFIG_FORMAT",
    "CONFIG_KEY",
    "DEFAULT_LICENSE",
    "ExportResult",
    "ImportResult",
    "PackageOptions",
    "export_package",
    "import_package",
]
