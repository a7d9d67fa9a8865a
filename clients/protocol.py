"""The `frames/1` wire format, shared by every sender and by the server.

Every message is exactly two ZeroMQ parts, ``[header, payload]``: a UTF-8 JSON header (< 4 KiB) and
the raw C-order pixel bytes (empty for ``start``/``end``). The header is parsed and validated *before*
the payload is touched (pyzmq ``serialsocket.py`` idea, plus versioning and validation).
``docs/protocol.md`` is the full specification.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, replace
from enum import Enum
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "PROTO",
    "MAX_HEADER_BYTES",
    "MAX_REPLY_HEADER_BYTES",
    "MAX_NAME_CHARS",
    "MAX_META_BYTES",
    "ALLOWED_DTYPES",
    "UNKNOWN_STREAM",
    "StreamMode",
    "MessageType",
    "ErrorCode",
    "SkipReason",
    "EndReason",
    "ProtocolError",
    "Header",
    "decode_header",
    "encode_header",
    "encode_json",
    "parse_json",
    "bounded",
    "check_payload",
    "array_from_payload",
    "frame_message",
    "control_message",
]

#: The protocol and its major version; a sender may add a minor version (``frames/1.2``).
PROTO = "frames/1"
#: A client's header is shorter than this many bytes.
MAX_HEADER_BYTES = 4096
#: ``stream`` and ``series`` are 1-128 (``series`` 0-128) characters.
MAX_NAME_CHARS = 128
#: ``meta``, re-encoded as compact UTF-8 JSON, is at most this many bytes: every reply echoes it, and this
#: bound is what lets every reply header fit in :data:`MAX_REPLY_HEADER_BYTES` by construction.
MAX_META_BYTES = 3072
#: A reply header is shorter than this: the echoed ``meta`` (<= 3 KiB), names of <= 128 characters (<= 512
#: bytes each in UTF-8), a message of <= 1 KiB and the fixed fields.
MAX_REPLY_HEADER_BYTES = 8192
#: Error messages are cut to this many characters, so quoting a sender's value cannot grow a reply.
MAX_MESSAGE_CHARS = 512
# Pixel types a camera or an acquisition program sends; little- and big-endian both accepted.
ALLOWED_DTYPES = frozenset(
    {"|u1", "|i1", "<u2", ">u2", "<i2", ">i2", "<u4", ">u4", "<i4", ">i4", "<f4", ">f4", "<f8", ">f8"}
)


#: ``stream`` of an error reply (and PUB topic) for a message whose stream could not be read.
UNKNOWN_STREAM = "?"


class StreamMode(str, Enum):
    """``start.meta.mode``: what the server does when frames arrive faster than they are denoised."""

    LIVE = "live"  # bounded latency: drop oldest whole windows (replied `skipped`) when behind
    LOSSLESS = "lossless"  # every frame denoised; latency grows under load


class MessageType(str, Enum):
    START = "start"
    FRAME = "frame"
    END = "end"
    SKIPPED = "skipped"
    ERROR = "error"


CLIENT_TYPES = frozenset({MessageType.START, MessageType.FRAME, MessageType.END})


class ErrorCode(str, Enum):
    """Stable codes carried by ``error`` replies (and by HTTP error bodies where they apply)."""

    BAD_PARTS = "bad_parts"  # message is not exactly [header, payload]
    HEADER_TOO_LARGE = "header_too_large"
    BAD_JSON = "bad_json"  # header is not a UTF-8 JSON object
    BAD_PROTO = "bad_proto"  # missing or unsupported `proto`
    BAD_TYPE = "bad_type"  # `type` not one a client may send
    BAD_FIELD = "bad_field"  # a required field is missing or has the wrong type/value
    BAD_DTYPE = "bad_dtype"  # dtype not in ALLOWED_DTYPES
    BAD_SHAPE = "bad_shape"  # shape is not [y, x] with positive sizes
    PAYLOAD_SIZE = "payload_size"  # payload bytes != prod(shape) * itemsize
    FRAME_TOO_LARGE = "frame_too_large"  # above the server's max frame bytes
    NO_START = "no_start"  # frame/end for a series that was never started
    SHAPE_MISMATCH = "shape_mismatch"  # shape differs from the series' start
    DTYPE_MISMATCH = "dtype_mismatch"  # dtype differs from the series' start
    INDEX_NOT_INCREASING = "index_not_increasing"
    TOO_MANY_STREAMS = "too_many_streams"
    BACKLOG_FULL = "backlog_full"  # lossless stream buffer is full; frame refused, not accepted
    SHUTDOWN = "shutdown"  # accepted, but the server stopped before it could be denoised
    NOT_OWNER = "not_owner"  # the series belongs to another connection or client key
    SERVER_BUSY = "server_busy"  # the server's memory budget for buffered frames and unread replies is spent
    NO_MODEL = "no_model"  # no engine is loaded
    MODEL_MISMATCH = "model_mismatch"  # frame cannot run on the active engine (e.g. too small)
    INFERENCE_FAILED = "inference_failed"
    INTERNAL = "internal"


class SkipReason(str, Enum):
    BACKLOG = "backlog"  # live mode dropped the oldest whole window to catch up


class EndReason(str, Enum):
    """Why the server closed a series the client did not ``end`` (the ``reason`` of its ``end`` reply)."""

    NEW_START = "new_start"  # a start for a new series on the same stream
    IDLE_TIMEOUT = "idle_timeout"  # no message for series_idle_timeout_s
    SHUTDOWN = "shutdown"  # the server stopped


class ProtocolError(ValueError):
    """A message that breaks `frames/1`; ``code`` is the stable :class:`ErrorCode`."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Header:
    """One `frames/1` header. Client messages use the first block of fields; replies add the rest."""

    type: MessageType
    stream: str
    series: str = ""
    index: int | None = None
    t_ns: int | None = None
    dtype: str | None = None
    shape: tuple[int, ...] | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    proto: str = PROTO
    # reply fields
    model: str | None = None
    latency_ms: float | None = None
    code: str | None = None
    message: str | None = None
    reason: str | None = None
    instance: str | None = None  # replies: the serving ingest process, new at each start (a change = a restart)

    @property
    def nbytes(self) -> int:
        """Payload size this header announces (0 when it carries no pixels)."""
        if self.shape is None or self.dtype is None:
            return 0
        return math.prod(self.shape) * np.dtype(self.dtype).itemsize

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in asdict(self).items():
            if value is None or (key == "meta" and not value):
                continue
            if isinstance(value, Enum):
                value = value.value
            elif isinstance(value, tuple):
                value = list(value)
            out[key] = value
        return out


