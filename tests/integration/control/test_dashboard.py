"""The dashboard's server side against a real control plane and a real ingest service: the page, the status
history, the preview read from the PUB port (raw copies only while leased, decimated), and its auth rules."""

from __future__ import annotations

import base64
import contextlib
import struct
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import zmq

from livedenoise.clients.control import ControlClient
from livedenoise.clients.keys import ClientKeys, create_key_pair, load_key_pair, load_public_key
from livedenoise.clients.stream import StreamClient
from livedenoise.server.api.app import create_app
from livedenoise.server.api.png import display_range, downscale, to_gray8
from livedenoise.server.errors import InvalidRequest
from livedenoise.server.ingest.control import Command, IngestControlClient
from livedenoise.server.ingest.router import RAW_PREVIEW_FPS, RAW_TOPIC_PREFIX
from livedenoise.server.ingest.service import IngestService
from livedenoise.server.settings import ServerSettings

TOKEN = "dashboard-token"


def decode_png(data: bytes) -> np.ndarray:
    """The pixels of an 8-bit greyscale, unfiltered PNG (what the server writes)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks = 8, {}
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        assert struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])[0] == zlib.crc32(kind + body)
        chunks[kind] = chunks.get(kind, b"") + body
        pos += 12 + length
    w, h, depth, colour = struct.unpack(">IIBB", chunks[b"IHDR"][:10])
    assert (depth, colour) == (8, 0)
    rows = np.frombuffer(zlib.decompress(chunks[b"IDAT"]), dtype=np.uint8).reshape(h, w + 1)
    assert not rows[:, 0].any()  # filter "none" on every row
    return rows[:, 1:]


def data_uri_png(uri: str) -> np.ndarray:
    prefix = "data:image/png;base64,"
    assert uri.startswith(prefix)
    return decode_png(base64.b64decode(uri[len(prefix) :]))


@contextlib.contextmanager
def streaming(endpoint: str, movie: np.ndarray, *, fps: float, stream: str = "cam0", **kw: Any) -> Iterator[dict]:
    """Stream ``movie`` over and over on a thread until the block exits; yields the replies by (series, index)."""
    replies: dict[tuple[str, int], Any] = {}
    stop = threading.Event()
    failures: list[BaseException] = []

    def run() -> None:
        try:
            with StreamClient(endpoint, stream=stream, **kw) as client:
                n = 0
                while not stop.is_set():
                    n += 1
                    frames = iter(movie)
                    client.stream_frames(
                        frames, dtype=movie.dtype, shape=movie.shape[1:], series=f"{stream}-run{n}", fps=fps,
                        on_reply=lambda r: replies.__setitem__((r.header.series, r.header.index), r),
                        stop=stop.is_set,
                    )  # fmt: skip
        except BaseException as exc:  # surfaced by the test, not lost on the thread
            failures.append(exc)

    thread = threading.Thread(target=run, name="test-camera", daemon=True)
    thread.start()
    try:
        yield replies
    finally:
        stop.set()
        thread.join(30)
        assert not failures, failures


@pytest.fixture
def movie() -> np.ndarray:
    rng = np.random.default_rng(3)
    y, x = np.mgrid[:48, :40]
    clean = 300 + 200 * np.exp(-((y - 20) ** 2 + (x - 15) ** 2) / 60)
    return rng.poisson(np.broadcast_to(clean, (40, 48, 40))).astype(np.uint16)


@pytest.fixture
def served(client: ControlClient, model_file: Callable[..., Path]) -> str:
    model = client.upload_model(model_file(seed=1))
    client.load_model(model.id)
    return model.id


def test_the_page_and_its_files_are_served_from_the_package_with_a_strict_policy(start_server) -> None:
    url = start_server(token=TOKEN)  # public static content, like the API's own docs page
    page = httpx.get(f"{url}/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert '<script src="/dashboard/dashboard.js"' in page.text and "http" not in page.text.split("<body>")[0]
    csp = page.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    for name, kind in (("dashboard.js", "text/javascript"), ("dashboard.css", "text/css")):
        asset = httpx.get(f"{url}/dashboard/{name}")
        assert asset.status_code == 200 and asset.headers["content-type"].startswith(kind), name
        assert "http://" not in asset.text and "https://" not in asset.text, f"{name} must not load anything"
    for bad in ("index.html", "..%2Fapp.py", "missing.js"):
        assert httpx.get(f"{url}/dashboard/{bad}").status_code == 404, bad
    assert "innerHTML" not in httpx.get(f"{url}/dashboard/dashboard.js").text  # server data only as text


def test_history_samples_each_stream_every_second(
    client: ControlClient, served: str, ingest: IngestService, movie: np.ndarray, server: str, wait
) -> None:
    with streaming(ingest.zmq_endpoint, movie, fps=40):

        def busy_sample() -> dict | None:
            samples = httpx.get(f"{server}/v1/status/history").json()["samples"]
            hits = [s for s in samples if s["up"] and s["streams"].get("cam0", {}).get("fps_out", 0) > 5]
            return hits[-1] if hits else None

        sample = wait(busy_sample, timeout_s=30, what="a history sample of cam0 streaming")
    assert sample["model"] == served
    cam = sample["streams"]["cam0"]
    assert cam["latency_ms_p50"] is not None and cam["latency_ms_p99"] >= cam["latency_ms_p50"]
    assert cam["skipped_per_s"] == 0 and cam["errors_per_s"] == 0
    history = httpx.get(f"{server}/v1/status/history").json()
    assert history["interval_s"] == 1.0 and history["keep_s"] == 300.0
    times = [s["t"] for s in history["samples"]]
    assert times == sorted(times) and len(times) >= 2
    assert 0.5 < np.median(np.diff(times)) < 2.0
    newer = httpx.get(f"{server}/v1/status/history", params={"since": times[-2]}).json()["samples"]
    assert [s["t"] for s in newer][:1] == times[-1:]


def test_the_preview_pairs_raw_and_denoised_of_one_frame_read_from_pub(
    client: ControlClient, served: str, ingest: IngestService, movie: np.ndarray, server: str, wait
) -> None:
    assert httpx.get(f"{server}/v1/preview", params={"stream": "cam0"}).json()["raw"] is None  # starts watching
    with streaming(ingest.zmq_endpoint, movie, fps=40) as replies:

        def paired() -> dict | None:
            p = httpx.get(f"{server}/v1/preview", params={"stream": "cam0", "max_side": 32}).json()
            return p if p["paired"] else None

        first = wait(paired, timeout_s=30, what="a paired preview")
        later = wait(
            lambda: (p := paired()) and (p["raw"]["series"], p["raw"]["index"]) != (first["raw"]["series"], first["raw"]["index"]) and p,
            timeout_s=30, what="the preview to move on",
        )  # fmt: skip
    for p in (first, later):
        raw, den = p["raw"], p["denoised"]
        assert (raw["series"], raw["index"]) == (den["series"], den["index"])
        assert raw["shape"] == [48, 40] and raw["dtype"] == "<u2" and den["dtype"] == "<f4"
        assert den["model"] == served and den["latency_ms"] is not None
        # The images are those frames, downscaled (48 -> 24 rows: factor 2) in the denoised frame's range.
        reply = replies[(den["series"], den["index"])]
        expected_den = downscale(reply.frame, 32)
        value_range = display_range(expected_den)
        assert p["display"] == pytest.approx(list(value_range))
        np.testing.assert_array_equal(data_uri_png(den["png"]), to_gray8(expected_den, value_range))
        expected_raw = to_gray8(downscale(movie[raw["index"]], 32), value_range)
        np.testing.assert_array_equal(data_uri_png(raw["png"]), expected_raw)
    png = httpx.get(f"{server}/v1/preview.png", params={"stream": "cam0", "kind": "raw", "max_side": 512})
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    assert decode_png(png.content).shape == (48, 40)
    missing = httpx.get(f"{server}/v1/preview.png", params={"stream": "nobody"})
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"


def test_preview_needs_the_token_when_one_is_set_and_reads_stay_open(start_server) -> None:
    url = start_server(token=TOKEN)
    for path in ("/v1/preview", "/v1/preview.png"):
        for header in (None, "Bearer wrong", f"Basic {TOKEN}"):
            headers = {"Authorization": header} if header else {}
            refused = httpx.get(f"{url}{path}", params={"stream": "cam0"}, headers=headers)
            assert refused.status_code == 401, (path, header)
            assert refused.json()["error"]["code"] == "unauthorized"
    ok = httpx.get(f"{url}/v1/preview", params={"stream": "cam0"}, headers={"Authorization": f"Bearer {TOKEN}"})
    assert ok.status_code == 200 and ok.json()["paired"] is False
    assert httpx.get(f"{url}/v1/status/history").status_code == 200  # a read, open like /v1/status
    assert httpx.get(f"{url}/").status_code == 200


def test_without_ingest_the_data_endpoints_answer_503(start_server) -> None:
    url = start_server(with_ingest=False)
    for path in ("/v1/status/history", "/v1/preview?stream=cam0"):
        response = httpx.get(f"{url}{path}")
        assert response.status_code == 503 and response.json()["error"]["code"] == "ingest_unavailable", path


def _raw_copies(sub: zmq.Socket[Any], seconds: float) -> list[list[bytes]]:
    got, deadline = [], time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        if sub.poll(int(left * 1000) + 1):
            parts = sub.recv_multipart()
            if parts[0].startswith(RAW_TOPIC_PREFIX):
                got.append(parts)
    return got


def test_raw_copies_go_to_pub_only_while_leased_and_at_most_a_few_per_second(
    ingest: IngestService, model_file: Callable[..., Path], movie: np.ndarray
) -> None:
    ingest.load_model(model_file(seed=2), "m-000000000002")
    control = IngestControlClient(ingest.control_endpoint, ingest.control_secret)
    ctx = zmq.Context()
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.LINGER, 0)
    sub.setsockopt(zmq.SUBSCRIBE, b"")  # everything: stream replies and raw copies
    sub.connect(ingest.pub_endpoint)
    try:
        with streaming(ingest.zmq_endpoint, movie, fps=50):
            # Replies reaching the subscriber prove its subscription is in place before anything is counted.
            assert sub.poll(10_000), "no reply reached the subscriber"
            assert _raw_copies(sub, 1.5) == [], "raw copies without a lease"
            lease = control.preview(2.0)
            assert lease["seconds"] == 2.0 and lease["pub"] == ingest.pub_endpoint
            assert lease["instance"] == ingest.instance and lease["authentication"] == "none"
            copies = _raw_copies(sub, 3.5)
            after = _raw_copies(sub, 1.0)
    finally:
        sub.close()
        ctx.term()
    assert 2.0 * RAW_PREVIEW_FPS * 0.6 <= len(copies) <= 2.0 * RAW_PREVIEW_FPS + 2, len(copies)
    assert after == [], "raw copies after the lease ended"
    for topic, header, payload in copies:
        assert topic == RAW_TOPIC_PREFIX + b"cam0"
        index = int(header.split(b'"index":')[1].split(b",")[0])
        assert payload == movie[index].tobytes()  # the client's own pixels


def test_a_bad_preview_request_is_refused(ingest: IngestService) -> None:
    control = IngestControlClient(ingest.control_endpoint, ingest.control_secret)
    for bad in (-1, "5", True, None):
        with pytest.raises(InvalidRequest):
            control.request(Command.PREVIEW, seconds=bad)
    assert control.preview(1e9)["seconds"] == 60.0  # capped


def test_the_preview_works_when_pub_takes_curve_keys(
    tmp_home: Path, model_file, movie: np.ndarray, serve_app, wait
) -> None:
    keys = tmp_home / "keys"
    create_key_pair(keys, "server")
    create_key_pair(keys / "clients", "rig1")
    settings = ServerSettings(
        home=tmp_home, zmq_port=0, pub_port=0, control_port=0, curve_secret_key=keys / "server.key_secret"
    )
    settings.ensure_dirs()
    service = IngestService(settings, model_file(seed=3), "m-000000000003")
    service.start()
    try:
        assert service.status().authentication == "curve"
        client = IngestControlClient(service.control_endpoint, service.control_secret)
        curve = ClientKeys(load_public_key(keys / "server.key"), load_key_pair(keys / "clients" / "rig1.key_secret"))
        with serve_app(create_app(settings, ingest=client)) as url, streaming(
            service.zmq_endpoint, movie, fps=40, curve=curve
        ):  # fmt: skip

            def paired() -> bool:
                return bool(httpx.get(f"{url}/v1/preview", params={"stream": "cam0"}).json()["paired"])

            wait(paired, timeout_s=30, what="a paired preview through CURVE")
    finally:
        service.stop()
