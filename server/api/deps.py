"""Typed dependencies shared by the routers."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from livedenoise.server.api.auth import require_token
from livedenoise.server.api.runtime import Runtime

__all__ = ["RuntimeDep", "get_runtime", "Authorized"]


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
# Add to a route's `dependencies=[Authorized]` to protect it with the bearer token.
Authorized = Depends(require_token)
