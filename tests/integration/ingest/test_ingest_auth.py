"""CURVE authentication of the frames and PUB ports, and series owned by the peer that opened them."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
import zmq

from livedenoise.clients.keys import ClientKeys, create_key_pair, load_key_pair, load_public_key
from livedenoise.clients.model_spec import WindowSpec
from livedenoise.clients.stream import ServerSilent, StreamClient
from livedenoise.server.engine.loader import load_engine
from livedenoise.server.engine.offline import denoise_movie
from livedenoise.server.ingest.service import IngestService
from livedenoise.server.settings import ServerSettings

MOVIE = np.random.default_rng(5).integers(0, 3000, (12, 16, 16)).astype(np.uint16)


@pytest.fixture
def model_path(tmp_path: Path, onnx_models: ModuleType) -> Path:
    return onnx_models.make_mix_model(tmp_path / "mix.onnx", WindowSpec(1, 1, 1))


@pytest.fixture
def keys(tmp_path: Path) -> dict[str, Path]:
    """A server pair, two allowed clients (rig1, rig2) and one stranger."""
    out: dict[str, Path] = {}
    for name in ("server", "rig1", "rig2", "stranger"):
        out[name] = create_key_pair(tmp_path / "keys", name)[1]
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    for name in ("rig1", "rig2"):
        (allowed / f"{name}.key").write_bytes((tmp_path / "keys" / f"{name}.key").read_bytes())
    out["allowed"] = allowed
    return out


def _client_keys(keys: dict[str, Path], who: str) -> ClientKeys:
    return ClientKeys.from_files(keys["server"].with_suffix(".key"), keys[who])


@pytest.fixture
def curve_service(
    settings: ServerSettings, model_path: Path, keys: dict[str, Path], run_service: Callable[..., IngestService]
) -> IngestService:
    update = {"curve_secret_key": keys["server"], "curve_clients_dir": keys["allowed"]}
    return run_service(settings.model_copy(update=update), model_path, "mix")


def test_key_pairs_are_written_private_and_never_overwritten(tmp_path: Path) -> None:
    public, secret = create_key_pair(tmp_path, "rig")
    assert stat.S_IMODE(os.stat(secret).st_mode) == 0o600
    pair = load_key_pair(secret)
    assert load_public_key(public) == pair.public and len(pair.secret) == 40
    with pytest.raises(FileExistsError, match="rig.key"):
        create_key_pair(tmp_path, "rig")
    with pytest.raises(ValueError, match="no secret key"):
        load_key_pair(public)
    with pytest.raises(FileNotFoundError, match="keys create"):
        load_key_pair(tmp_path / "missing.key_secret")
    (tmp_path / "junk.key").write_text("not a key")
    with pytest.raises(ValueError, match="junk.key"):
        load_public_key(tmp_path / "junk.key")


def test_an_allowed_client_streams_and_others_cannot_connect(
    curve_service: IngestService, keys: dict[str, Path], model_path: Path
) -> None:
    assert curve_service.status().authentication == "curve"
    with StreamClient(curve_service.zmq_endpoint, stream="cam", curve=_client_keys(keys, "rig1")) as client:
        result = client.denoise(MOVIE)
    np.testing.assert_array_equal(result.frames, denoise_movie(load_engine(model_path, "cpu", "mix"), MOVIE))

    for curve in (_client_keys(keys, "stranger"), None):  # a key not in the allow-list, and no key at all
        with StreamClient(curve_service.zmq_endpoint, stream="x", curve=curve, timeout_s=1.0) as client:
            with pytest.raises(ServerSilent):
                client.denoise(MOVIE[:3])
    assert curve_service.status().totals.frames_in == len(MOVIE)


def test_a_series_belongs_to_the_client_that_opened_it(
    curve_service: IngestService, keys: dict[str, Path], make_sender: Callable[..., Any]
) -> None:
    owner = make_sender(curve_service.zmq_endpoint, _client_keys(keys, "rig1"))
    other = make_sender(curve_service.zmq_endpoint, _client_keys(keys, "rig2"))
    owner.start("cam", "run", (16, 16), "<u2")
    owner.frame("cam", "run", 0, MOVIE[0])
    other.start("cam", "hijack", (16, 16), "<u2")
    other.frame("cam", "run", 1, MOVIE[1])
    other.end("cam", "run")
    codes = sorted(other.recv().header.code for _ in range(3))
    assert codes == ["not_owner"] * 3
    for i in range(1, 4):
        owner.frame("cam", "run", i, MOVIE[i])
    owner.end("cam", "run")
    replies = owner.until_end("cam", "run")
    assert [(r.type, r.header.index) for r in replies] == [("frame", i) for i in range(4)] + [("end", None)]
    assert curve_service.status().totals.rejected_by_code == {"not_owner": 3}


def test_without_keys_frames_must_come_from_the_starting_connection_and_a_new_start_takes_over(
    settings: ServerSettings,
    model_path: Path,
    run_service: Callable[..., IngestService],
    make_sender: Callable[[str], Any],
) -> None:
    service = run_service(settings, model_path, "mix")
    first, second = make_sender(service.zmq_endpoint), make_sender(service.zmq_endpoint)
    first.start("cam", "a", (16, 16), "<u2")
    first.frame("cam", "a", 0, MOVIE[0])
    second.frame("cam", "a", 1, MOVIE[1])
    reply = second.recv()
    assert (reply.header.code, reply.header.index) == ("not_owner", 1)
    assert "another connection" in (reply.header.message or "")
    second.start("cam", "b", (16, 16), "<u2")  # e.g. the same program after reconnecting: allowed
    replies = first.until_end("cam", "a")
    assert [r.type for r in replies] == ["frame", "end"] and replies[-1].header.reason == "new_start"


def test_the_preview_port_is_authenticated_too(
    curve_service: IngestService, keys: dict[str, Path], zmq_context: zmq.Context[Any]
) -> None:
    def subscriber(curve: ClientKeys | None) -> zmq.Socket[Any]:
        sub = zmq_context.socket(zmq.SUB)
        sub.setsockopt(zmq.LINGER, 0)
        if curve is not None:
            curve.apply(sub)
        sub.setsockopt(zmq.SUBSCRIBE, b"")
        sub.connect(curve_service.pub_endpoint)
        return sub

    allowed, anonymous = subscriber(_client_keys(keys, "rig2")), subscriber(None)
    try:
        with StreamClient(curve_service.zmq_endpoint, stream="cam", curve=_client_keys(keys, "rig1")) as client:
            # The slow-joiner: stream until the subscriber sees a copy (its handshake takes a moment).
            for _ in range(50):
                client.denoise(MOVIE[:4])
                if allowed.poll(100):
                    break
        assert allowed.poll(1000), "the allowed subscriber got no preview"
        topic, header, _payload = allowed.recv_multipart()
        assert topic == b"cam" and b'"stream":"cam"' in header
        assert not anonymous.poll(200), "a subscriber without keys got a preview"
    finally:
        allowed.close()
        anonymous.close()


def test_off_loopback_curve_is_on_with_a_server_key_created_once(
    tmp_path: Path, run_service: Callable[..., IngestService]
) -> None:
    settings = ServerSettings(
        home=tmp_path / "home", bind="0.0.0.0", api_token="t" * 32, zmq_port=0, pub_port=0, control_port=0
    )
    service = run_service(settings)
    assert service.status().authentication == "curve"
    key = tmp_path / "home" / "keys" / "server.key_secret"
    assert key.exists() and stat.S_IMODE(os.stat(key).st_mode) == 0o600
    assert (tmp_path / "home" / "keys" / "clients").is_dir()
