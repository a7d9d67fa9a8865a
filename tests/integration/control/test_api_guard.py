"""What every request passes before a route runs or its body is read: Host, Origin, token, body size."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

from livedenoise.clients.local_token import ensure_token, read_token
from livedenoise.server.api.app import create_app
from livedenoise.server.settings import ServerSettings


def test_a_foreign_host_header_is_refused_on_a_loopback_server(server: str) -> None:
    response = httpx.get(f"{server}/v1/status", headers={"Host": "evil.example:8000"})
    assert response.status_code == 400 and response.json()["error"]["code"] == "bad_host"
    assert httpx.get(f"{server}/v1/status").status_code == 200  # 127.0.0.1 itself


def test_browser_requests_from_a_foreign_origin_are_refused(
    settings: ServerSettings, serve_app: Callable[..., Any]
) -> None:
    allowed = settings.model_copy(update={"allowed_origins": ["http://dashboard.lab:9000"]})
    with serve_app(create_app(allowed)) as url:
        port = url.rsplit(":", 1)[1]
        for origin, code in [("http://evil.example", 403), (f"http://127.0.0.1:{port}", 200), ("http://dashboard.lab:9000", 200),
                             (f"https://127.0.0.1:{port}", 403)]:  # fmt: skip
            response = httpx.post(f"{url}/v1/jobs", headers={"Origin": origin}, json={})
            got = 403 if response.status_code == 403 else 200
            assert got == code, (origin, response.status_code, response.text)
            if got == 403:
                assert response.json()["error"]["code"] == "forbidden_origin"


def test_an_unauthenticated_body_is_never_read(settings: ServerSettings) -> None:
    """At the ASGI level: the guard answers 401 without ever calling ``receive`` (the body stays unread)."""
    import asyncio

    from livedenoise.server.api.guard import RequestGuard

    reads: list[int] = []
    sent: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:  # a route that would read the body
        while (await receive()).get("more_body"):
            pass

    async def receive() -> dict[str, Any]:
        reads.append(1)
        return {"type": "http.request", "body": b"x" * (1 << 20), "more_body": True}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    guard = RequestGuard(app, settings.model_copy(update={"api_token": "t0ken"}))
    scope = {"type": "http", "method": "POST", "path": "/v1/models", "scheme": "http",
             "headers": [(b"host", b"127.0.0.1:8000"), (b"content-type", b"application/octet-stream")]}  # fmt: skip
    asyncio.run(guard(scope, receive, send))
    assert reads == [] and sent[0]["status"] == 401


def test_bodies_are_limited_while_they_arrive(settings: ServerSettings, serve_app: Callable[..., Any]) -> None:
    small = settings.model_copy(update={"max_upload_bytes": 4096, "max_json_bytes": 512})
    spool = Path(small.models_dir)

    def chunks(n: int) -> Iterator[bytes]:  # no Content-Length: the limit must be counted, not read from a header
        yield b'--b\r\nContent-Disposition: form-data; name="file"; filename="m.onnx"\r\n\r\n'
        for _ in range(n):
            yield b"y" * 1024

    with serve_app(create_app(small)) as url:
        response = httpx.post(f"{url}/v1/models", content=chunks(32),
                              headers={"Content-Type": "multipart/form-data; boundary=b"})  # fmt: skip
        assert response.status_code == 413 and response.json()["error"]["code"] == "upload_too_large", response.text
        response = httpx.post(f"{url}/v1/jobs", content=b'{"method": "' + b"a" * 600 + b'"}',
                              headers={"Content-Type": "application/json"})  # fmt: skip
        assert response.status_code == 413 and response.json()["error"]["code"] == "request_too_large"
    assert not any(spool.iterdir())


def test_serve_makes_a_private_token_once(tmp_path: Path) -> None:
    token = ensure_token(tmp_path)
    path = tmp_path / "api_token"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600 and len(token) >= 32
    assert ensure_token(tmp_path) == token == read_token(tmp_path)
