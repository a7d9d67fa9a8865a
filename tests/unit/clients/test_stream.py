"""StreamClient against a real ROUTER socket on 127.0.0.1 (the imitation ingest in conftest.py)."""

from __future__ import annotations

import numpy as np
import pytest
import zmq

from livedenoise.clients.protocol import MessageType
from livedenoise.clients.stream import ProtocolViolation, ServerSilent, StreamClient, StreamError, StreamRejected


def _movie(t: int = 24, y: int = 16, x: int = 20, dtype: str = "<u2", seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 4000, size=(t, y, x)).astype(dtype)


@pytest.fixture
def client_for():
    clients: list[StreamClient] = []

    def make(server, **kwargs) -> StreamClient:
        kwargs.setdefault("timeout_s", 5.0)
        c = StreamClient(server.endpoint, **kwargs)
        clients.append(c)
        return c

    yield make
    for c in clients:
        c.close()


@pytest.mark.parametrize("dtype", ["|u1", "<u2", "<f4"])
def test_denoise_returns_every_frame_in_order(fake_ingest, client_for, dtype):
    server = fake_ingest(lag=3)
    movie = _movie(dtype=dtype)
    seen: list[int] = []
    fractions: list[float] = []
    result = client_for(server, stream="cam-a").denoise(
        movie, mode="lossless", on_reply=lambda r: seen.append(r.index), progress=fractions.append
    )
    assert result.frames.dtype == np.float32 and result.frames.shape == movie.shape
    np.testing.assert_array_equal(result.frames, 2.0 * movie.astype(np.float32) + 1.0)
    assert result.reply_types == ["frame"] * len(movie)
    assert seen[:-1] == list(range(len(movie))) and seen[-1] is None  # the final `end` reply
    assert fractions[-1] == pytest.approx(1.0) and fractions == sorted(fractions)
    assert np.isfinite(result.latency_ms).all() and (result.server_latency_ms == 1.5).all()
    summary = result.summary()
    assert summary["frames_in"] == summary["frames_out"] == len(movie)
    assert summary["skipped"] == summary["errors"] == summary["rejected"] == 0
    assert result.model == "fake" and summary["fps"] > 0
    start = server.seen.starts[0]
    assert start.meta == {"mode": "lossless"} and start.dtype == np.dtype(dtype).str and start.shape == movie.shape[1:]


def test_flow_control_never_exceeds_max_in_flight(fake_ingest, client_for):
    # lag=3: the server answers nothing before it holds 4 frames, so the credit is always used up.
    server = fake_ingest(lag=3, delay_s=0.002)
    client = client_for(server, max_in_flight=4)
    movie = _movie(t=40)
    result = client.denoise(movie)
    assert result.frames_out == 40
    assert client.max_seen_in_flight == 4
    assert server.seen.max_backlog == 4


def test_without_credit_the_same_server_sees_a_flood(fake_ingest, client_for):
    # The backlog bound above must come from the client: with a large credit the server holds more.
    server = fake_ingest(lag=3, delay_s=0.01)
    client_for(server, max_in_flight=1000).denoise(_movie(t=30))
    assert server.seen.max_backlog > 4


def test_pacing_at_fps_sends_on_schedule(fake_ingest, client_for):
    server = fake_ingest(lag=2)
    fps, n = 100.0, 20
    result = client_for(server).denoise(_movie(t=n), fps=fps)
    assert result.frames_out == n
    assert [i for _, i in server.seen.frames] == list(range(n))
    # Loose lower bound only (no upper bound: the machine may be busy): the last frame leaves on its
    # schedule, (n - 1) / fps after the first, and wall_s runs from the first send to the `end` reply.
    assert result.wall_s >= (n - 1) / fps


def test_out_of_order_reply_is_detected(fake_ingest, client_for):
    server = fake_ingest(lag=1, swap=(5, 6))
    with pytest.raises(ProtocolViolation, match=r"index 6 .*before the reply for index 5"):
        client_for(server).denoise(_movie())


def test_missing_reply_is_detected_at_end(fake_ingest, client_for):
    server = fake_ingest(lag=2, drop_reply=7)
    with pytest.raises(ProtocolViolation, match=r"index 8 .*before the reply for index 7"):
        client_for(server).denoise(_movie())


def test_missing_last_reply_is_detected_by_end(fake_ingest, client_for):
    movie = _movie(t=10)
    server = fake_ingest(lag=2, drop_reply=9)
    with pytest.raises(ProtocolViolation, match=r"'end' reply .* frames \[9\] have no reply"):
        client_for(server).denoise(movie)


def test_duplicate_reply_is_detected(fake_ingest, client_for):
    server = fake_ingest(lag=0, duplicate=3)
    with pytest.raises(ProtocolViolation, match=r"index 3 .*waiting for a reply.*duplicate or never sent"):
        client_for(server).denoise(_movie())


def test_silent_server_times_out_naming_the_oldest_frame(fake_ingest, client_for):
    server = fake_ingest(silent=True)
    client = client_for(server, max_in_flight=3, timeout_s=0.3)
    with pytest.raises(ServerSilent, match=r"index 0 of series"):
        client.denoise(_movie(t=10))
    assert len(server.seen.frames) == 3


