"""A dependency-free progress bar for the command line (stderr; one line per update when not a TTY)."""

from __future__ import annotations

import sys
import time
from typing import TextIO

__all__ = ["ProgressBar"]


class ProgressBar:
    """``bar.update(fraction, note)``; redraws in place on a terminal, logs at most every ~10% otherwise."""

    def __init__(self, label: str, *, stream: TextIO | None = None, width: int = 30) -> None:
        self.label = label
        self.stream = stream or sys.stderr
        self.width = width
        self._tty = self.stream.isatty()
        self._last_decile = -1
        self._t0 = time.monotonic()

    def update(self, fraction: float, note: str = "") -> None:
        fraction = min(max(fraction, 0.0), 1.0)
        elapsed = time.monotonic() - self._t0
        if self._tty:
            filled = int(round(self.width * fraction))
            bar = "#" * filled + "-" * (self.width - filled)
            self.stream.write(f"\r{self.label} [{bar}] {100 * fraction:5.1f}% {elapsed:6.1f}s {note}\x1b[K")
            self.stream.flush()
            return
        decile = int(fraction * 10)
        if decile > self._last_decile:
            self._last_decile = decile
            self.stream.write(f"{self.label}: {100 * fraction:5.1f}% {elapsed:6.1f}s {note}\n")
            self.stream.flush()

    def close(self, note: str = "") -> None:
        if self._tty:
            self.update(1.0, note)
            self.stream.write("\n")
            self.stream.flush()
        elif self._last_decile < 10:
            self.update(1.0, note)
