"""Bad messages in the middle of a good stream: an immediate error each, nothing else disturbed."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from livedenoise.clients.model_spec import WindowSpec
from livedenoise.server.engine.loader import load_engine
from livedenoise.server.engine.offline import denoise_movie
from livedenoise.server.settings import ServerSettings

GOOD = ("good", "s1")
SHAPE = (32, 32)


@pytest.fixture
def model_path(tmp_path: Path, onnx_models: ModuleType) -> Path:
    return onnx_models.make_mix_model(tmp_path / "mix.onnx", WindowSpec(2, 2, 1))


def header(**fields: Any) -> bytes:
    obj = {"proto": "frames/1", "type": "frame", "stream": "good", "series": "s1", "dtype": "<u2", "shape": list(SHAPE)}
    obj.update(fields)
    return json.dumps(obj).encode()


def test_each_bad_message_gets_its_error_and_the_good_stream_is_intact(
    settings: ServerSettings, model_path: Path, run_service: Callable[..., Any], make_sender: Callable[[str], Any]
) -> None:
    limits = {"max_frame_bytes": 64 * 64 * 2, "max_streams": 2}
    service = run_service(settings.model_copy(update=limits), model_path, "mix")
    sender = make_sender(service.zmq_endpoint)
    movie = np.random.default_rng(3).integers(0, 2000, (40, *SHAPE)).astype(np.uint16)
    good_payload = movie[0].tobytes()

    # (what is sent, expected code, a word the message must contain, echoed stream, echoed index)
    bad: list[tuple[list[bytes], str, str, str, int | None]] = [
        ([header(index=100)], "bad_parts", "2 parts", "good", 100),
        ([header(index=100), good_payload, b"extra"], "bad_parts", "got 3", "good", 100),
        ([b"{not json", good_payload], "bad_json", "JSON", "?", None),
        ([header(index=100, proto="frames/2"), good_payload], "bad_proto", "frames/2", "good", 100),
        ([header(index=100), good_payload[:-2]], "payload_size", "2046", "good", 100),
        ([header(index=100, shape=[32, 16]), movie[0][:, :16].tobytes()], "shape_mismatch", "[32, 16]", "good", 100),
        ([header(index=100, dtype="<i2"), good_payload], "dtype_mismatch", "'<i2'", "good", 100),
        ([header(index=5), good_payload], "index_not_increasing", "index 5", "good", 5),
        ([header(index=0, stream="ghost"), good_payload], "no_start", "ghost", "ghost", 0),
        ([header(type="end", stream="ghost"), b""], "no_start", "ghost", "ghost", None),
        ([header(index=0, series="other"), good_payload], "no_start", "'other'", "good", 0),
        # Announced too large: refused from the header (a payload that large would close the connection).
        ([header(index=100, shape=[128, 128]), good_payload], "frame_too_large", "32768", "good", 100),
        (
            [header(type="start", stream="huge", shape=[128, 128]), b""],
            "frame_too_large",
            "max_frame_bytes",
            "huge",
            None,
        ),
        ([header(type="skipped", index=100), b""], "bad_type", "skipped", "good", 100),
        ([header(type="start", stream="cam2", meta={"mode": "fast"}), b""], "bad_field", "mode", "cam2", None),
        ([header(type="start", stream="cam3"), b""], "too_many_streams", "max_streams", "cam3", None),
    ]

    sender.start(*GOOD, SHAPE, "<u2")
    sender.start("cam2", "a", SHAPE, "<u2")  # second active stream: the limit (2) is reached
    errors: list[Any] = []
    others: list[Any] = []
    for i, frame in enumerate(movie):
        sender.frame(*GOOD, i, frame)
        if i == 10:
            for parts, *_ in bad:
                sender.raw(parts)
    sender.end(*GOOD)
    for reply in sender.until_end(*GOOD):
        (errors if reply.type == "error" else others).append(reply)

    assert len(errors) == len(bad)
    for reply, (_, code, word, stream, index) in zip(errors, bad):
        assert reply.header.code == code
        assert word in (reply.header.message or ""), (code, reply.header.message)
        assert reply.header.stream == stream
        assert reply.header.index == index
    engine = load_engine(model_path, "cpu", "mix")
    frames = [r for r in others if r.type == "frame"]
    assert [r.header.index for r in frames] == list(range(40))
    np.testing.assert_array_equal(np.stack([r.frame for r in frames]), denoise_movie(engine, movie))
    assert others[-1].type == "end" and len(others) == 41

    status = service.status()
    good = status.streams["good"]
    assert (good.frames_in, good.frames_out, good.errors, good.skipped) == (40, 40, 0, 0)
    on_good = sum(1 for _, _, _, stream, _ in bad if stream == "good")
    assert good.rejected == on_good
    by_code = status.totals.rejected_by_code
    for code in {b[1] for b in bad}:
        assert by_code[code] == sum(1 for b in bad if b[1] == code), code
    assert status.totals.rejected == len(bad)
    assert "ghost" not in status.streams and "cam3" not in status.streams


def test_lossless_backlog_full_refuses_then_recovers(
    settings: ServerSettings, model_path: Path, run_service: Callable[..., Any], make_sender: Callable[[str], Any],
    gated_engine_cls: Any, wait: Callable[..., None],
) -> None:  # fmt: skip
    engine = gated_engine_cls(load_engine(model_path, "cpu", "mix"))
    service = run_service(settings.model_copy(update={"max_buffered_frames": 8}), engine=engine)
    sender = make_sender(service.zmq_endpoint)
    movie = np.random.default_rng(4).integers(0, 2000, (12, 16, 16)).astype(np.uint16)
    sender.start("cam", "s", movie.shape[1:], "<u2", mode="lossless")
    for i, frame in enumerate(movie):
        sender.frame("cam", "s", i, frame)
    refused = [sender.recv() for _ in range(4)]  # the engine is held: frames 8..11 find the buffer full
    assert [(r.header.code, r.header.index) for r in refused] == [("backlog_full", i) for i in range(8, 12)]
    engine.gate.set()
    sender.end("cam", "s")
    replies = sender.until_end("cam", "s")
    frames = [r for r in replies if r.type == "frame"]
    assert [r.header.index for r in frames] == list(range(8))
    np.testing.assert_array_equal(np.stack([r.frame for r in frames]), denoise_movie(engine.inner, movie[:8]))
    assert service.status().totals.rejected_by_code == {"backlog_full": 4}
