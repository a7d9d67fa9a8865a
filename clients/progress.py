"""Progress of long command-line work on stderr: a tqdm bar on a terminal, plain lines otherwise (logs, CI, pipes)."""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

from tqdm import tqdm

__all__ = ["ProgressBar"]

# The bar counts in thousandths: callers report fractions, tqdm wants integer steps.
_STEPS = 1000


class ProgressBar:
    """``bar.update(fraction, note)`` then ``bar.close()``.

    On a terminal it is a tqdm bar (percentage, elapsed and remaining time, the note), redrawn at most ten times a
    second however often it is updated. Elsewhere it writes one plain line per tenth of the work, so a log file
    or a CI transcript shows progress without control characters.
    """

    def __init__(self, label: str, *, stream: TextIO | None = None, width: int = 30) -> None:
        self.label = label
        self.stream = stream or sys.stderr
        self._tty = self.stream.isatty()
        self._last_decile = -1
        self._t0 = time.monotonic()
        self._bar: Any = None  # tqdm, typed loosely: the package ships no type information
        if self._tty:
            self._bar = tqdm(
                total=_STEPS,
                desc=label,
                file=self.stream,
                ncols=None if width <= 0 else 60 + width,
                bar_format="{desc} {percentage:5.1f}%|{bar}| [{elapsed}<{remaining}] {postfix}",
                mininterval=0.1,
                leave=True,
            )

    def update(self, fraction: float, note: str = "") -> None:
        fraction = min(max(fraction, 0.0), 1.0)
        if self._bar is not None:
            steps = int(round(_STEPS * fraction))
            if note:
                self._bar.set_postfix_str(note, refresh=False)
            if steps > self._bar.n:
                self._bar.update(steps - self._bar.n)  # tqdm throttles the redraw itself
            return
        decile = int(fraction * 10)
        if decile > self._last_decile:
            self._last_decile = decile
            elapsed = time.monotonic() - self._t0
            self.stream.write(f"{self.label}: {100 * fraction:5.1f}% {elapsed:6.1f}s {note}\n")
            self.stream.flush()

    def close(self, note: str = "") -> None:
        if self._bar is not None:
            if self._bar.n < _STEPS:
                self._bar.update(_STEPS - self._bar.n)
            if note:
                self._bar.set_postfix_str(note, refresh=False)
            self._bar.close()
            return
        if self._last_decile < 10:
            self.update(1.0, note)
