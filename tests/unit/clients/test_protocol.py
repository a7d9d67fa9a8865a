"""The frames/1 header codec: any bytes in, a decoded header or a ProtocolError out, never another exception;
and every header the decoder accepts can be answered by a reply that fits the reply limit."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from livedenoise.clients.protocol import (
    MAX_HEADER_BYTES,
    MAX_META_BYTES,
    MAX_REPLY_HEADER_BYTES,
    ErrorCode,
    Header,
    MessageType,
    ProtocolError,
    decode_header,
    encode_header,
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=12), inner, max_size=6),
    max_leaves=40,
)
FIELDS = ("proto", "type", "stream", "series", "index", "t_ns", "dtype", "shape", "meta")


@st.composite
def near_valid_headers(draw: st.DrawFn) -> bytes:
    """Mostly well-formed frame headers with some fields replaced by arbitrary JSON."""
    obj: dict[str, Any] = {
        "proto": "frames/1",
        "type": draw(st.sampled_from(["start", "frame", "end", "error"])),
        "stream": draw(st.text(min_size=0, max_size=200)),
        "series": draw(st.text(max_size=200)),
        "index": draw(st.integers(-5, 2**70)),
        "dtype": "<u2",
        "shape": [4, 4],
    }
    for key in draw(st.lists(st.sampled_from(FIELDS), max_size=4)):
        obj[key] = draw(json_values)
    return json.dumps(obj, ensure_ascii=draw(st.booleans())).encode()


def _decode_or_refuse(raw: bytes) -> Header | None:
    try:
        return decode_header(raw)
    except ProtocolError as exc:
        assert isinstance(exc.code, ErrorCode) and exc.message
        return None


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=5000))
def test_any_bytes_decode_or_refuse(raw: bytes) -> None:
    _decode_or_refuse(raw)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(near_valid_headers())
def test_near_valid_headers_decode_or_refuse_and_any_accepted_one_can_be_answered(raw: bytes) -> None:
    header = _decode_or_refuse(raw)
    if header is None:
        return
    # The longest reply the server builds for it: a frame reply with a model id and a latency, or an error
    # with a full-length message, both echoing everything the header carried.
    reply = Header(type=MessageType.ERROR, stream=header.stream, series=header.series, index=header.index,
                   t_ns=header.t_ns, meta=header.meta, model="m" * 128, latency_ms=1e9, code="index_not_increasing",
                   message="x" * 512)  # fmt: skip
    assert len(encode_header(reply, limit=MAX_REPLY_HEADER_BYTES)) < MAX_REPLY_HEADER_BYTES


@pytest.mark.parametrize(
    ("raw", "code", "word"),
    [
        (b"[" * 3000 + b"]" * 3000, "header_too_large", "6000"),
        (b"[" * 2000 + b"]" * 2000, "bad_json", "deeply"),
        (
            json.dumps({"proto": "frames/1", "type": "end", "stream": "s", "series": "x" * 129}).encode(),
            "bad_field",
            "'series'",
        ),
        (
            json.dumps({"proto": "frames/1", "type": "end", "stream": "s", "meta": {"v": float("nan")}}).encode(),
            "bad_field",
            "NaN",
        ),
        (
            json.dumps({"proto": "frames/1", "type": "end", "stream": "s", "meta": {"n": [1e5] * 400}}).encode(),
            "bad_field",
            "meta",
        ),
    ],
)
def test_refusals_name_the_problem(raw: bytes, code: str, word: str) -> None:
    with pytest.raises(ProtocolError) as info:
        decode_header(raw)
    assert info.value.code.value == code
    assert word in info.value.message


def test_meta_is_measured_as_it_is_echoed_not_as_it_was_sent() -> None:
    # "1e5" is 3 bytes on the wire and 8 ("100000.0") when echoed: the bound is on the echo.
    compact = b'{"proto":"frames/1","type":"end","stream":"s","meta":{"n":[' + b",".join([b"1e5"] * 400) + b"]}}"
    assert len(compact) < MAX_HEADER_BYTES
    with pytest.raises(ProtocolError, match=str(MAX_META_BYTES)):
        decode_header(compact)


def test_non_ascii_text_travels_unescaped() -> None:
    header = Header(type=MessageType.END, stream="камера", series="séance", meta={"note": "é" * 1500})
    raw = encode_header(header)
    assert "камера".encode() in raw and len(raw) < MAX_HEADER_BYTES
    assert decode_header(raw) == header
