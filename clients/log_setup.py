"""One way to configure logging, for every livedenoise process: CLI, server, ingest process and training jobs.

Level: the argument, else ``LIVEDENOISE_LOG_LEVEL``, else INFO. Format: text, or one JSON object per line with
``LIVEDENOISE_LOG_FORMAT=json`` (for log collectors on servers). Records go to stderr and, when a file is given,
to that file too (rotated at 10 MB for long-running servers).
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import os
import sys
from pathlib import Path

__all__ = ["configure_logging", "JsonFormatter"]

TEXT_FORMAT = "%(asctime)s %(levelname)s [%(processName)s] %(name)s: %(message)s"
_MARK = "_livedenoise_handler"


class JsonFormatter(logging.Formatter):
    """``{"time", "level", "process", "logger", "message"[, "exception"]}`` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "process": record.processName,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(
    level: str | int | None = None,
    *,
    log_file: Path | None = None,
    rotate: bool = True,
    json_format: bool | None = None,
) -> None:
    """Configure the root logger of this process; replaces what an earlier call installed, and leaves handlers
    others installed (a test runner's capture) alone."""
    chosen = level if level is not None else os.environ.get("LIVEDENOISE_LOG_LEVEL", "INFO")
    as_json = json_format if json_format is not None else os.environ.get("LIVEDENOISE_LOG_FORMAT", "").lower() == "json"
    formatter: logging.Formatter = JsonFormatter() if as_json else logging.Formatter(TEXT_FORMAT)
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        if rotate:
            handlers.append(
                logging.handlers.RotatingFileHandler(
                    log_file, maxBytes=10 * 1024 * 1024, backupCount=3, encoding="utf-8"
                )
            )
        else:
            handlers.append(logging.FileHandler(log_file, encoding="utf-8"))
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, _MARK, False):
            root.removeHandler(old)
            old.close()
    for handler in handlers:
        handler.setFormatter(formatter)
        setattr(handler, _MARK, True)
        root.addHandler(handler)
    root.setLevel(chosen.upper() if isinstance(chosen, str) else chosen)
    # Status polling would otherwise drown a server's log in access lines.
    logging.getLogger("uvicorn.access").setLevel(logging.INFO if root.level <= logging.DEBUG else logging.WARNING)
