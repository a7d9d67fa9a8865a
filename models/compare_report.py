"""The report folder of ``livedenoise compare``: ``report.html``, ``report.png``, ``results.json``, ``results.csv``.

``report.html`` is self-contained (inline CSS, the figure embedded as a base64 PNG, no script, no external
link), so it can be mailed or archived as one file. The figure is a montage of one frame for the raw movie,
the best classical filter and every method (the ground truth too, when given), on one grey scale, above the
traces of a few bright regions: the brightest local maxima of the mean frame, a small disk each, averaged per
frame. matplotlib (the ``train`` extra) is imported only when the figure is drawn, with the Agg backend.
"""

from __future__ import annotations

import base64
import csv
import html
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:
    from livedenoise.models.compare import CompareResult

__all__ = [
    "EstimateView",
    "Region",
    "format_table",
    "pick_regions",
    "region_traces",
    "table_rows",
    "write_report",
]


@dataclass(frozen=True)
class Region:
    """A disk of ``radius`` pixels centred on ``(y, x)``."""

    y: int
    x: int
    radius: int

    def mask(self, shape: tuple[int, int]) -> NDArray[np.bool_]:
        yy, xx = np.ogrid[: shape[0], : shape[1]]
        return np.asarray((yy - self.y) ** 2 + (xx - self.x) ** 2 <= self.radius**2)


@dataclass(frozen=True)
class EstimateView:
    """What the figure needs of one estimate: the montage frame and the regions' traces ``[regions, T]``."""

    name: str
    frame: NDArray[Any]
    traces: NDArray[np.float64]