def encode_json(obj: Any) -> bytes:
    """Compact UTF-8 JSON, as headers travel (non-ASCII text is not escaped, so it is not inflated 6x)."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")


def encode_header(header: Header, *, limit: int = MAX_HEADER_BYTES) -> bytes:
    """Encode a header; ``limit`` is :data:`MAX_HEADER_BYTES` for client messages and
    :data:`MAX_REPLY_HEADER_BYTES` for replies."""
    try:
        raw = encode_json(header.to_dict())
    except ValueError as exc:  # NaN or infinity in meta: not JSON
        raise ProtocolError(ErrorCode.BAD_FIELD, f"header is not encodable as JSON: {exc}") from None
    if len(raw) >= limit:
        raise ProtocolError(ErrorCode.HEADER_TOO_LARGE, f"header is {len(raw)} bytes; the limit is {limit - 1}")
    return raw


def bounded(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """``text`` cut to ``limit`` characters (with a marker), for messages that quote what a peer sent."""
    return text if len(text) <= limit else text[: limit - 15] + "...[truncated]"


def _field(obj: dict[str, Any], name: str, kind: type | tuple[type, ...], required: bool) -> Any:
    value = obj.get(name)
    if value is None:
        if required:
            raise ProtocolError(ErrorCode.BAD_FIELD, f"header field '{name}' is required")
        return None
    # bool is an int subclass; an index of `true` is a bug in the sender, not frame 1.
    if isinstance(value, bool) or not isinstance(value, kind):
        raise ProtocolError(ErrorCode.BAD_FIELD, f"header field '{name}' has type {type(value).__name__}")
    return value


def decode_header(raw: bytes, *, replies: bool = False) -> Header:
    """Parse and validate a header; raises :class:`ProtocolError` naming the problem.

    ``replies=False`` (the server side) accepts only ``start``/``frame``/``end`` and requires the fields
    each needs; ``replies=True`` (the client side) accepts every type.
    """
    limit = MAX_REPLY_HEADER_BYTES if replies else MAX_HEADER_BYTES
    if len(raw) >= limit:
        raise ProtocolError(ErrorCode.HEADER_TOO_LARGE, f"header is {len(raw)} bytes; the limit is {limit - 1}")
    obj = parse_json(raw, "header")
    if not isinstance(obj, dict):
        raise ProtocolError(ErrorCode.BAD_JSON, f"header must be a JSON object, got {type(obj).__name__}")
    proto = obj.get("proto")
    if not isinstance(proto, str) or proto.split(".")[0] != PROTO:
        raise ProtocolError(ErrorCode.BAD_PROTO, f"unsupported proto {proto!r}; this server speaks {PROTO!r}")
    try:
        mtype = MessageType(obj.get("type"))
    except ValueError:
        raise ProtocolError(ErrorCode.BAD_TYPE, f"unknown message type {obj.get('type')!r}") from None
    if not replies and mtype not in CLIENT_TYPES:
        raise ProtocolError(ErrorCode.BAD_TYPE, f"clients may send start/frame/end, not {mtype.value!r}")

    stream = _field(obj, "stream", str, required=True)
    if not stream or len(stream) > MAX_NAME_CHARS:
        raise ProtocolError(
            ErrorCode.BAD_FIELD, f"header field 'stream' must be 1-{MAX_NAME_CHARS} characters, got {len(stream)}"
        )
    series = _field(obj, "series", str, required=False) or ""
    if len(series) > MAX_NAME_CHARS:
        raise ProtocolError(
            ErrorCode.BAD_FIELD, f"header field 'series' must be at most {MAX_NAME_CHARS} characters, got {len(series)}"
        )
    index = _field(obj, "index", int, required=mtype is MessageType.FRAME and not replies)
    if index is not None and index < 0:
        raise ProtocolError(ErrorCode.BAD_FIELD, f"header field 'index' must be >= 0, got {index}")
    t_ns = _field(obj, "t_ns", int, required=False)
    meta = _field(obj, "meta", dict, required=False) or {}
    if meta and not replies:
        _check_meta(meta)
    needs_pixels = mtype is MessageType.FRAME or (mtype is MessageType.START and not replies)
    dtype = _field(obj, "dtype", str, required=needs_pixels and not replies)
    shape_raw = _field(obj, "shape", list, required=needs_pixels and not replies)
    shape: tuple[int, ...] | None = None
    if dtype is not None and dtype not in ALLOWED_DTYPES:
        raise ProtocolError(ErrorCode.BAD_DTYPE, f"dtype {dtype!r} is not one of {sorted(ALLOWED_DTYPES)}")
    if shape_raw is not None:
        if len(shape_raw) != 2 or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in shape_raw):
            raise ProtocolError(ErrorCode.BAD_SHAPE, f"shape must be [y, x] with positive integers, got {shape_raw!r}")
        shape = (int(shape_raw[0]), int(shape_raw[1]))
    return Header(
        type=mtype,
        stream=stream,
        series=series,
        index=index,
        t_ns=t_ns,
        dtype=dtype,
        shape=shape,
        meta=meta,
        proto=proto,
        model=obj.get("model") if isinstance(obj.get("model"), str) else None,
        latency_ms=obj.get("latency_ms") if isinstance(obj.get("latency_ms"), (int, float)) else None,
        code=obj.get("code") if isinstance(obj.get("code"), str) else None,
        message=obj.get("message") if isinstance(obj.get("message"), str) else None,
        reason=obj.get("reason") if isinstance(obj.get("reason"), str) else None,
        instance=obj.get("instance") if isinstance(obj.get("instance"), str) else None,
    )


def parse_json(raw: bytes | memoryview, what: str) -> Any:
    """``raw`` as UTF-8 JSON, or :class:`ProtocolError` ``bad_json`` (never another exception: deep
    nesting, which makes the decoder recurse past Python's limit, is refused too)."""
    try:
        return json.loads(bytes(raw).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProtocolError(ErrorCode.BAD_JSON, bounded(f"{what} is not UTF-8 JSON: {exc}")) from None
    except RecursionError:
        raise ProtocolError(ErrorCode.BAD_JSON, f"{what} nests JSON arrays or objects too deeply") from None


def _check_meta(meta: dict[str, Any]) -> None:
    try:
        size = len(encode_json(meta))
    except (ValueError, RecursionError):
        raise ProtocolError(
            ErrorCode.BAD_FIELD, "header field 'meta' is not re-encodable JSON (NaN, infinity or deep nesting)"
        ) from None
    if size > MAX_META_BYTES:
        raise ProtocolError(
            ErrorCode.BAD_FIELD,
            f"header field 'meta' is {size} bytes as compact UTF-8 JSON; at most {MAX_META_BYTES} (replies echo it)",
        )


def check_payload(header: Header, payload_len: int) -> None:
    """The payload must hold exactly the pixels the header announces (none for start/end)."""
    expected = header.nbytes if header.type is MessageType.FRAME else 0
    if payload_len != expected:
        raise ProtocolError(
            ErrorCode.PAYLOAD_SIZE,
            f"payload is {payload_len} bytes but shape {list(header.shape or ())} x dtype {header.dtype} needs {expected}",
        )


def array_from_payload(header: Header, payload: bytes | memoryview) -> NDArray[Any]:
    """View the payload as a ``(y, x)`` array; call :func:`check_payload` first."""
    assert header.dtype is not None and header.shape is not None
    return np.frombuffer(payload, dtype=np.dtype(header.dtype)).reshape(header.shape)


def frame_message(header: Header, frame: NDArray[Any]) -> list[bytes | memoryview]:
    """Build ``[header, payload]`` for a frame; dtype and shape in the header come from the array."""
    if frame.ndim != 2:
        raise ValueError(f"a frame must be 2-D (y, x), got shape {frame.shape}")
    dtype = frame.dtype.str
    if dtype not in ALLOWED_DTYPES:
        raise ValueError(f"dtype {dtype!r} cannot be sent; use one of {sorted(ALLOWED_DTYPES)}")
    data = np.ascontiguousarray(frame)
    header = replace(header, dtype=dtype, shape=tuple(int(s) for s in data.shape))
    if header.meta:
        _check_meta(header.meta)
    return [encode_header(header), data.data.cast("B")]


def control_message(header: Header) -> list[bytes]:
    """Build ``[header, b""]`` for ``start``/``end``."""
    if header.meta:
        _check_meta(header.meta)
    return [encode_header(header), b""]
