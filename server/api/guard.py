"""The checks every HTTP request passes before a route runs or its body is read (pure ASGI middleware).

In order: the ``Host`` header (DNS rebinding: a web page that rebinds its name to 127.0.0.1 must not reach a
loopback server), the ``Origin`` of browser requests (a foreign page may not drive the API with the user's
network position), the bearer token of mutating requests (so an unauthenticated body is never read), and the
declared and actual body size (uploads up to ``max_upload_bytes``, everything else ``max_json_bytes``), counted
while the body arrives so that nothing larger is ever buffered or spooled.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import urlsplit

from livedenoise.server.settings import LOOPBACK, ServerSettings

__all__ = ["RequestGuard", "UPLOAD_PATHS"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Endpoints that take a file; every other body is small JSON.
UPLOAD_PATHS = frozenset({"/v1/models", "/v1/data"})
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


class RequestGuard:
    def __init__(self, app: ASGIApp, settings: ServerSettings) -> None:
        self.app = app
        self.settings = settings
        if settings.allowed_hosts is not None:
            self.hosts: frozenset[str] | None = frozenset(h.lower() for h in settings.allowed_hosts)
        else:
            self.hosts = LOOPBACK_HOSTS if settings.bind in LOOPBACK else None  # None: any host
        self.origins = frozenset(o.rstrip("/").lower() for o in settings.allowed_origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        refusal = self._refusal(scope, headers)
        if refusal is not None:
            await _error(send, *refusal)
            return
        if scope.get("path", "") in UPLOAD_PATHS:
            limit, code, setting = self.settings.max_upload_bytes, "upload_too_large", "LIVEDENOISE_MAX_UPLOAD_BYTES"
        else:
            limit, code, setting = self.settings.max_json_bytes, "request_too_large", "LIVEDENOISE_MAX_JSON_BYTES"
        declared = headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _error(send, 413, code, f"the request body is {declared} bytes; the limit is {limit} ({setting})")
            return
        received = 0
        started = refused = False

        async def counted_receive() -> Message:
            # Past the limit the client gets its 413 at once and the app sees a disconnect, so it stops reading
            # (an exception here would be turned into a 400 by the body parser).
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    if not started:
                        await _error(
                            send, 413, code, f"the request body exceeded the limit of {limit} bytes ({setting})"
                        )
                    refused = True
                    return {"type": "http.disconnect"}
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            if refused:  # the 413 is out; whatever the app answers after the disconnect is dropped
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        await self.app(scope, counted_receive, tracked_send)

    def _refusal(self, scope: Scope, headers: dict[str, str]) -> tuple[int, str, str] | None:
        host = _hostname(headers.get("host", ""))
        if self.hosts is not None and host not in self.hosts:
            return 400, "bad_host", f"Host {headers.get('host', '')!r} is not served here (LIVEDENOISE_ALLOWED_HOSTS)"
        origin = headers.get("origin")
        if origin is not None and not self._origin_allowed(
            origin.rstrip("/").lower(), headers.get("host", "").lower(), scope
        ):
            return (
                403,
                "forbidden_origin",
                f"requests from the web page origin {origin!r} are refused (LIVEDENOISE_ALLOWED_ORIGINS)",
            )
        token = self.settings.api_token
        if token and scope.get("method", "GET") in MUTATING:
            auth = headers.get("authorization", "")
            scheme, _, credentials = auth.partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(credentials.strip().encode(), token.encode()):
                return (
                    401,
                    "unauthorized",
                    "this endpoint needs a valid 'Authorization: Bearer <token>' header (LIVEDENOISE_API_TOKEN)",
                )
        return None

    def _origin_allowed(self, origin: str, host: str, scope: Scope) -> bool:
        if origin in self.origins:
            return True
        parts = urlsplit(origin)
        same_scheme = parts.scheme == scope.get("scheme", "http")
        return same_scheme and parts.netloc == host  # the server's own pages (same origin)


def _hostname(host: str) -> str:
    host = host.strip().lower()
    if host.startswith("["):  # [::1]:8000
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


async def _error(send: Send, status: int, code: str, message: str) -> None:
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})  # fmt: skip
    await send({"type": "http.response.body", "body": body})
