"""Compare methods on the user's own movie: train each within a budget, score all alike, recommend one.

The protocol is the real-recording protocol of ``benchmarks/quality.py`` (:mod:`livedenoise.models.heldout`):
split the movie into even frames ``A`` and odd frames ``B``; train each method on ``A`` only, denoise ``A``
through the serving engine and score ``D(A)`` against ``B`` (the held-out score, an estimate of the PSNR gain
over the raw frames in dB). The classical filters (:data:`livedenoise.models.metrics.CLASSICAL_FILTERS`) are
applied to the same ``A`` and scored the same way, so every row of the table is measured by one rule. With a
ground truth ``clean``, PSNR and SSIM of every estimate of ``A`` against ``clean``'s even frames are added.

Figures (montage, bright-region traces) show the same estimates of ``A``: the movie at half its frame rate,
denoised by the models trained on ``A``. No second model is trained on the whole movie, so the comparison
costs one training per method.

Time budget: with ``time_budget_s`` each method trains for its catalogue default
(``default_time_budget_s``) scaled by ``min(1, 0.8 * time_budget_s / sum of the defaults)`` over the methods
that suit the movie: the methods keep their relative budgets, training takes at most 80 % of the total and
the rest is left for export, denoising and scoring (on a large movie those can take longer). Without it every
method gets its full default, as ``livedenoise train`` would. A ``time_budget_s`` given for one method in
``overrides`` wins over the rule.
"""

from __future__ import annotations

import logging
import math
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from pydantic import ValidationError

from livedenoise.models.catalogue import list_methods, method_info
from livedenoise.models.config import TrainConfig
from livedenoise.models.data import check_movie, fit_training_window
from livedenoise.models.heldout import MIN_FRAMES, best_filter, heldout_gain_db, score_filters, split_even_odd
from livedenoise.models.trainer import TrainProgress
from livedenoise.models.validation import heldout_frame_count

__all__ = [
    "TRAINING_SHARE",
    "CompareProgress",
    "CompareResult",
    "EstimateRow",
    "Recommendation",
    "compare_methods",
    "filter_latency",
    "method_budgets",
    "recommend",
    "suitability",
]

logger = logging.getLogger(__name__)

TRAINING_SHARE: float = 0.8
"""Share of the comparison's time budget given to training; the rest is for export, denoising and scoring."""

CLOSE_DB: float = 0.5
"""Margins below this are within the held-out score's random error on small movies (models/heldout.py)."""


@dataclass
class EstimateRow:
    """One row of the comparison: the raw frames, a classical filter or a method."""

    name: str
    kind: str  # "raw" | "filter" | "method"
    family: str
    score_db: float | None = None  # held-out score: estimated PSNR gain over the raw frames
    latency_frames: int | None = None
    train_s: float | None = None
    frames_per_s: float | None = None
    budget_s: float | None = None
    psnr_db: float | None = None  # against the ground truth, when one is given
    ssim: float | None = None
    skipped: str | None = None  # why the method was not trained (the movie does not suit it, or it failed)
    model: str | None = None  # the ONNX model trained on the even frames, relative to the report folder


@dataclass(frozen=True)
class Recommendation:
    """The estimate to use and the sentence that says why."""

    name: str
    kind: str  # "method" | "filter"
    score_db: float
    reason: str
    filter_wins: bool


@dataclass
class CompareResult:
    """Everything the report shows; :meth:`to_dict` is JSON-able (``results.json``)."""

    movie: str
    movie_shape: tuple[int, int, int]
    movie_dtype: str
    frames_scored: int  # even frames scored (each against its odd neighbours)
    time_budget_s: float | None
    max_latency: int | None
    rows: list[EstimateRow]
    best_filter: str
    filter_scores: dict[str, float]
    recommendation: Recommendation
    has_clean: bool = False
    elapsed_s: float = 0.0
    files: dict[str, str] = field(default_factory=dict)

    @property
    def methods(self) -> list[EstimateRow]:
        return [r for r in self.rows if r.kind == "method"]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class CompareProgress:
    """A progress report: a method's stage (``skip``, ``train``, ``score``, ``done``) or its training step."""

    method: str
    index: int  # 1-based among the methods compared
    total: int
    stage: str
    message: str = ""
    train: TrainProgress | None = None


