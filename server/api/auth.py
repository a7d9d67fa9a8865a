"""Bearer-token check for mutating endpoints (active whenever ``settings.api_token`` is set)."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from livedenoise.server.errors import Unauthorized

__all__ = ["Unauthorized", "require_token"]

_bearer = HTTPBearer(auto_error=False, description="LIVEDENOISE_API_TOKEN, required on mutating endpoints when set")


def require_token(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> None:
    """Raise :class:`Unauthorized` unless the request carries the configured bearer token."""
    expected = request.app.state.runtime.settings.api_token
    if not expected:
        return
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthorized("this endpoint needs an 'Authorization: Bearer <token>' header (LIVEDENOISE_API_TOKEN)")
    if not hmac.compare_digest(credentials.credentials.encode(), expected.encode()):
        raise Unauthorized("the bearer token is not valid for this server")
