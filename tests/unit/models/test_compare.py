"""`compare`: the skip rule, the budget rule, the recommendation and the report folder (no training here)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from livedenoise.models.compare import (
    EstimateRow,
    compare_methods,
    filter_latency,
    method_budgets,
    recommend,
    suitability,
)
from livedenoise.models.compare_report import pick_regions, region_traces
from livedenoise.models.config import TrainConfig
from livedenoise.models.synthetic import simulate_calcium_movie


def _method(name: str, score: float | None, latency: int, skipped: str | None = None) -> EstimateRow:
    return EstimateRow(name, "method", "family", score_db=score, latency_frames=latency, skipped=skipped)


FILTERS = {"gaussian_3d(3,1,1)": 10.0, "gaussian_3d(0.5,1,1)": 6.0, "moving_average_3": 5.0}


def test_a_series_shorter_than_the_window_is_skipped_with_the_minimum() -> None:
    config = TrainConfig(method="srdtrans")  # patch_t 32: its stacks are never shortened nor mirrored
    reason = suitability(config, (40, 64, 64))  # 20 even frames
    assert reason is not None and "at least 32" in reason and "20 even frames" in reason
    assert suitability(config, (80, 64, 64)) is None


def test_a_frame_smaller_than_the_network_multiple_is_skipped() -> None:
    reason = suitability(TrainConfig(method="deepcad_rt"), (40, 3, 40))
    assert reason is not None and "pixels" in reason


def test_filter_latency_reads_the_future_frames_each_filter_needs() -> None:
    assert filter_latency("gaussian_3d(3,1,1)") == 12  # scipy truncates at 4 sigma
    assert filter_latency("gaussian_3d(0.5,1.5,1.5)") == 2
    assert filter_latency("moving_average_7") == 3


def test_budgets_scale_the_defaults_to_the_total_and_keep_explicit_ones() -> None:
    configs = {m: TrainConfig(method=m) for m in ("deepcad_rt", "support")}
    defaults = {m: type(c.method_config).default_time_budget_s for m, c in configs.items()}
    assert method_budgets(configs, None) == defaults
    scaled = method_budgets(configs, 100.0)
    assert sum(scaled.values()) == pytest.approx(80.0)  # 80 % of the total goes to training
    assert scaled["deepcad_rt"] / scaled["support"] == pytest.approx(defaults["deepcad_rt"] / defaults["support"])
    assert method_budgets(configs, 1e6) == defaults  # never more than the default
    mixed = {**configs, "support": TrainConfig(method="support", time_budget_s=30)}
    assert method_budgets(mixed, 100.0) == {"deepcad_rt": pytest.approx(50.0), "support": 30}


def test_recommends_the_best_method_and_says_by_how_much() -> None:
    rows = [_method("a", 12.0, 3), _method("b", 11.0, 0), _method("c", None, 0, skipped="too short")]
    rec = recommend(rows, FILTERS, None)
    assert (rec.name, rec.kind, rec.filter_wins) == ("a", "method", False)
    assert "2.00 dB above the best classical filter gaussian_3d(3,1,1)" in rec.reason


def test_the_latency_limit_excludes_slow_methods_and_slow_filters() -> None:
    rows = [_method("a", 12.0, 3), _method("b", 7.0, 0)]
    rec = recommend(rows, FILTERS, 2)
    assert rec.name == "b" and "within 2 frames of latency" in rec.reason and "a left out" in rec.reason
    assert "1.00 dB above the best classical filter gaussian_3d(0.5,1,1)" in rec.reason  # sigma_t 3 needs 12
    assert recommend(rows, FILTERS, 1).reason.count("moving_average_3") == 1  # sigma_t 0.5 needs 2


def test_says_plainly_when_a_filter_beats_every_method() -> None:
    rec = recommend([_method("a", 9.5, 3), _method("b", 4.0, 0)], FILTERS, None)
    assert (rec.name, rec.kind, rec.filter_wins) == ("gaussian_3d(3,1,1)", "filter", True)
    assert "beats every method" in rec.reason
    only_skipped = recommend([_method("a", None, 0, skipped="too short")], FILTERS, None)
    assert only_skipped.kind == "filter" and "no method was scored" in only_skipped.reason


def test_regions_are_the_brightest_separate_disks() -> None:
    frame = np.zeros((40, 50))
    for y, x, v in ((10, 10, 5.0), (30, 40, 9.0), (11, 12, 4.0)):
        frame[y - 1 : y + 2, x - 1 : x + 2] = v
    regions = pick_regions(frame, n=2, radius=1)
    assert [(r.y, r.x) for r in regions] == [(30, 40), (10, 10)]
    traces = region_traces(np.stack([frame, 2 * frame]), regions)
    assert traces.shape == (2, 2) and traces[0, 1] == pytest.approx(2 * traces[0, 0])


@pytest.fixture(scope="module")
def short_report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    movie = simulate_calcium_movie(frames=40, size=(23, 31), seed=2, photons=4.0)
    out = tmp_path_factory.mktemp("compare")
    result = compare_methods(movie.noisy, ["srdtrans"], None, out, clean=movie.clean)
    return out, result


def test_a_too_short_movie_skips_the_method_and_recommends_a_filter(short_report: tuple[Path, object]) -> None:
    _, result = short_report
    row = next(r for r in result.rows if r.name == "srdtrans")  # type: ignore[attr-defined]
    assert row.skipped is not None and "at least 32" in row.skipped and row.score_db is None
    assert result.recommendation.kind == "filter"  # type: ignore[attr-defined]


def test_the_report_folder_holds_a_self_contained_html_and_the_tables(short_report: tuple[Path, object]) -> None:
    out, _ = short_report
    assert {"report.html", "report.png", "results.json", "results.csv"} <= {p.name for p in out.iterdir()}
    page = (out / "report.html").read_text()
    assert "data:image/png;base64," in page and "<style>" in page
    assert not re.search(r"<script|<link|src=\"http|href=\"http|url\(", page)  # nothing fetched from elsewhere
    data = json.loads((out / "results.json").read_text())
    assert data["recommendation"]["filter_wins"] is True and data["has_clean"] is True
    assert {r["kind"] for r in data["rows"]} == {"raw", "filter", "method"}
    assert all(r["psnr_db"] is not None for r in data["rows"] if r["kind"] != "method")
    header = (out / "results.csv").read_text().splitlines()[0]
    assert header.startswith("estimate,family,score (dB)") and "PSNR (dB)" in header


def test_bad_inputs_are_refused_before_any_training(tmp_path: Path) -> None:
    movie = np.random.default_rng(0).poisson(5, (16, 20, 20)).astype(np.uint8)
    with pytest.raises(ValueError, match="clean movie has shape"):
        compare_methods(movie, ["deepcad_rt"], None, tmp_path, clean=movie[:8])
    with pytest.raises(ValueError, match="unknown method 'nope'"):
        compare_methods(movie, ["nope"], None, tmp_path)
    with pytest.raises(ValueError, match="at least 8"):
        compare_methods(movie[:6], ["deepcad_rt"], None, tmp_path)
    with pytest.raises(ValueError, match="invalid settings for deepcad_rt: .*patch_xy"):
        compare_methods(movie, ["deepcad_rt"], None, tmp_path, overrides={"deepcad_rt": {"patch_xy": 30}})
    with pytest.raises(ValueError, match="not compared"):
        compare_methods(movie, ["deepcad_rt"], None, tmp_path, overrides={"support": {"bs_size": 3}})
