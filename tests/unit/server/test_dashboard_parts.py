"""The dashboard's pieces without a server: PNG encoding and display range, the status history's rates, the
preview's pairing of raw and denoised frames, and endpoints a local subscriber connects to."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest

from livedenoise.clients.protocol import Header, MessageType
from livedenoise.clients.status import Endpoints, IngestStatus, StreamStatus, Totals
from livedenoise.server.api.history import StatusHistory
from livedenoise.server.api.png import display_range, downscale, encode_png, to_gray8
from livedenoise.server.api.preview import PENDING_RAW, PreviewFrame, _StreamPreview, connectable
from livedenoise.server.errors import IngestUnavailable


def _pixels(png: bytes) -> np.ndarray:
    pos, idat, ihdr = 8, b"", b""
    while pos < len(png):
        (n,) = struct.unpack(">I", png[pos : pos + 4])
        kind, body = png[pos + 4 : pos + 8], png[pos + 8 : pos + 8 + n]
        assert struct.unpack(">I", png[pos + 8 + n : pos + 12 + n])[0] == zlib.crc32(kind + body)
        idat += body if kind == b"IDAT" else b""
        ihdr = body if kind == b"IHDR" else ihdr
        pos += 12 + n
    w, h = struct.unpack(">II", ihdr[:8])
    return np.frombuffer(zlib.decompress(idat), np.uint8).reshape(h, w + 1)[:, 1:]


def test_png_round_trips_and_refuses_what_it_cannot_write() -> None:
    image = np.random.default_rng(0).integers(0, 256, (7, 13)).astype(np.uint8)
    png = encode_png(image)
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and png.endswith(b"IEND\xaeB`\x82")
    np.testing.assert_array_equal(_pixels(png), image)
    for bad in (image.astype(np.uint16), image[None], np.zeros((0, 4), np.uint8)):
        with pytest.raises(ValueError, match="2-D uint8"):
            encode_png(bad)


def test_display_range_ignores_hot_pixels_and_never_divides_by_zero() -> None:
    image = np.full((100, 100), 100.0, np.float32)
    image[50:60] = 200.0
    image[0, :3] = 65535.0  # hot pixels
    image[1, 0] = np.nan
    lo, hi = display_range(image)
    assert lo == 100.0 and hi == 200.0
    gray = to_gray8(image, (lo, hi))
    assert gray[0, 0] == 255 and gray[1, 0] == 0 and gray[55, 5] == 255 and gray[20, 20] == 0
    assert display_range(np.full((4, 4), 7.0)) == (7.0, 8.0)
    assert display_range(np.full((4, 4), np.nan)) == (0.0, 1.0)


def test_downscale_averages_blocks_to_the_longest_side() -> None:
    image = np.arange(16 * 10, dtype=np.uint16).reshape(16, 10)
    assert downscale(image, 16).shape == (16, 10) and downscale(image, 16).dtype == np.float32
    small = downscale(image, 8)
    assert small.shape == (8, 5)
    assert small[0, 0] == pytest.approx(image[:2, :2].mean())
    assert downscale(np.ones((3, 1000)), 10).shape[1] <= 10  # thinner than a block: sampled


def _stream(skipped: int, errors: int = 0, fps: float = 10.0) -> StreamStatus:
    return StreamStatus(
        series="s", mode="live", shape=[8, 8], dtype="<u2", open=True, frames_in=100, frames_out=90,
        skipped=skipped, errors=errors, rejected=0, series_started=1, backlog=3, fps_in=fps, fps_out=fps,
        latency_ms_p50=4.0, latency_ms_p99=9.0,
    )  # fmt: skip


def _status(instance: str, **streams: StreamStatus) -> IngestStatus:
    totals = Totals(*([0] * 11))
    return IngestStatus(
        pid=1, instance=instance, model=None, provider="cpu", uptime_s=1.0, endpoints=Endpoints("a", "b", "c"),
        threads={}, authentication="none", streams=dict(streams), totals=totals, precision="fp32",
    )  # fmt: skip


def test_history_turns_counters_into_rates_and_keeps_gaps() -> None:
    feed: list[IngestStatus | Exception] = [
        _status("i1", cam=_stream(skipped=50)),  # first sight: its totals are history, not a burst
        _status("i1", cam=_stream(skipped=60, errors=2)),
        IngestUnavailable("down"),
        _status("i2", cam=_stream(skipped=1)),  # restarted: counters start again
    ]

    def source() -> IngestStatus:
        item = feed.pop(0)
        if isinstance(item, Exception):
            raise item
        return item

    history = StatusHistory(source, interval_s=1.0, keep_s=60.0)
    first = history.sample()
    assert first.up and first.streams["cam"].skipped_per_s == 0.0 and first.streams["cam"].backlog == 3
    second = history.sample()
    assert second.streams["cam"].skipped_per_s > 0 and second.streams["cam"].errors_per_s > 0
    gap = history.sample()
    assert not gap.up and gap.streams == {}
    assert history.sample().streams["cam"].skipped_per_s == 0.0
    samples = history.samples()
    assert len(samples) == 4 and history.samples(since=samples[1].t) == samples[2:]


def test_history_keeps_only_its_window() -> None:
    history = StatusHistory(lambda: _status("i", cam=_stream(0)), interval_s=1.0, keep_s=3.0)
    for _ in range(10):
        history.sample()
    assert len(history.samples()) == 4  # keep_s / interval_s + 1
    with pytest.raises(ValueError, match="interval_s"):
        StatusHistory(lambda: _status("i"), interval_s=5.0, keep_s=1.0)


def _frame(index: int, series: str = "s", kind: str = "<u2") -> PreviewFrame:
    header = Header(type=MessageType.FRAME, stream="cam", series=series, index=index, dtype=kind, shape=(2, 2))
    return PreviewFrame(header, memoryview(bytes(4 * np.dtype(kind).itemsize)), received=float(index))


def test_preview_pairs_a_raw_copy_with_its_reply_and_forgets_older_ones() -> None:
    state = _StreamPreview(watched_until=0.0)
    for i in (0, 5, 10):
        state.take_raw(_frame(i))
    state.take_denoised(_frame(3, kind="<f4"))  # no raw copy of frame 3: only the latest denoised changes
    assert state.pair is None and state.denoised is not None and state.denoised.header.index == 3
    state.take_denoised(_frame(5, kind="<f4"))
    assert state.pair is not None and [f.header.index for f in state.pair] == [5, 5]
    assert list(state.pending) == [("s", 10)]  # 0 and 5 will never be answered again
    state.take_raw(_frame(12))
    state.forget_until(("s", 11))  # frame 11 was skipped: the copy of 10 will not pair either
    assert list(state.pending) == [("s", 12)] and state.pending_bytes == 8
    for i in range(13, 13 + 2 * PENDING_RAW):
        state.take_raw(_frame(i))
    assert len(state.pending) == PENDING_RAW and state.pending_bytes == PENDING_RAW * 8


@pytest.mark.parametrize(
    ("bound", "connect"),
    [
        ("tcp://127.0.0.1:5556", "tcp://127.0.0.1:5556"),
        ("tcp://0.0.0.0:5556", "tcp://127.0.0.1:5556"),
        ("tcp://[::]:5556", "tcp://[::1]:5556"),
        ("tcp://10.1.2.3:5556", "tcp://10.1.2.3:5556"),
        ("ipc:///tmp/pub", "ipc:///tmp/pub"),
    ],
)
def test_a_wildcard_bind_is_watched_over_loopback(bound: str, connect: str) -> None:
    assert connectable(bound) == connect
