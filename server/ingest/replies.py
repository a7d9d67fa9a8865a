"""Build `frames/1` reply messages. Internally a reply travels as ``[identity, stream, header, payload]``
(worker → router over inproc); the router sends ``[identity, header, payload]`` on the ROUTER socket and
``[stream, header, payload]`` on PUB.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from livedenoise.clients.protocol import (
    MAX_REPLY_HEADER_BYTES,
    UNKNOWN_STREAM,
    EndReason,
    ErrorCode,
    Header,
    MessageType,
    ProtocolError,
    SkipReason,
    bounded,
    encode_header,
)

__all__ = ["UNKNOWN_STREAM", "Reply", "frame_reply", "skipped_reply", "error_reply", "end_reply"]

logger = logging.getLogger(__name__)

Reply = list[bytes | memoryview]


def _envelope(identity: bytes, header: Header, payload: bytes | memoryview = b"") -> Reply:
    """The internal reply message. Accepted headers bound every echoed field (names, ``meta``), so a reply
    always fits :data:`MAX_REPLY_HEADER_BYTES`; should one still not, it goes out without its ``meta``
    rather than not at all (a reply that is never sent is a frame lost)."""
    try:
        raw = encode_header(header, limit=MAX_REPLY_HEADER_BYTES)
    except ProtocolError as exc:
        logger.error(
            "reply header for stream %.128r does not encode (%s); sending it without meta", header.stream, exc.message
        )
        note = "meta not echoed: the reply header would exceed the limit"
        header = replace(header, meta={}, message=bounded(f"{header.message} ({note})" if header.message else note))
        raw = encode_header(header, limit=MAX_REPLY_HEADER_BYTES)
    return [identity, header.stream.encode(), raw, payload]


def frame_reply(
    identity: bytes,
    stream: str,
    series: str,
    index: int,
    t_ns: int | None,
    meta: dict[str, Any],
    frame: NDArray[np.float32],
    model: str,
    latency_ms: float,
    instance: str | None = None,
) -> Reply:
    """A denoised frame: float32 little-endian ``[y, x]`` with the sender's index, t_ns and meta echoed."""
    data = np.ascontiguousarray(frame, dtype="<f4")
    header = Header(
        type=MessageType.FRAME,
        stream=stream,
        series=series,
        index=index,
        t_ns=t_ns,
        dtype="<f4",
        shape=(int(data.shape[0]), int(data.shape[1])),
        meta=meta,
        model=model,
        latency_ms=round(latency_ms, 3),
        instance=instance,
    )
    return _envelope(identity, header, data.data.cast("B"))


def skipped_reply(
    identity: bytes,
    stream: str,
    series: str,
    index: int,
    t_ns: int | None,
    meta: dict[str, Any],
    reason: SkipReason,
    instance: str | None = None,
) -> Reply:
    header = Header(
        type=MessageType.SKIPPED, stream=stream, series=series, index=index, t_ns=t_ns, meta=meta, reason=reason.value,
        instance=instance,
    )  # fmt: skip
    return _envelope(identity, header)


def error_reply(
    identity: bytes,
    code: ErrorCode,
    message: str,
    *,
    stream: str = UNKNOWN_STREAM,
    series: str = "",
    index: int | None = None,
    t_ns: int | None = None,
    meta: dict[str, Any] | None = None,
    instance: str | None = None,
) -> Reply:
    """An ``error`` reply; stream/series/index are echoed when known (``stream`` is ``"?"`` when not)."""
    header = Header(
        type=MessageType.ERROR,
        stream=stream,
        series=series,
        index=index,
        t_ns=t_ns,
        meta=meta or {},
        code=code.value,
        message=bounded(message),
        instance=instance,
    )
    return _envelope(identity, header)


def end_reply(
    identity: bytes,
    stream: str,
    series: str,
    meta: dict[str, Any],
    reason: EndReason | None = None,
    instance: str | None = None,
) -> Reply:
    """Sent after the last reply of a series; ``meta`` echoes the client's ``end``. A series the server
    closed itself has empty ``meta`` and a ``reason``."""
    header = Header(
        type=MessageType.END, stream=stream, series=series, meta=meta, reason=reason.value if reason else None,
        instance=instance,
    )  # fmt: skip
    return _envelope(identity, header)
