"""The live dashboard: the page (``GET /``, static files shipped in the package) and the two data endpoints only
it needs, the status history for its charts and the preview images.

Auth follows the API's rules. The page and its script are public static content, like the OpenAPI page; the data
calls are API calls: reads of serving state are open as ``/v1/status`` is, mutations (hot swap, cancel) need the
bearer token, and the preview needs it too whenever a token is set, because it shows the pixels that the PUB port
gives only to CURVE clients. The page asks for the token when a call answers 401 and keeps it in
``sessionStorage`` (or takes it once from ``/#token=...``, a fragment the browser never sends).
"""

from __future__ import annotations

import base64
import time
from dataclasses import asdict
from importlib.resources import files
from typing import Annotated, Literal

import numpy as np
from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import Response
from numpy.typing import NDArray
from pydantic import BaseModel, Field

from livedenoise.server.api.deps import Authorized
from livedenoise.server.api.history import StatusHistory
from livedenoise.server.api.png import DisplayRange, display_range, downscale, encode_png, to_gray8
from livedenoise.server.api.preview import PreviewFrame, PreviewHub, PreviewSnapshot
from livedenoise.server.errors import IngestUnavailable

router = APIRouter(tags=["dashboard"])

_STATIC = files("livedenoise.server.api").joinpath("static")
_ASSETS = {"dashboard.js": "text/javascript; charset=utf-8", "dashboard.css": "text/css; charset=utf-8"}
# Only the page's own script, styles and API; images from data: URIs (previews) and nothing from elsewhere.
_PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
_PAGE_HEADERS = {
    "Content-Security-Policy": _PAGE_CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


# -- the page ----------------------------------------------------------------------------------------------
@router.get("/", include_in_schema=False)
def page() -> Response:
    """The dashboard page."""
    body = _STATIC.joinpath("index.html").read_bytes()
    return Response(body, media_type="text/html; charset=utf-8", headers=_PAGE_HEADERS)


@router.get("/dashboard/{name}", include_in_schema=False)
def asset(name: str) -> Response:
    """The page's script and style sheet (a fixed list: no path is ever read from the request)."""
    media_type = _ASSETS.get(name)
    if media_type is None:
        raise HTTPException(404, f"no dashboard file {name!r}")
    return Response(_STATIC.joinpath(name).read_bytes(), media_type=media_type, headers=_PAGE_HEADERS)


# -- status history ----------------------------------------------------------------------------------------
class StreamSamplePublic(BaseModel):
    fps_in: float
    fps_out: float
    latency_ms_p50: float | None
    latency_ms_p99: float | None
    skipped_per_s: float
    errors_per_s: float
    backlog: int
    open: bool


class StatusSamplePublic(BaseModel):
    t: float = Field(description="unix time of the sample, s")
    up: bool = Field(description="the ingest process answered (false: a gap)")
    model: str | None
    streams: dict[str, StreamSamplePublic]


class StatusHistoryPublic(BaseModel):
    interval_s: float
    keep_s: float
    samples: list[StatusSamplePublic]


def _history(request: Request) -> StatusHistory:
    history: StatusHistory | None = request.app.state.history
    if history is None:
        raise IngestUnavailable("this control plane runs without an ingest process")
    return history


@router.get("/v1/status/history", response_model=StatusHistoryPublic, tags=["status"])
def status_history(
    request: Request,
    since: Annotated[float | None, Query(description="only samples taken after this unix time")] = None,
) -> StatusHistoryPublic:
    """The status sampled every second over the last minutes (per stream: fps in/out, latency p50/p99, skips and
    errors per second, backlog), oldest first; pass the last sample's ``t`` as ``since`` to get only new ones."""
    history = _history(request)
    samples = [StatusSamplePublic.model_validate(asdict(s)) for s in history.samples(since)]
    return StatusHistoryPublic(interval_s=history.interval_s, keep_s=history.keep_s, samples=samples)


# -- preview -----------------------------------------------------------------------------------------------
class PreviewImagePublic(BaseModel):
    series: str
    index: int | None
    t_ns: int | None
    shape: list[int]
    dtype: str
    age_s: float = Field(description="seconds since the control plane received it")
    model: str | None = Field(None, description="denoised: the model that made it")
    latency_ms: float | None = Field(None, description="denoised: arrival to reply, ms")
    png: str = Field(description="data: URI of an 8-bit greyscale PNG (shown range: the preview's `display`)")


class PreviewPublic(BaseModel):
    stream: str
    paired: bool = Field(description="raw and denoised are the same frame (same series and index)")
    display: list[float] | None = Field(None, description="[low, high]: the values shown black and white")
    raw: PreviewImagePublic | None
    denoised: PreviewImagePublic | None


RENDERS_PER_FRAME = 8
StreamQuery = Annotated[str, Query(min_length=1, max_length=128, description="stream id")]
MaxSideQuery = Annotated[int, Query(ge=16, le=2048, description="longest side of the image, pixels (block mean)")]


def _hub(request: Request) -> PreviewHub:
    hub: PreviewHub | None = request.app.state.preview
    if hub is None:
        raise IngestUnavailable("this control plane runs without an ingest process")
    return hub


def _small(frame: PreviewFrame, max_side: int) -> NDArray[np.float32]:
    key = ("small", max_side)
    image: NDArray[np.float32] | None = frame.renders.get(key)
    if image is None:
        image = frame.renders[key] = downscale(frame.array(), max_side)
    return image


def _png(frame: PreviewFrame, max_side: int, value_range: DisplayRange) -> bytes:
    key = ("png", max_side, value_range)
    png: bytes | None = frame.renders.get(key)
    if png is None:
        png = encode_png(to_gray8(_small(frame, max_side), value_range))
        if len(frame.renders) >= RENDERS_PER_FRAME:  # pages asking for other sizes or ranges: start again
            frame.renders.clear()
        frame.renders[key] = png
    return png


def _rendered(snapshot: PreviewSnapshot, max_side: int) -> tuple[dict[str, bytes], DisplayRange | None]:
    """PNGs of the snapshot's frames, both in one display range (the denoised frame's, when there is one); each
    frame is encoded once per size and range, however often the page asks."""
    frames = {kind: f for kind, f in (("raw", snapshot.raw), ("denoised", snapshot.denoised)) if f is not None}
    if not frames:
        return {}, None
    value_range = display_range(_small(frames.get("denoised") or frames["raw"], max_side))
    return {kind: _png(f, max_side, value_range) for kind, f in frames.items()}, value_range


def _image(frame: PreviewFrame | None, png: bytes | None, now: float) -> PreviewImagePublic | None:
    if frame is None or png is None:
        return None
    h = frame.header
    return PreviewImagePublic(
        series=h.series,
        index=h.index,
        t_ns=h.t_ns,
        shape=list(h.shape or ()),
        dtype=h.dtype or "",
        age_s=round(now - frame.received, 3),
        model=h.model,
        latency_ms=h.latency_ms,
        png="data:image/png;base64," + base64.b64encode(png).decode("ascii"),
    )


@router.get("/v1/preview", response_model=PreviewPublic, tags=["status"], dependencies=[Authorized])
def preview(request: Request, stream: StreamQuery, max_side: MaxSideQuery = 512) -> PreviewPublic:
    """The latest raw and denoised frame of a stream (the same frame when ``paired``), as PNGs in one display
    range, read from the PUB port. Asking starts watching the stream: the first call of a stream returns no
    images; frames follow within a second while it streams. Needs the token when one is set."""
    snapshot = _hub(request).snapshot(stream)
    pngs, value_range = _rendered(snapshot, max_side)
    now = time.monotonic()
    return PreviewPublic(
        stream=stream,
        paired=snapshot.paired,
        display=list(value_range) if value_range is not None else None,
        raw=_image(snapshot.raw, pngs.get("raw"), now),
        denoised=_image(snapshot.denoised, pngs.get("denoised"), now),
    )


@router.get(
    "/v1/preview.png",
    response_class=Response,
    tags=["status"],
    dependencies=[Authorized],
    responses={
        200: {"content": {"image/png": {}}, "description": "8-bit greyscale, the frame's own display range"},
        404: {"description": "no such frame of the stream has been seen yet (the call starts watching it)"},
    },
)
def preview_png(
    request: Request,
    stream: StreamQuery,
    kind: Annotated[Literal["raw", "denoised"], Query()] = "denoised",
    max_side: MaxSideQuery = 512,
) -> Response:
    """One frame of the preview as a PNG (for scripts; the page uses ``/v1/preview``). Needs the token when one
    is set."""
    snapshot = _hub(request).snapshot(stream)
    frame = snapshot.raw if kind == "raw" else snapshot.denoised
    if frame is None:
        raise HTTPException(404, f"no {kind} frame of stream {stream!r} yet; it is watched now, ask again")
    image = downscale(frame.array(), max_side)
    return Response(encode_png(to_gray8(image, display_range(image))), media_type="image/png")
