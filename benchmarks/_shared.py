"""Helpers the benchmark scripts share: timing a call, and writing one table as Markdown and CSV.

The scripts run as ``python benchmarks/<name>.py``, so this module is imported by name from their folder.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["Column", "best_rate", "sustained_rate", "markdown_table", "write_table"]

# (title in the Markdown table, key in the row and the CSV, format of the Markdown cell)
Column = tuple[str, str, str]


def best_rate(run: Callable[[], object], seconds: float = 2.0, *, warm_up: bool = True) -> float:
    """Calls per second of ``run``: the best of repeated timings after a warm-up (noise only slows a machine).

    ``warm_up=False`` skips the untimed first call, for a ``run`` whose runtime is already warm: a slow call is then
    timed once instead of twice.
    """
    if warm_up:
        run()
    best = float("inf")
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline or best == float("inf"):
        t0 = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - t0)
    return 1.0 / best


def sustained_rate(run: Callable[[], object], seconds: float = 1.0, *, warm_up: bool = True) -> float:
    """Calls per second of ``run`` called back to back for ``seconds`` (at least once) after a warm-up: the rate a
    stream sees, which a CPU's turbo and AMX clocks make lower than its best single call."""
    if warm_up:
        run()
    calls = 0
    t0 = time.perf_counter()
    while True:
        run()
        calls += 1
        elapsed = time.perf_counter() - t0
        if elapsed >= seconds:
            return calls / elapsed


def markdown_table(header: str, columns: Sequence[Column], rows: Sequence[Mapping[str, Any]]) -> str:
    """``header``, a blank line and the rows as a Markdown table (cells formatted by each column's format)."""
    lines = [
        "| " + " | ".join(c[0] for c in columns) + " |",
        "|" + "---|" * len(columns),
        *("| " + " | ".join(fmt.format(row[key]) for _, key, fmt in columns) + " |" for row in rows),
    ]
    return header + "\n\n" + "\n".join(lines)


def write_table(
    stem: Path,
    text: str,
    rows: Sequence[Mapping[str, Any]],
    fields: Sequence[str],
) -> None:
    """Write ``text`` (the Markdown table) to ``stem.md`` and ``fields`` of every row, unformatted, to ``stem.csv``."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    stem.with_suffix(".md").write_text(text + "\n")
    with stem.with_suffix(".csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(fields))
        writer.writeheader()
        writer.writerows({name: row[name] for name in fields} for row in rows)
