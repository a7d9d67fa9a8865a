"""ControlClient's comparison helpers against a real control plane: submit, progress, result, the report page
and its folder, and the server's named errors for jobs without a report."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from livedenoise.clients.control import ControlClient, ControlError, JobInfo

# One tiny method, as in test_api_compare_jobs.py: one training step, a few seconds.
SHARED = {"epochs": 1, "patches_per_epoch": 2, "batch_size": 1, "device": "cpu"}
OVERRIDES = {"deepcad_rt": {"patch_t": 8, "patch_xy": 16, "base_channels": 4, "levels": 2}}


@pytest.mark.slow
def test_comparison_through_the_client(
    client: ControlClient, tiny_movie: str, tiny_config: dict[str, Any], tmp_path: Path
) -> None:
    trained = client.submit_job("deepcad_rt", tiny_movie, tiny_config)
    try:
        for fetch in (client.compare_report, lambda job_id: client.download_compare_report(job_id, tmp_path / "t")):
            with pytest.raises(ControlError, match="is a train job; only compare jobs have a report") as info:
                fetch(trained.id)
            assert (info.value.code, info.value.status) == ("no_report", 404)
        assert not (tmp_path / "t").exists()
    finally:
        client.cancel_job(trained.id)

    job = client.submit_compare(tiny_movie, ["deepcad_rt"], SHARED, overrides=OVERRIDES, max_latency=3)

    assert (job.kind, job.method, job.result) == ("compare", "deepcad_rt", None)
    assert job.config["overrides"] == OVERRIDES
    with pytest.raises(ControlError, match="its report is there once it has succeeded") as info:
        client.compare_report(job.id)
    assert (info.value.code, info.value.status) == ("no_report", 409)
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + 180
    while not (job := client.job(job.id)).done:
        assert time.monotonic() < deadline, "the comparison did not finish in 180 s"
        if job.progress_detail:
            seen.append(job.progress_detail)
        time.sleep(0.05)

    assert job.state == "succeeded", (job.error, client.job_logs(job.id))
    assert isinstance(job, JobInfo) and job.progress == 1.0
    assert seen and all(d["method"] == "deepcad_rt" and d["total"] == 1 for d in seen)
    assert job.result is not None and job.result["max_latency"] == 3
    assert {r["name"] for r in job.result["rows"] if r["kind"] == "method"} == {"deepcad_rt"}
    page = client.compare_report(job.id)
    assert page.lstrip().lower().startswith("<!doctype html") and job.result["recommendation"]["name"] in page

    folder = client.download_compare_report(job.id, tmp_path / "out")

    assert folder == tmp_path / "out" / f"{job.id}-compare"
    assert {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()} == {
        "report.html", "report.png", "results.json", "results.csv", "models/deepcad_rt.onnx"
    }  # fmt: skip
    assert json.loads((folder / "results.json").read_text(encoding="utf-8")) == job.result
    assert (folder / "report.html").read_text(encoding="utf-8") == page
