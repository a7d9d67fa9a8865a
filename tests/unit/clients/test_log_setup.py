"""One logging setup for every process: level and format from the environment, file output, idempotent."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from livedenoise.clients.log_setup import configure_logging


@pytest.fixture(autouse=True)
def _restore_root() -> object:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
            handler.close()
    root.setLevel(level)


def test_json_lines_at_the_level_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIVEDENOISE_LOG_LEVEL", "WARNING")
    monkeypatch.setenv("LIVEDENOISE_LOG_FORMAT", "json")
    configure_logging(log_file=tmp_path / "x.log")
    configure_logging(log_file=tmp_path / "x.log")  # again: replaces its own handlers, does not add more
    log = logging.getLogger("livedenoise.test")
    log.info("not shown")
    log.warning("shown %d", 1)
    lines = (tmp_path / "x.log").read_text().splitlines()
    assert len(lines) == 1
    entry = json.loads(lines[0])
    assert entry["level"] == "WARNING" and entry["message"] == "shown 1" and entry["logger"] == "livedenoise.test"


def test_text_by_default_and_an_explicit_level_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIVEDENOISE_LOG_LEVEL", "ERROR")
    monkeypatch.delenv("LIVEDENOISE_LOG_FORMAT", raising=False)
    configure_logging("DEBUG", log_file=tmp_path / "y.log", rotate=False)
    logging.getLogger("livedenoise.test").debug("detail")
    assert "DEBUG" in (tmp_path / "y.log").read_text() and "detail" in (tmp_path / "y.log").read_text()
