"""Comparison jobs through the REST API: validation at submit, a real tiny comparison in a subprocess with its
progress, result and downloadable report, and cancel."""

from __future__ import annotations

import io
import json
import time
import zipfile
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

# Two tiny methods (tests/e2e/test_methods_end_to_end.py TINY): one training step each, a few seconds in all.
SHARED = {"epochs": 1, "patches_per_epoch": 2, "batch_size": 1, "device": "cpu"}
OVERRIDES = {
    "deepcad_rt": {"patch_t": 8, "patch_xy": 16, "base_channels": 4, "levels": 2},
    "sn2n": {"base_channels": 4, "levels": 3, "patch_xy": 16},
}


def _compare(data: str, **fields: Any) -> dict[str, Any]:
    return {"kind": "compare", "data": data, **fields}


def _jobs(server: str) -> list[dict[str, Any]]:
    return httpx.get(f"{server}/v1/jobs").json()["jobs"]


@pytest.mark.parametrize(
    ("fields", "status", "named"),
    [
        ({"methods": ["deepcad_rt", "n2v"]}, 422, "field 'methods': unknown method 'n2v'; known methods: deepcad"),
        ({"methods": ["ted", "ted"]}, 422, "field 'methods' lists ted twice"),
        (
            {"methods": ["deepcad_rt"], "config": {"epochs": 0}},
            422,
            "epochs: Input should be greater than or equal to 1",
        ),
        (
            {"methods": ["deepcad_rt", "support"], "overrides": {"support": {"bs_size": 2}}},
            422,
            "invalid training config for method 'support': bs_size: bs_size=2 must be odd",
        ),
        ({"methods": ["support"], "config": {"patch_t": 16}}, 422, "unknown field(s) 'patch_t' for method 'support'"),
        (
            {"methods": ["ted"], "overrides": {"sn2n": {"levels": 2}}},
            422,
            "'overrides' sets sn2n, which is not compared",
        ),
        ({"methods": ["ted"], "config": {"method": "sn2n"}}, 422, "field 'config' may not set ['method']"),
        ({"time_budget_s": 0}, 422, "time_budget_s: Input should be greater than 0"),
        ({"max_latency": -1}, 422, "max_latency: Input should be greater than or equal to 0"),
        ({"methods": ["ted"], "clean": "movies/missing.npy"}, 422, "'movies/missing.npy' does not exist"),
        ({"methods": ["ted"], "activate": True}, 422, "field(s) activate belong to train jobs"),
        ({"methods": ["ted"], "time_budget_s": 1e9}, 422, "above 0 and at most this server's job limit"),
    ],
)
def test_bad_compare_request_is_refused_at_submit(
    server: str, tiny_movie: str, fields: dict[str, Any], status: int, named: str
) -> None:
    """Methods and every method's fields are checked at submit: a 4xx naming the problem, and no job."""
    response = httpx.post(f"{server}/v1/jobs", json=_compare(tiny_movie, **fields))

    assert response.status_code == status, response.text
    assert named in response.json()["error"]["message"]
    assert _jobs(server) == []


def test_train_fields_on_their_own_kind(server: str, tiny_movie: str) -> None:
    """A request without ``kind`` is a train job as before; compare fields on it are refused."""
    response = httpx.post(f"{server}/v1/jobs", json={"data": tiny_movie, "methods": ["ted"], "method": "ted"})
    assert response.status_code == 422 and "field(s) methods belong to compare jobs" in response.text
    response = httpx.post(f"{server}/v1/jobs", json={"data": tiny_movie})
    assert response.status_code == 422 and "field 'method' is required for a train job" in response.text
    assert httpx.get(f"{server}/v1/jobs/j-000000000000/report").json()["error"]["code"] == "unknown_job"