def pick_regions(mean_frame: NDArray[Any], n: int = 4, radius: int | None = None) -> list[Region]:
    """The ``n`` brightest local maxima of the disk-averaged ``mean_frame``, at least two diameters apart.

    ``radius`` defaults to a 64th of the smaller side, within 1 to 4 pixels (about a cell body's size at the
    usual sampling). Maxima are taken greedily: the brightest disk, then the brightest one not overlapping a
    chosen disk's surround, and so on; fewer than ``n`` come back on a frame too small to hold them.
    """
    from scipy import ndimage

    frame = np.asarray(mean_frame, dtype=np.float64)
    h, w = frame.shape
    r = radius if radius is not None else int(min(4, max(1, min(h, w) // 64)))
    disk = Region(r, r, r).mask((2 * r + 1, 2 * r + 1)).astype(np.float64)
    smooth = ndimage.correlate(frame, disk / disk.sum(), mode="reflect")
    # keep disks inside the frame
    smooth[:r] = smooth[h - r :] = -np.inf
    smooth[:, :r] = smooth[:, w - r :] = -np.inf
    yy, xx = np.mgrid[:h, :w]
    regions: list[Region] = []
    while len(regions) < n and np.isfinite(smooth).any():
        y, x = (int(v) for v in np.unravel_index(int(np.argmax(smooth)), smooth.shape))
        regions.append(Region(y, x, r))
        smooth[(yy - y) ** 2 + (xx - x) ** 2 <= (4 * r + 1) ** 2] = -np.inf
    return regions


def region_traces(movie: NDArray[Any], regions: Sequence[Region]) -> NDArray[np.float64]:
    """Mean of each region per frame: ``[len(regions), T]``."""
    m = np.asarray(movie)
    out = np.empty((len(regions), m.shape[0]), dtype=np.float64)
    for i, region in enumerate(regions):
        out[i] = m[:, region.mask(m.shape[1:])].astype(np.float64).mean(axis=1)
    return out


# --------------------------------------------------------------------------- table

_COLUMNS = ("estimate", "family", "score (dB)", "best filter (dB)", "train (s)", "frames/s", "latency (frames)")


def _fmt(value: float | int | None, digits: int = 2, sign: bool = False) -> str:
    if value is None:
        return ""
    return f"{value:+.{digits}f}" if sign else f"{value:.{digits}f}"


def table_rows(result: CompareResult) -> tuple[list[str], list[list[str]]]:
    """Header and cells of the comparison table (the same for the terminal, the HTML and the CSV)."""
    header = list(_COLUMNS) + (["PSNR (dB)", "SSIM"] if result.has_clean else []) + ["note"]
    floor = result.filter_scores[result.best_filter]
    cells = []
    for row in result.rows:
        note = row.skipped or ""
        if row.kind == "filter":
            note = "best classical filter" if row.name == result.best_filter else "best filter within the latency limit"
        elif row.kind == "method" and row.score_db is not None:
            note = f"{row.score_db - floor:+.2f} dB vs best filter"
        if row.name == result.recommendation.name:
            note = f"RECOMMENDED; {note}"
        line = [
            row.name,
            row.family,
            _fmt(row.score_db, sign=True),
            _fmt(floor, sign=True) if row.kind == "method" else "",
            _fmt(row.train_s, 0),
            _fmt(row.frames_per_s, 1),
            "" if row.latency_frames is None else str(row.latency_frames),
        ]
        if result.has_clean:
            line += [_fmt(row.psnr_db), _fmt(row.ssim, 4)]
        cells.append([*line, note])
    return header, cells


def format_table(result: CompareResult) -> str:
    """The table as aligned plain text, then the recommendation."""
    header, cells = table_rows(result)
    widths = [max(len(c) for c in col) for col in zip(header, *cells)]
    lines = ["  ".join(c.ljust(wd) for c, wd in zip(line, widths)).rstrip() for line in [header, *cells]]
    lines.insert(1, "  ".join("-" * wd for wd in widths))
    return "\n".join(lines) + f"\n\nrecommendation: {result.recommendation.reason}"


# --------------------------------------------------------------------------- figure


def draw_figure(
    result: CompareResult,
    views: Sequence[EstimateView],
    regions: Sequence[Region],
    path: Path,
    frame_index: int,
    clean: EstimateView | None = None,
) -> None:
    """Montage (one frame of every estimate, one grey scale) above the bright regions' traces; PNG to ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Circle

    panels = ([clean] if clean is not None else []) + list(views)
    cols = min(len(panels), 5)
    rows = math.ceil(len(panels) / cols)
    n_traces = max(1, len(regions))
    fig = plt.figure(figsize=(3.0 * cols, 3.0 * rows + 1.6 * n_traces), constrained_layout=True)
    grid = fig.add_gridspec(rows + n_traces, cols, height_ratios=[3.0] * rows + [1.6] * n_traces)
    reference = (clean or views[0]).frame
    lo, hi = (float(v) for v in np.percentile(reference, [0.5, 99.8]))
    scores = {r.name: r for r in result.rows}
    for i, panel in enumerate(panels):
        ax = fig.add_subplot(grid[i // cols, i % cols])
        ax.imshow(panel.frame, cmap="gray", vmin=lo, vmax=hi if hi > lo else lo + 1, interpolation="nearest")
        row = scores.get(panel.name)
        score = "" if row is None or row.score_db is None else f"\n{row.score_db:+.2f} dB"
        mark = " (recommended)" if panel.name == result.recommendation.name else ""
        ax.set_title(f"{panel.name}{mark}{score}", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
        if panel.name == "raw":
            for k, region in enumerate(regions):
                ax.add_patch(Circle((region.x, region.y), region.radius + 0.5, fill=False, color="yellow", lw=1))
                ax.annotate(str(k + 1), (region.x + region.radius + 1, region.y), color="yellow", fontsize=8)
    fig.suptitle(f"{result.movie} {result.movie_shape}: even frame {frame_index} (models trained on the even frames)")
    for k in range(len(regions)):
        ax = fig.add_subplot(grid[rows + k, :])
        for panel in panels:
            style: dict[str, Any] = {"lw": 1.0}
            if panel.name == "raw":
                style = {"lw": 0.7, "color": "0.7"}
            elif panel is clean:
                style = {"lw": 1.6, "color": "black"}
            ax.plot(np.arange(panel.traces.shape[1]) * 2, panel.traces[k], label=panel.name, **style)
        ax.set_ylabel(f"region {k + 1}", fontsize=9)
        if k == 0:
            ax.legend(fontsize=7, ncol=min(6, len(panels)), loc="upper right")
    if regions:
        ax.set_xlabel("frame")
    fig.savefig(path, dpi=90)
    plt.close(fig)


# --------------------------------------------------------------------------- files

_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; max-width: 1400px; }
table { border-collapse: collapse; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: right; }
th { background: #f0f0f0; }
td:first-child, td:nth-child(2), td:last-child { text-align: left; }
tr.recommended { background: #e6f4e6; font-weight: bold; }
tr.skipped { color: #888; }
.recommendation { border-left: 4px solid #2a7; padding: 0.5em 1em; background: #f4fbf6; }
.warning { border-left-color: #d80; background: #fff8ec; }
img { max-width: 100%; }
"""


def _html(result: CompareResult, png: bytes) -> str:
    header, cells = table_rows(result)
    body = []
    for row, line in zip(result.rows, cells):
        cls = "recommended" if row.name == result.recommendation.name else "skipped" if row.skipped else ""
        body.append(f'<tr class="{cls}">' + "".join(f"<td>{html.escape(c)}</td>" for c in line) + "</tr>")
    rec = result.recommendation
    warn = " warning" if rec.filter_wins else ""
    budget = "each method's default" if result.time_budget_s is None else f"{result.time_budget_s:.0f} s in all"
    latency = "" if result.max_latency is None else f"; latency limit {result.max_latency} frames"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>livedenoise compare: {html.escape(result.movie)}</title>
<style>{_CSS}</style></head><body>
<h1>livedenoise compare: {html.escape(result.movie)}</h1>
<p>Movie {result.movie_shape[0]} frames of {result.movie_shape[1]}&times;{result.movie_shape[2]} ({result.movie_dtype}).
Each method was trained on the even frames and scored on the {result.frames_scored} even frames against the odd
frames (the held-out score: an estimate of the PSNR gain over the raw frames, in dB, no ground truth needed); the
classical filters were scored the same way. Training budget: {budget}{latency}. Run time {result.elapsed_s:.0f} s.</p>
<div class="recommendation{warn}"><strong>Recommendation: {html.escape(rec.name)}</strong>. {html.escape(rec.reason)}</div>
<h2>Scores</h2>
<table><thead><tr>{"".join(f"<th>{html.escape(h)}</th>" for h in header)}</tr></thead>
<tbody>{"".join(body)}</tbody></table>
<p>Score margins under 0.5 dB are within the score's random error on small movies. Latency: future frames an
estimate needs before it can be served.</p>
<h2>Montage and bright-region traces</h2>
<img alt="montage and traces" src="data:image/png;base64,{base64.b64encode(png).decode("ascii")}">
</body></html>
"""


def write_report(
    result: CompareResult,
    views: Sequence[EstimateView],
    regions: Sequence[Region],
    out_dir: str | Path,
    *,
    frame_index: int = 0,
    clean: EstimateView | None = None,
) -> dict[str, str]:
    """Write the four report files into ``out_dir``; returns ``{kind: file name}``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = {"html": "report.html", "png": "report.png", "json": "results.json", "csv": "results.csv"}
    draw_figure(result, views, regions, out / files["png"], frame_index, clean)
    (out / files["html"]).write_text(_html(result, (out / files["png"]).read_bytes()), encoding="utf-8")
    result.files = files
    data = result.to_dict()
    data["regions"] = [{"y": r.y, "x": r.x, "radius": r.radius} for r in regions]
    (out / files["json"]).write_text(json.dumps(data, indent=2), encoding="utf-8")
    header, cells = table_rows(result)
    with (out / files["csv"]).open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(cells)
    return files
