"""What a stream gets back: replies, the per-series result, and the failures the client detects.

StreamError (RuntimeError)
 ├── ProtocolViolation      the server broke frames/1 (order, one reply per frame, a malformed reply)
 ├── ServerSilent (TimeoutError)  no reply for ``timeout_s`` while frames were waiting
 └── StreamRejected         the server refused a series' ``start``/``end``
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from livedenoise.clients.protocol import ErrorCode, Header, MessageType

__all__ = [
    "ORDERED_ERROR_CODES",
    "ServerRestarted",
    "Reply",
    "ReplyRecorder",
    "StreamResult",
    "StreamError",
    "ProtocolViolation",
    "ServerSilent",
    "StreamRejected",
]

# Errors that answer an *accepted* frame in its place in the order (the frame got in, then failed).
# Every other code refuses a message at the door (validation, limits, backlog_full) and is a rejection.
ORDERED_ERROR_CODES = frozenset(
    {
        ErrorCode.INFERENCE_FAILED.value,
        ErrorCode.MODEL_MISMATCH.value,
        ErrorCode.NO_MODEL.value,
        ErrorCode.INTERNAL.value,
        ErrorCode.SHUTDOWN.value,
    }
)


class StreamError(RuntimeError):
    """Base class of stream client failures."""


class ServerRestarted(StreamError):
    """The server restarted while frames waited for replies: those frames will never be answered."""

    def __init__(self, message: str, lost: dict[str, list[int]]) -> None:
        super().__init__(message)
        self.lost = lost  # series -> indices accepted by the previous server instance, never answered


class ProtocolViolation(StreamError):
    """The server broke `frames/1`: out-of-order, duplicate or missing replies, or a malformed reply."""


class ServerSilent(StreamError, TimeoutError):
    """No reply arrived for ``timeout_s`` while frames were waiting for one."""


class StreamRejected(StreamError):
    """The server refused a ``start`` or ``end`` (``code`` is the :class:`ErrorCode` value)."""

    def __init__(self, message: str, code: str | None) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Reply:
    """One message from the server: its header and, for a ``frame`` reply, the float32 ``[y, x]`` pixels.

    ``rejected`` marks an ``error`` for a refused message (no place in the frame order);
    ``rtt_ms`` is the time from sending the frame to this reply, measured by the client.
    """

    header: Header
    frame: NDArray[np.float32] | None = None
    rejected: bool = False
    rtt_ms: float | None = None

    @property
    def type(self) -> MessageType:
        return self.header.type

    @property
    def index(self) -> int | None:
        return self.header.index


@dataclass
class StreamResult:
    """What :meth:`StreamClient.denoise` got back, one entry per input frame index.

    ``frames`` is float32 ``[T, Y, X]`` with NaN where no denoised frame came back (``[0, Y, X]`` when
    pixels were not kept); ``reply_types`` holds ``"frame"``, ``"skipped"``, ``"error"`` or
    ``"rejected"`` per index sent; ``latency_ms`` is the
    client-measured send-to-reply time (NaN where no reply), ``server_latency_ms`` what the server
    reported; ``codes``/``messages`` hold the error code and text per failed index.
    """

    frames: NDArray[np.float32]
    reply_types: list[str]
    latency_ms: NDArray[np.float64]
    server_latency_ms: NDArray[np.float64]
    codes: dict[int, str] = field(default_factory=dict)
    messages: dict[int, str] = field(default_factory=dict)
    rejections: list[Reply] = field(default_factory=list)
    series: str = ""
    model: str | None = None
    wall_s: float = 0.0
    late_frames: int = 0  # frames sent more than one frame period after their camera schedule

    def count(self, kind: str) -> int:
        return sum(1 for t in self.reply_types if t == kind)

    @property
    def frames_in(self) -> int:
        return len(self.reply_types)

    @property
    def frames_out(self) -> int:
        return self.count("frame")

    @property
    def fps(self) -> float:
        """Denoised frames per second of wall time, from the first send to the ``end`` reply."""
        return self.frames_out / self.wall_s if self.wall_s > 0 else 0.0

    def summary(self) -> dict[str, Any]:
        """Counts, throughput and latency percentiles as plain JSON-able values."""
        lat = self.latency_ms[np.isfinite(self.latency_ms)]
        p50, p99 = (float(np.percentile(lat, 50)), float(np.percentile(lat, 99))) if lat.size else (math.nan, math.nan)
        return {
            "series": self.series,
            "model": self.model,
            "frames_in": self.frames_in,
            "frames_out": self.frames_out,
            "skipped": self.count("skipped"),
            "errors": self.count("error"),
            "rejected": self.count("rejected"),
            "wall_s": round(self.wall_s, 4),
            "fps": round(self.fps, 3),
            "late_frames": self.late_frames,
            "latency_ms_p50": round(p50, 3),
            "latency_ms_p99": round(p99, 3),
        }


class ReplyRecorder:
    """Collects one series' replies into a :class:`StreamResult` (pixels only when ``keep_frames``)."""

    def __init__(
        self,
        series: str,
        shape: tuple[int, int],
        keep_frames: bool,
        on_reply: Callable[[Reply], None] | None,
        progress: Callable[[float], None] | None,
        total: int | None,
    ) -> None:
        self.series = series
        self.shape = shape
        self.keep_frames = keep_frames
        self.on_reply = on_reply
        self.progress = progress
        self.total = total
        self.types: list[str] = []
        self.frames: dict[int, NDArray[np.float32]] = {}
        self.latency: dict[int, float] = {}
        self.server_latency: dict[int, float] = {}
        self.codes: dict[int, str] = {}
        self.messages: dict[int, str] = {}
        self.rejections: list[Reply] = []
        self.model: str | None = None
        self.answered = 0
        self.end_seen = False

    def sent(self, index: int) -> None:
        assert index == len(self.types), "stream_frames numbers frames 0, 1, 2, ..."
        self.types.append("none")

    def handle(self, reply: Reply) -> None:
        if self.on_reply is not None:
            self.on_reply(reply)
        h = reply.header
        if h.series != self.series:
            return  # a previous series of this stream being flushed
        if h.type is MessageType.END:
            self.end_seen = True
            return
        if h.index is None:
            # Only start and end carry no index: the series itself was refused.
            self.rejections.append(reply)
            raise StreamRejected(f"server refused series {self.series!r}: {h.code}: {h.message}", h.code)
        i = h.index
        if not 0 <= i < len(self.types):
            raise ProtocolViolation(
                f"reply for index {i}; series {self.series!r} has sent frames 0..{len(self.types) - 1}"
            )
        if reply.rejected:
            self.rejections.append(reply)
            self.types[i] = "rejected"
        else:
            self.types[i] = h.type.value
        if reply.frame is not None:
            if reply.frame.shape != self.shape:
                raise ProtocolViolation(f"frame {i}: reply shape {reply.frame.shape} != sent shape {self.shape}")
            if self.keep_frames:
                self.frames[i] = reply.frame
            self.model = h.model or self.model
        if h.type is MessageType.ERROR:
            self.codes[i] = h.code or ""
            self.messages[i] = h.message or ""
        if reply.rtt_ms is not None:
            self.latency[i] = reply.rtt_ms
        if h.latency_ms is not None:
            self.server_latency[i] = float(h.latency_ms)
        self.answered += 1
        if self.progress is not None and self.total:
            self.progress(min(1.0, self.answered / self.total))

    def result(self, wall_s: float, late_frames: int) -> StreamResult:
        n = len(self.types)
        frames = np.full((n if self.keep_frames else 0, *self.shape), np.nan, dtype=np.float32)
        for i, frame in self.frames.items():
            frames[i] = frame
        latency = np.full(n, np.nan)
        server_latency = np.full(n, np.nan)
        for i, value in self.latency.items():
            latency[i] = value
        for i, value in self.server_latency.items():
            server_latency[i] = value
        return StreamResult(
            frames=frames,
            reply_types=self.types,
            latency_ms=latency,
            server_latency_ms=server_latency,
            codes=self.codes,
            messages=self.messages,
            rejections=self.rejections,
            series=self.series,
            model=self.model,
            wall_s=wall_s,
            late_frames=late_frames,
        )
