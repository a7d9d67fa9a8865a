"""Model endpoints against a real uvicorn server and a real ingest process (in-thread)."""

from __future__ import annotations

from pathlib import Path

import httpx
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from livedenoise.clients.control import ControlClient, ControlError
from livedenoise.clients.stream import StreamClient
from livedenoise.server.ingest.service import IngestService


def test_health(client: ControlClient) -> None:
    assert client.health()["status"] == "ok"


def test_upload_list_load_and_status(client: ControlClient, model_file, ingest: IngestService) -> None:
    path = model_file(seed=1)

    uploaded = client.upload_model(path, name="tiny mix")

    assert uploaded.id.startswith("m-") and uploaded.name == "tiny mix" and uploaded.spec["method"] == "test_mix"
    assert [m.id for m in client.models()] == [uploaded.id]
    assert client.get_model(uploaded.id).sha256 == uploaded.sha256
    assert client.status().model is None

    loaded = client.load_model(uploaded.id)

    assert loaded.active and loaded.id == uploaded.id
    status = client.status()
    assert status.model.id == uploaded.id and status.control.active_model == uploaded.id
    assert status.provider == "cpu"
    assert [m.active for m in client.models()] == [True]
    # The ingest process really serves it: one frame in per frame out, tagged with the model id.
    movie = np.random.default_rng(0).integers(0, 1000, size=(6, 16, 16)).astype("<u2")
    stream = StreamClient(ingest.zmq_endpoint, stream="cam-test", timeout_s=10.0)
    try:
        result = stream.denoise(movie)
    finally:
        stream.close()
    assert result.frames.shape == movie.shape
    counters = client.status().streams["cam-test"]
    assert counters.frames_in == 6 and counters.frames_out == 6


@pytest.mark.parametrize("kind", ["corrupt", "no_spec", "not_onnx"])
def test_bad_uploads_are_refused_and_registry_unchanged(
    client: ControlClient, onnx_models, tmp_path: Path, settings, kind: str
) -> None:
    path = tmp_path / f"{kind}.onnx"
    if kind == "corrupt":
        onnx_models.write_corrupt_model(path)
    elif kind == "no_spec":
        onnx_models.write_model_without_spec(path)
    else:
        path.write_text("just some text, not a model\n")

    with pytest.raises(ControlError) as info:
        client.upload_model(path)

    assert info.value.status == 422 and info.value.code == "invalid_model"
    assert client.models() == []
    assert sorted(p.name for p in settings.models_dir.iterdir()) == []


def test_upload_without_file_is_a_validation_error(server: str) -> None:
    response = httpx.post(f"{server}/v1/models", data={"name": "x"})
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_error" and "file" in response.json()["error"]["message"]


def test_unknown_model_is_404(client: ControlClient) -> None:
    for call in (client.get_model, client.load_model, client.delete_model):
        with pytest.raises(ControlError) as info:
            call("m-000000000000")
        assert (info.value.status, info.value.code) == (404, "unknown_model")


def test_delete_active_is_409_and_delete_other_works(client: ControlClient, model_file) -> None:
    active = client.upload_model(model_file(seed=2))
    other = client.upload_model(model_file(seed=3))
    client.load_model(active.id)

    with pytest.raises(ControlError) as info:
        client.delete_model(active.id)
    assert (info.value.status, info.value.code) == (409, "conflict")

    assert client.delete_model(other.id).id == other.id
    assert [m.id for m in client.models()] == [active.id]


def test_failed_load_changes_nothing(client: ControlClient, model_file, settings) -> None:
    good = client.upload_model(model_file(seed=4))
    bad = client.upload_model(model_file(seed=5))
    client.load_model(good.id)
    # Corrupt the stored file behind the registry's back: the ingest process must refuse it.
    (settings.models_dir / f"{bad.id}.onnx").write_bytes(b"garbage")

    with pytest.raises(ControlError) as info:
        client.load_model(bad.id)

    assert info.value.status == 422 and info.value.code == "invalid_model"
    status = client.status()
    assert status.model.id == good.id and status.control.active_model == good.id


def test_status_without_ingest_is_503(start_server) -> None:
    url = start_server(with_ingest=False)
    response = httpx.get(f"{url}/v1/status")
    assert response.status_code == 503 and response.json()["error"]["code"] == "ingest_unavailable"


def test_status_when_ingest_does_not_answer_is_503(start_server, ingest: IngestService) -> None:
    url = start_server(ingest_timeout_s=0.5)
    ingest.stop()
    with ControlClient(url, timeout=30) as control:
        with pytest.raises(ControlError) as info:
            control.status()
        assert (info.value.status, info.value.code) == (503, "ingest_unavailable")
        up = next(f for f in text_string_to_metric_families(control.metrics()) if f.name == "livedenoise_ingest_up")
        assert [s.value for s in up.samples] == [0]


def test_hot_swap_through_the_api_while_a_stream_runs(client: ControlClient, model_file, ingest: IngestService) -> None:
    """POST /v1/models/{id}/load mid-stream: no frame lost, replies switch model once, order kept."""
    import threading

    first = client.upload_model(model_file(seed=1))
    second = client.upload_model(model_file(seed=2))
    client.load_model(first.id)
    movie = np.random.default_rng(3).integers(0, 4000, size=(300, 24, 20)).astype("<u2")
    models: list[str | None] = []
    halfway = threading.Event()

    def on_reply(reply) -> None:  # type: ignore[no-untyped-def]
        models.append(reply.header.model)
        if len(models) >= 60:
            halfway.set()

    results = []
    stream = StreamClient(ingest.zmq_endpoint, stream="cam-swap", timeout_s=20.0)
    sender = threading.Thread(target=lambda: results.append(stream.denoise(movie, fps=150, on_reply=on_reply)))
    sender.start()
    try:
        assert halfway.wait(20), "the stream never got going"
        assert client.load_model(second.id).active
    finally:
        sender.join(60)
        stream.close()

    (result,) = results
    assert result.frames_in == result.frames_out == 300
    frame_models = [m for m in models if m is not None]
    assert len(frame_models) == 300
    switch = frame_models.index(second.id)
    assert 60 <= switch < 300, "the swap happened mid-stream"
    assert frame_models[:switch] == [first.id] * switch and frame_models[switch:] == [second.id] * (300 - switch)
    assert client.status().model.id == second.id


def test_upload_over_the_limit_is_413(settings, serve_app, model_file) -> None:
    from livedenoise.server.api.app import create_app

    small = settings.model_copy(update={"max_upload_bytes": 64})
    with serve_app(create_app(small)) as url, ControlClient(url) as client:
        with pytest.raises(ControlError) as excinfo:
            client.upload_model(model_file(seed=5))
        assert excinfo.value.status == 413 and excinfo.value.code == "upload_too_large"
        assert client.models() == []
