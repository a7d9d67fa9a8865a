"""ControlClient logic through httpx.MockTransport (the real-server tests live in tests/integration/control)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import httpx
import pytest

from livedenoise.clients.control import ControlClient, ControlError, ControlTimeout


def test_error_body_becomes_control_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404, json={"error": {"code": "unknown_model", "message": "no model with id 'm-x'"}})

    with ControlClient("http://server", transport=httpx.MockTransport(handler)) as client:
        with pytest.raises(ControlError) as info:
            client.get_model("m-x")
    assert (info.value.code, info.value.status) == ("unknown_model", 404)
    assert "no model with id 'm-x'" in str(info.value)


def test_non_json_error_keeps_status_and_text() -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(502, text="bad gateway from proxy"))
    with ControlClient("http://server", transport=transport) as client, pytest.raises(ControlError) as info:
        client.health()
    assert info.value.code == "http_502" and "bad gateway from proxy" in info.value.message


def test_unreachable_server() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with (
        ControlClient("http://server", transport=httpx.MockTransport(handler)) as client,
        pytest.raises(ControlError) as info,
    ):
        client.status()
    assert info.value.code == "unreachable" and info.value.status == 0 and "http://server" in info.value.message


def test_token_and_job_body_are_sent() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        body = json.loads(request.content)
        return httpx.Response(201, json={"id": "j-1", "state": "queued", "method": body["method"], "data": body["data"],
                                         "config": body["config"], "activate": body["activate"], "future_field": 1})  # fmt: skip

    with ControlClient("http://server/", token="s3cret", transport=httpx.MockTransport(handler)) as client:
        job = client.submit_job("deepcad_rt", "movie.npy", {"epochs": 1}, activate=True)
    assert seen[0].headers["authorization"] == "Bearer s3cret"
    assert seen[0].url.path == "/v1/jobs"
    assert (job.id, job.state, job.config, job.activate, job.done) == ("j-1", "queued", {"epochs": 1}, True, False)


def test_wait_job_polls_until_terminal_or_times_out() -> None:
    states = iter(["queued", "running", "running", "succeeded"])

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"id": "j-1", "state": next(states), "method": "m", "data": "d"})

    with ControlClient("http://server", transport=httpx.MockTransport(handler)) as client:
        assert client.wait_job("j-1", timeout=5, poll=0.001).state == "succeeded"

    stuck = httpx.MockTransport(
        lambda r: httpx.Response(
            200, json={"id": "j-2", "state": "running", "method": "m", "data": "d", "progress": 0.5}
        )
    )
    with (
        ControlClient("http://server", transport=stuck) as client,
        pytest.raises(ControlTimeout, match="still running"),
    ):
        client.wait_job("j-2", timeout=0.05, poll=0.01)


def test_submit_compare_sends_only_the_fields_given() -> None:
    bodies: list[dict] = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(request.content))
        return httpx.Response(201, json={"id": "j-1", "kind": "compare", "state": "queued", "method": "ted,support",
                                         "data": "d-1", "progress_detail": None, "result": None})  # fmt: skip

    with ControlClient("http://server", transport=httpx.MockTransport(handler)) as client:
        job = client.submit_compare("d-1", ["ted", "support"], max_latency=0, overrides={"support": {"bs_size": 3}})
    assert bodies == [
        {"kind": "compare", "data": "d-1", "config": {}, "methods": ["ted", "support"], "max_latency": 0,
         "overrides": {"support": {"bs_size": 3}}}
    ]  # fmt: skip
    assert (job.kind, job.method, job.progress_detail, job.result) == ("compare", "ted,support", None, None)


def _zip(*names: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name in names:
            zf.writestr(name, "x")
    return buffer.getvalue()


@pytest.mark.parametrize("evil", ["../evil", "j-1-compare/../../evil", "/tmp/evil", "C:\\evil", "\\evil"])
def test_report_archive_with_a_member_outside_out_dir_is_refused(tmp_path: Path, evil: str) -> None:
    archive = _zip("j-1-compare/report.html", evil)
    transport = httpx.MockTransport(lambda request: httpx.Response(200, content=archive))
    out = tmp_path / "inside" / "out"

    with ControlClient("http://server", transport=transport) as client, pytest.raises(ControlError) as info:
        client.download_compare_report("j-1", out)

    assert info.value.code == "bad_archive" and repr(evil) in info.value.message
    assert not (tmp_path / "inside").exists()  # nothing unpacked, not even the safe member


def test_report_archive_unpacks_into_its_folder(tmp_path: Path) -> None:
    archive = _zip("j-1-compare/report.html", "j-1-compare/models/ted.onnx")
    transport = httpx.MockTransport(lambda request: httpx.Response(200, content=archive))

    with ControlClient("http://server", transport=transport) as client:
        folder = client.download_compare_report("j-1", tmp_path / "out")

    assert folder == tmp_path / "out" / "j-1-compare"
    assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.*")) == ["models/ted.onnx", "report.html"]


def test_client_module_stays_light() -> None:
    code = (
        "import sys, livedenoise.clients.control\n"
        "heavy = [m for m in ('torch', 'fastapi', 'onnxruntime', 'livedenoise.server') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == ""


def test_control_plane_never_imports_torch() -> None:
    code = (
        "import sys\n"
        "import livedenoise.server.supervisor, livedenoise.server.api.app, livedenoise.server.jobs\n"
        "print('torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "False"