def filter_latency(name: str) -> int:
    """Future frames a classical filter of the bank reads: ``int(4 * sigma_t + 0.5)`` for a 3-D Gaussian
    (scipy's default truncation) and ``(n - 1) / 2`` for a centred moving average of ``n`` frames."""
    if m := re.fullmatch(r"gaussian_3d\(([\d.]+),.*\)", name):
        return int(4.0 * float(m.group(1)) + 0.5)
    if m := re.fullmatch(r"moving_average_(\d+)", name):
        return (int(m.group(1)) - 1) // 2
    raise ValueError(f"unknown classical filter {name!r}")


def suitability(config: TrainConfig, movie_shape: Sequence[int]) -> str | None:
    """Why ``config`` cannot train on the even frames of a movie of ``movie_shape``, or None when it can.

    Applies the trainer's own rules to the even frames less the frames the trainer holds out: the recipe's
    :class:`~livedenoise.models.recipes.base.TrainingWindow` (its minimum frames and spatial multiple).
    """
    from livedenoise.models.recipes import recipe_for

    t_len, h, w = (int(s) for s in movie_shape)
    t_even = t_len // 2
    try:
        held = heldout_frame_count(t_even, config.validation_frames, (h, w))
    except ValueError as exc:
        return str(exc)
    try:
        fit_training_window(recipe_for(config.method_config).training_window(), (t_even - held, h, w))
    except ValueError as exc:
        return f"{exc} (it trains on the {t_even} even frames of {t_len}, {held} of them held out)"
    return None


def method_budgets(configs: Mapping[str, TrainConfig], time_budget_s: float | None) -> dict[str, float | None]:
    """Each method's training seconds under the module's rule (None: the run is fixed by ``epochs`` alone).

    A method's explicit ``time_budget_s`` is kept and taken off the total; the others share what is left of
    ``TRAINING_SHARE * time_budget_s`` in proportion to their defaults (never more than the default, at least 1 s).
    """
    explicit = {m: c.time_budget_s for m, c in configs.items() if c.time_budget_s is not None}
    defaults = {m: type(c.method_config).default_time_budget_s for m, c in configs.items() if m not in explicit}
    scale = 1.0
    if time_budget_s is not None and defaults:
        left = TRAINING_SHARE * time_budget_s - sum(explicit.values())
        scale = min(1.0, max(left, 0.0) / sum(defaults.values()))
    out: dict[str, float | None] = {}
    for m, c in configs.items():
        if m in explicit:
            out[m] = explicit[m]
        elif c.epochs is not None and time_budget_s is None:
            out[m] = None
        else:
            out[m] = max(1.0, defaults[m] * scale)
    return out


def recommend(
    rows: Sequence[EstimateRow], filter_scores: Mapping[str, float], max_latency: int | None
) -> Recommendation:
    """The best-scoring method within ``max_latency`` frames, or the best filter when it beats them all.

    Filters count only when their own latency (:func:`filter_latency`) is within ``max_latency`` too.
    """
    methods = [r for r in rows if r.kind == "method" and r.score_db is not None and r.skipped is None]
    within = [r for r in methods if max_latency is None or (r.latency_frames or 0) <= max_latency]
    filters = {n: s for n, s in filter_scores.items() if max_latency is None or filter_latency(n) <= max_latency}
    limit = "" if max_latency is None else f" within {max_latency} frames of latency"
    left_out = sorted({r.name for r in methods} - {r.name for r in within})
    note = f" ({', '.join(left_out)} left out: latency above {max_latency} frames)" if left_out else ""
    fname, fscore = best_filter(filters) if filters else ("", -math.inf)
    if not within:
        if not filters:
            raise ValueError(
                f"no method and no classical filter was scored{limit}; raise --max-latency or compare other methods"
            )
        why = "no method was scored" + (limit if methods else "")
        return Recommendation(
            fname, "filter", fscore, f"{why}{note}: use the classical filter {fname} ({fscore:+.2f} dB).", True
        )
    best = max(within, key=lambda r: r.score_db or -math.inf)
    score = float(best.score_db or 0.0)
    if filters and fscore >= score:
        return Recommendation(
            fname,
            "filter",
            fscore,
            f"The classical filter {fname} ({fscore:+.2f} dB) beats every method{limit}: the best, {best.name}, "
            f"scores {score:+.2f} dB{note}. Use the filter, or train longer (--time-budget) or on a longer movie.",
            True,
        )
    margin = score - fscore
    against = f"{margin:.2f} dB above the best classical filter {fname}" if filters else "no filter qualifies"
    close = f" (less than {CLOSE_DB} dB: within the score's random error)" if filters and margin < CLOSE_DB else ""
    return Recommendation(
        best.name,
        "method",
        score,
        f"{best.name} has the best held-out score{limit}, {score:+.2f} dB, {against}{close}, "
        f"latency {best.latency_frames} frames{note}.",
        False,
    )


