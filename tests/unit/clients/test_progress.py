"""The command line's progress: a tqdm bar on a terminal, plain lines (one per tenth) elsewhere."""

from __future__ import annotations

import io

from livedenoise.clients.progress import ProgressBar


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_plain_lines_off_a_terminal() -> None:
    out = io.StringIO()
    bar = ProgressBar("train", stream=out)
    for i in range(101):
        bar.update(i / 100, f"epoch {i}")
    bar.close()
    lines = out.getvalue().splitlines()
    assert len(lines) == 11  # 0 %, 10 %, ..., 100 %
    assert lines[0].startswith("train:   0.0%") and lines[-1].startswith("train: 100.0%")
    assert "\r" not in out.getvalue() and "\x1b" not in out.getvalue()


def test_a_tqdm_bar_on_a_terminal_ends_full_with_its_note() -> None:
    out = Terminal()
    bar = ProgressBar("denoise", stream=out)
    for i in range(50):
        bar.update(i / 100, "frame")
    bar.close("done")
    text = out.getvalue()
    assert "\r" in text  # redrawn in place
    final = text.rsplit("\r", 1)[-1]
    assert final.startswith("denoise 100.0%|") and "done" in final


def test_a_closed_bar_without_updates_still_reports_the_end() -> None:
    out = io.StringIO()
    ProgressBar("stream", stream=out).close()
    assert out.getvalue().startswith("stream: 100.0%")
