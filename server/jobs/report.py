"""A comparison's report folder as one zip archive, built once beside the folder and then reused."""

from __future__ import annotations

import logging
import os
import uuid
import zipfile
from pathlib import Path

__all__ = ["zip_folder"]

logger = logging.getLogger(__name__)


def zip_folder(folder: Path, root: str) -> Path:
    """``folder.zip`` beside ``folder``, every file under ``root/`` in the archive; built at the first call.

    Written to a temporary name and renamed, so concurrent downloads never see half an archive (two first
    downloads may both build it; the second rename wins with identical content).
    """
    target = folder.with_name(f"{folder.name}.zip")
    if target.is_file():
        return target
    tmp = folder.with_name(f".{folder.name}.{uuid.uuid4().hex}.zip.tmp")
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for path in sorted(folder.rglob("*")):
                if path.is_file() and not path.is_symlink():
                    archive.write(path, f"{root}/{path.relative_to(folder).as_posix()}")
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    logger.info("zipped report %s (%d bytes)", folder, target.stat().st_size)
    return target