def _config(method: str, fields: Mapping[str, Any]) -> TrainConfig:
    """``TrainConfig`` for ``method``; pydantic's multi-line error becomes one line naming the method."""
    try:
        return TrainConfig(**{"method": method, **fields})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'] if p != 'method_config') or 'settings'}: {e['msg']}"
            for e in exc.errors()
        )
        raise ValueError(f"invalid settings for {method}: {problems}") from None


def compare_methods(
    movie: NDArray[Any],
    methods: Sequence[str] | None,
    time_budget_s: float | None,
    out_dir: str | Path,
    clean: NDArray[Any] | None = None,
    max_latency: int | None = None,
    progress: Callable[[CompareProgress], None] | None = None,
    *,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
    shared: Mapping[str, Any] | None = None,
    movie_name: str = "movie",
    provider: str = "cpu",
) -> CompareResult:
    """Train ``methods`` on the even frames of ``movie``, score them and the filters on the odd frames, and write
    the report folder ``out_dir`` (:func:`livedenoise.models.compare_report.write_report`).

    Parameters
    ----------
    movie : ``[T, H, W]`` noisy movie, any real dtype.
    methods : registered names; None: every method (those the movie does not suit are skipped, with the reason).
    time_budget_s : the whole comparison's seconds (module docstring for the rule); None: each method's default.
    out_dir : the report folder (created); the models trained on the even frames go to ``out_dir/models``.
    clean : ground truth of the same shape: adds PSNR and SSIM.
    max_latency : recommend only among estimates that need at most this many future frames.
    progress : called at each method's stages and training steps.
    overrides : ``{method: {field: value}}``: any TrainConfig or method field, per method.
    shared : ``{field: value}`` for every method (e.g. ``epochs``, ``seed``, ``device``).

    Raises
    ------
    ValueError
        A bad movie (fewer than 8 frames, wrong shape), ``clean`` of another shape, an unknown method or field,
        or overrides for a method not compared.
    """
    from livedenoise.models import compare_report, metrics
    from livedenoise.models.pipeline import train_and_export
    from livedenoise.server.engine.loader import load_engine
    from livedenoise.server.engine.offline import denoise_movie

    started = time.monotonic()
    movie = check_movie(movie)
    if movie.shape[0] < MIN_FRAMES:
        raise ValueError(f"movie has {movie.shape[0]} frames; compare needs at least {MIN_FRAMES} (4 even/odd pairs)")
    if clean is not None and np.shape(clean) != movie.shape:
        raise ValueError(f"clean movie has shape {np.shape(clean)} but the movie has shape {movie.shape}")
    names = list(methods) if methods else list_methods()
    for name in names:
        method_info(name)  # an unknown name: ValueError listing the known ones
    if len(set(names)) != len(names):
        raise ValueError(f"methods listed twice: {', '.join(sorted({n for n in names if names.count(n) > 1}))}")
    overrides = dict(overrides or {})
    stray = sorted(set(overrides) - set(names))
    if stray:
        raise ValueError(f"settings given for {', '.join(stray)}, which is not compared (methods: {', '.join(names)})")
    configs = {m: _config(m, {**dict(shared or {}), **dict(overrides.get(m, {}))}) for m in names}

    out = Path(out_dir)
    (out / "models").mkdir(parents=True, exist_ok=True)
    a, b = split_even_odd(movie.astype(np.float32, copy=False))
    clean_a = None if clean is None else np.asarray(clean, dtype=np.float32)[0 : 2 * a.shape[0] : 2]
    regions = compare_report.pick_regions(a.mean(axis=0))
    frame_index = a.shape[0] // 2
    views: list[compare_report.EstimateView] = []

    def view(name: str, estimate: NDArray[Any]) -> None:
        views.append(
            compare_report.EstimateView(name, estimate[frame_index], compare_report.region_traces(estimate, regions))
        )

    def scored(row: EstimateRow, estimate: NDArray[Any]) -> EstimateRow:
        if clean_a is not None:
            row.psnr_db, row.ssim = metrics.psnr(estimate, clean_a), metrics.ssim(estimate, clean_a)
        view(row.name, estimate)
        return row

    logger.info(
        "scoring %d classical filters on %d even frames of %s", len(metrics.CLASSICAL_FILTERS), len(a), movie.shape
    )
    filter_scores = score_filters(a, b)
    fname, fscore = best_filter(filter_scores)
    rows = [
        scored(EstimateRow("raw", "raw", "raw frames", score_db=0.0, latency_frames=0), a),
        scored(
            EstimateRow(fname, "filter", "classical filter", score_db=fscore, latency_frames=filter_latency(fname)),
            metrics.CLASSICAL_FILTERS[fname](a),
        ),
    ]

    if max_latency is not None:  # the filter a latency-bound lab could use, when the best one reads too far ahead
        fast = {n: v for n, v in filter_scores.items() if filter_latency(n) <= max_latency}
        if fast and (quick := best_filter(fast)[0]) != fname:
            quick_row = EstimateRow(
                quick, "filter", "classical filter", score_db=fast[quick], latency_frames=filter_latency(quick)
            )
            rows.append(scored(quick_row, metrics.CLASSICAL_FILTERS[quick](a)))

    reasons = {m: suitability(c, movie.shape) for m, c in configs.items()}
    fitting = {m: c for m, c in configs.items() if reasons[m] is None}
    budgets = method_budgets(fitting, time_budget_s)
    for index, name in enumerate(names, 1):
        config, info = configs[name], method_info(name)
        row = EstimateRow(name, "method", info.family, latency_frames=config.window().latency_frames)

        def report(stage: str, message: str = "", train: TrainProgress | None = None) -> None:
            if progress is not None:
                progress(CompareProgress(name, index, len(names), stage, message, train))  # noqa: B023

        if reasons[name] is not None:
            row.skipped = f"the movie does not suit it: {reasons[name]}"
            logger.warning("%s skipped: %s", name, row.skipped)
            report("skip", row.skipped)
            rows.append(row)
            continue
        row.budget_s = budgets[name]
        if row.budget_s is not None:
            config = TrainConfig(**{**config.to_json_dict(), "time_budget_s": row.budget_s})
        report("train", f"training on {len(a)} even frames" + (f" for {row.budget_s:.0f} s" if row.budget_s else ""))
        path = out / "models" / f"{name}.onnx"
        try:
            result, _ = train_and_export(a, config, path, progress=lambda p: report("train", "", p))
            report("score", "denoising the even frames")
            engine = load_engine(path, provider=provider, model_id=name, threads=0)
            try:
                t0 = time.perf_counter()
                denoised = denoise_movie(engine, a, batch_size=4)
                row.frames_per_s = len(a) / max(time.perf_counter() - t0, 1e-9)
            finally:
                engine.close()
        except (ValueError, RuntimeError) as exc:  # a method that cannot run here is a row, not a crash
            row.skipped = f"failed: {exc}"
            logger.warning("%s failed: %s", name, exc)
            report("skip", row.skipped)
            rows.append(row)
            continue
        row.train_s, row.model = result.elapsed_s, str(path.relative_to(out))
        row.score_db = heldout_gain_db(denoised, a, b)
        rows.append(scored(row, denoised))
        report("done", f"held-out score {row.score_db:+.2f} dB (best filter {fname} {fscore:+.2f} dB)")

    result_ = CompareResult(
        movie=movie_name,
        movie_shape=(int(movie.shape[0]), int(movie.shape[1]), int(movie.shape[2])),
        movie_dtype=str(movie.dtype),
        frames_scored=int(len(a)),
        time_budget_s=time_budget_s,
        max_latency=max_latency,
        rows=rows,
        best_filter=fname,
        filter_scores=filter_scores,
        recommendation=recommend(rows, filter_scores, max_latency),
        has_clean=clean is not None,
    )
    clean_view = None
    if clean_a is not None:
        clean_view = compare_report.EstimateView(
            "ground truth", clean_a[frame_index], compare_report.region_traces(clean_a, regions)
        )
    result_.elapsed_s = time.monotonic() - started
    result_.files = compare_report.write_report(
        result_, views, regions, out, frame_index=2 * frame_index, clean=clean_view
    )
    return result_