@pytest.mark.slow
def test_tiny_comparison_end_to_end(server: str, settings, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    t, y, x = np.meshgrid(np.arange(24), np.arange(32), np.arange(32), indexing="ij")
    clean = 200 + 150 * np.exp(-((y - 16) ** 2 + (x - 12 - t / 4) ** 2) / 20)
    source = tmp_path / "cells.npy"
    np.save(source, rng.poisson(clean).astype(np.uint16))
    with source.open("rb") as fh:
        data = httpx.post(f"{server}/v1/data", files={"file": ("cells.npy", fh)}).json()["id"]
    body = _compare(data, methods=["deepcad_rt", "sn2n"], config=SHARED, overrides=OVERRIDES, max_latency=3)

    response = httpx.post(f"{server}/v1/jobs", json=body)

    assert response.status_code == 201, response.text
    job = response.json()
    assert job["kind"] == "compare" and job["method"] == "deepcad_rt,sn2n" and job["result"] is None
    assert job["config"]["methods"] == ["deepcad_rt", "sn2n"] and job["config"]["overrides"] == OVERRIDES
    early = httpx.get(f"{server}/v1/jobs/{job['id']}/report")
    assert early.status_code == 409 and early.json()["error"]["code"] == "no_report"
    assert "its report is there once it has succeeded" in early.json()["error"]["message"]
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + 180
    while (job := httpx.get(f"{server}/v1/jobs/{job['id']}").json())["state"] in ("queued", "running"):
        assert time.monotonic() < deadline, "the comparison did not finish in 180 s"
        if job["progress_detail"]:
            seen.append(job["progress_detail"])
        time.sleep(0.05)

    assert job["state"] == "succeeded", (job["error"], httpx.get(f"{server}/v1/jobs/{job['id']}/logs").json())
    assert job["progress"] == 1.0 and job["model_id"] is None
    assert seen and all(d["total"] == 2 and d["method"] in ("deepcad_rt", "sn2n") for d in seen)
    events = [json.loads(line) for line in (settings.jobs_dir / job["id"] / "progress.jsonl").read_text().splitlines()]
    stages = [(e["method"], e["stage"]) for e in events if e["event"] == "progress" and "epoch" not in e]
    assert stages == [(m, s) for m in ("deepcad_rt", "sn2n") for s in ("train", "score", "done")]
    fractions = [e["fraction"] for e in events if e["event"] == "progress"]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert any(e.get("epoch") == 1 and e["method"] == "sn2n" for e in events)

    result = job["result"]
    recommendation = result["recommendation"]
    assert recommendation["name"] and recommendation["reason"] and recommendation["kind"] in ("method", "filter")
    assert {r["name"] for r in result["rows"] if r["kind"] == "method"} == {"deepcad_rt", "sn2n"}
    assert result["max_latency"] == 3 and result["movie"] == f"{data}.npy"

    page = httpx.get(f"{server}/v1/jobs/{job['id']}/report")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "sandbox" in page.headers["content-security-policy"]
    assert page.text.lstrip().lower().startswith("<!doctype html") and "sn2n" in page.text
    assert recommendation["name"] in page.text

    for _ in range(2):  # the second download reuses the archive built by the first
        archive = httpx.get(f"{server}/v1/jobs/{job['id']}/report.zip")
        assert archive.status_code == 200 and archive.headers["content-type"] == "application/zip"
        assert f'filename="{job["id"]}-compare.zip"' in archive.headers["content-disposition"]
        with zipfile.ZipFile(io.BytesIO(archive.content)) as zf:
            root = f"{job['id']}-compare/"
            assert {n.removeprefix(root) for n in zf.namelist()} == {
                "report.html", "report.png", "results.json", "results.csv", "models/deepcad_rt.onnx", "models/sn2n.onnx"
            }  # fmt: skip
            assert json.loads(zf.read(root + "results.json")) == result


@pytest.mark.slow
def test_running_comparison_is_cancelled(server: str, settings, tiny_movie: str, wait, worker_pids) -> None:
    long = {**SHARED, "epochs": 500, "patches_per_epoch": 64}
    tiny = {"deepcad_rt": OVERRIDES["deepcad_rt"]}
    response = httpx.post(
        f"{server}/v1/jobs", json=_compare(tiny_movie, methods=["deepcad_rt"], config=long, overrides=tiny)
    )
    assert response.status_code == 201, response.text
    job = response.json()
    job_dir = settings.jobs_dir / job["id"]
    wait(
        lambda: (j := httpx.get(f"{server}/v1/jobs/{job['id']}").json())["epoch"] and worker_pids(job_dir) and j,
        90,
        what="the comparison to train",
    )
    started = time.monotonic()

    cancelled = httpx.post(f"{server}/v1/jobs/{job['id']}/cancel", timeout=30).json()

    assert cancelled["state"] == "cancelled" and cancelled["result"] is None
    assert worker_pids(job_dir) == []
    assert time.monotonic() - started < 10, "the comparison did not stop on SIGTERM and had to be killed"
    assert json.loads((job_dir / "result.json").read_text()).get("cancelled") is True
    refused = httpx.get(f"{server}/v1/jobs/{job['id']}/report").json()["error"]
    assert refused["code"] == "no_report" and "cancelled" in refused["message"]