def test_server_needing_more_frames_than_the_credit_is_reported(fake_ingest, client_for):
    # A model that needs 4 future frames cannot answer while only 2 frames may be in flight.
    server = fake_ingest(lag=4)
    with pytest.raises(ServerSilent, match="waiting for credit to send frame 2"):
        client_for(server, max_in_flight=2, timeout_s=0.3).denoise(_movie(t=10))


def test_rejections_are_reported_apart_from_the_order(fake_ingest, client_for):
    server = fake_ingest(lag=2, reject={3: "backlog_full"}, fail={5: "inference_failed"}, skip={6, 7})
    movie = _movie(t=12)
    result = client_for(server).denoise(movie, mode="live")
    expected = ["frame"] * 12
    expected[3], expected[5], expected[6], expected[7] = "rejected", "error", "skipped", "skipped"
    assert result.reply_types == expected
    assert [r.index for r in result.rejections] == [3] and result.rejections[0].header.code == "backlog_full"
    assert result.codes == {3: "backlog_full", 5: "inference_failed"}
    assert np.isnan(result.frames[[3, 5, 6, 7]]).all()
    assert np.isfinite(result.frames[[0, 1, 2, 4, 8, 9, 10, 11]]).all()
    s = result.summary()
    assert (s["frames_out"], s["skipped"], s["errors"], s["rejected"]) == (8, 2, 1, 1)


def test_refused_start_raises_with_the_code(fake_ingest, client_for):
    server = fake_ingest(reject_start="too_many_streams")
    with pytest.raises(StreamRejected, match="too_many_streams") as info:
        client_for(server).denoise(_movie(t=4))
    assert info.value.code == "too_many_streams"


def test_low_level_api_with_index_gaps(fake_ingest, client_for):
    server = fake_ingest(lag=1)
    client = client_for(server, stream="cam-b")
    movie = _movie(t=6, dtype="<f4")
    client.start("s1", movie.dtype, movie.shape[1:], meta={"objective": "20x"})
    for index in (0, 2, 5):  # the camera dropped frames 1, 3 and 4
        client.send(movie[index], index, t_ns=1000 + index)
    client.end()
    replies = []
    for reply in client.replies(timeout=5.0):
        replies.append(reply)
        if reply.type is MessageType.END:
            break
    assert [(r.type, r.index) for r in replies] == [
        (MessageType.FRAME, 0),
        (MessageType.FRAME, 2),
        (MessageType.FRAME, 5),
        (MessageType.END, None),
    ]
    for r in replies[:3]:
        np.testing.assert_array_equal(r.frame, 2.0 * movie[r.index] + 1.0)
        assert r.header.t_ns == 1000 + r.index and r.header.series == "s1" and r.rtt_ms is not None
    assert server.seen.starts[0].meta == {"objective": "20x"}
    assert client.in_flight == 0


def test_two_series_back_to_back_on_one_client(fake_ingest, client_for):
    server = fake_ingest(lag=2)
    client = client_for(server)
    a = client.denoise(_movie(t=8, seed=1), series="first")
    b = client.denoise(_movie(t=5, seed=2), series="second")
    assert (a.frames_out, b.frames_out) == (8, 5)
    assert [h.series for h in server.seen.starts] == ["first", "second"]


def test_client_side_checks_refuse_bad_calls(fake_ingest, client_for):
    client = client_for(fake_ingest())
    with pytest.raises(StreamError, match="before start"):
        client.send(np.zeros((4, 4), np.uint16), 0)
    with pytest.raises(ValueError, match="dtype '<i8' cannot be streamed"):
        client.start("s", np.int64, (4, 4))
    with pytest.raises(ValueError, match="mode must be"):
        client.start("s", np.uint16, (4, 4), mode="fast")
    client.start("s", np.uint16, (4, 4))
    with pytest.raises(ValueError, match=r"frame 0 is <f4 \[4, 4\] but series 's' was started as <u2 \[4, 4\]"):
        client.send(np.zeros((4, 4), np.float32), 0)
    client.send(np.zeros((4, 4), np.uint16), 3)
    with pytest.raises(ValueError, match="must increase strictly: 3 after 3"):
        client.send(np.zeros((4, 4), np.uint16), 3)
    with pytest.raises(ValueError, match="max_in_flight"):
        StreamClient("tcp://127.0.0.1:1", max_in_flight=0)


def test_unreachable_server_is_reported(free_port):
    # Nothing listens on this port: the frames queue locally, no reply comes, the client says so.
    with StreamClient(f"tcp://127.0.0.1:{free_port()}", timeout_s=0.3, max_in_flight=2) as client:
        with pytest.raises(ServerSilent, match="no reply from tcp://127.0.0.1"):
            client.denoise(_movie(t=5))


def test_context_can_be_shared():
    ctx = zmq.Context()
    try:
        with StreamClient("tcp://127.0.0.1:1", context=ctx) as client:
            assert client.in_flight == 0 and client.series is None
    finally:
        ctx.term()
