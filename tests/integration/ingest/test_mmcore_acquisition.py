"""Micro-Manager acquisitions streamed as they are acquired: a real pymmcore-plus MDA on the simulated
(Python) camera, through MMCoreStreamer, into a real ingest with ONNX Runtime; OME-Zarr stores beside."""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
import zmq

pytest.importorskip("pymmcore_plus")
pytest.importorskip("zarr")
useq = pytest.importorskip("useq")

from livedenoise.clients.mmcore import MMCoreStreamer, stream_label  # noqa: E402
from livedenoise.clients.mmcore_sim import simulated_microscope  # noqa: E402
from livedenoise.clients.model_spec import WindowSpec  # noqa: E402
from livedenoise.clients.ome_zarr import read_ome_zarr, read_ome_zarr_scale  # noqa: E402
from livedenoise.clients.protocol import UNKNOWN_STREAM, MessageType, decode_header  # noqa: E402
from livedenoise.server.engine.loader import load_engine  # noqa: E402
from livedenoise.server.engine.offline import denoise_movie  # noqa: E402
from livedenoise.server.settings import ServerSettings  # noqa: E402

WINDOW = WindowSpec(2, 2, 1)
SHAPE = (24, 32)


@pytest.fixture
def model_path(tmp_path: Path, onnx_models: ModuleType) -> Path:
    return onnx_models.make_mix_model(tmp_path / "mix.onnx", WINDOW, seed=3)


def subscribed_viewer(service: Any, context: zmq.Context[Any], topic: bytes) -> zmq.Socket[Any]:
    """A SUB socket on the preview port whose subscription has reached the publisher (no sleep)."""
    viewer = context.socket(zmq.SUB)
    viewer.setsockopt(zmq.LINGER, 0)
    viewer.setsockopt(zmq.SUBSCRIBE, topic)
    viewer.setsockopt(zmq.SUBSCRIBE, UNKNOWN_STREAM.encode())
    viewer.connect(service.pub_endpoint)
    probe = context.socket(zmq.DEALER)
    probe.setsockopt(zmq.LINGER, 0)
    probe.connect(service.zmq_endpoint)
    try:
        for _ in range(100):
            probe.send_multipart([b"probe", b""])  # refused, and the refusal is published
            if viewer.poll(50):
                break
        else:
            raise AssertionError("the viewer's subscription never reached the publisher")
    finally:
        probe.close()
    viewer.setsockopt(zmq.UNSUBSCRIBE, UNKNOWN_STREAM.encode())
    return viewer


def camera_frames_by_stream(sequence: Any, history: list[np.ndarray]) -> dict[str, np.ndarray]:
    """What the camera produced for each stream, from the sequence's event order (one camera, one frame each)."""
    events = list(sequence)
    assert len(history) == len(events), "the camera acquired one frame per event"
    out: dict[str, list[np.ndarray]] = defaultdict(list)
    for event, frame in zip(events, history):
        out[stream_label(event.index)].append(frame)
    return {label: np.stack(frames) for label, frames in out.items()}


def test_every_frame_is_denoised_once_in_order_stored_and_handed_over(
    settings: ServerSettings, model_path: Path, run_service: Callable[..., Any], zmq_context: zmq.Context[Any],
    tmp_path: Path,
) -> None:  # fmt: skip
    service = run_service(settings, model_path, "mix")
    viewer = subscribed_viewer(service, zmq_context, b"scope1-")
    scope = simulated_microscope(shape=SHAPE, exposure_ms=2.0, pixel_size_um=0.5, history=100)
    sequence = useq.MDASequence(
        time_plan={"interval": 0, "loops": 12},
        stage_positions=[{"x": 0, "y": 0, "name": "left"}, {"x": 300, "y": 80, "name": "right"}],
        channels=["GFP", "mCherry"],
        axis_order="tpc",
    )
    handed: list[tuple[Any, np.ndarray]] = []
    callback_threads: set[str] = set()

    def on_denoised(event: Any, frame: np.ndarray) -> None:
        callback_threads.add(threading.current_thread().name)
        handed.append((event, frame.copy()))

    out = tmp_path / "out"
    t_start = time.time_ns()
    with MMCoreStreamer(
        scope.core, service.zmq_endpoint, mode="lossless", out_dir=out, on_denoised=on_denoised,
        stream_prefix="scope1", context=zmq_context,
    ) as streamer:  # fmt: skip
        scope.core.mda.run(sequence)
        summary = streamer.wait(timeout=30)
    t_end = time.time_ns()

    camera = camera_frames_by_stream(sequence, list(scope.camera.history))
    labels = ["p0_c0", "p0_c1", "p1_c0", "p1_c1"]
    assert sorted(camera) == labels
    assert [s.label for s in summary.streams] == labels
    assert summary.complete and summary.finished and summary.mode == "lossless"
    assert summary.total("acquired") == summary.total("denoised") == 48
    engine = load_engine(model_path, "cpu", "offline")
    for s in summary.streams:
        assert s.stream == f"scope1-{s.label}"
        assert (s.acquired, s.sent, s.denoised, s.skipped, s.dropped, s.lost) == (12, 12, 12, 0, 0, 0)
        assert s.errors == {} and s.rejected == {} and s.failure is None and s.accounted
        assert s.models == ["mix"] and s.position in {"left", "right"} and s.channel in {"GFP", "mCherry"}
        raw = read_ome_zarr(s.raw_path)
        np.testing.assert_array_equal(raw, camera[s.label])  # exactly what the camera produced
        assert raw.dtype == np.uint16
        denoised = read_ome_zarr(s.denoised_path)
        # Every frame denoised once, in order, with its true temporal context (same engine, offline).
        np.testing.assert_allclose(denoised, denoise_movie(engine, raw), rtol=1e-5, atol=1e-3)
        assert read_ome_zarr_scale(s.raw_path).pixel_size_um == (0.5, 0.5)
        mine = [(e, f) for e, f in handed if stream_label(e.index) == s.label]
        assert [e.index["t"] for e, _ in mine] == list(range(12))
        np.testing.assert_array_equal(np.stack([f for _, f in mine]), denoised)
    engine.close()
    assert callback_threads == {"livedenoise-mmcore-sender"}  # never the acquisition thread
    folder = Path(summary.out_dir or "")
    assert folder.parent == out and (folder / "summary.json").is_file() and (folder / "sequence.json").is_file()

    # What went over the wire, as a viewer on the preview port saw it: t_ns and the MDA event in meta.
    published: dict[str, list[Any]] = defaultdict(list)
    while sum(map(len, published.values())) < 48 + 4 and viewer.poll(5000):
        topic, raw_header, _ = viewer.recv_multipart()
        if topic != UNKNOWN_STREAM.encode():
            header = decode_header(raw_header, replies=True)
            published[header.stream].append(header)
    viewer.close()
    assert sorted(published) == [f"scope1-{label}" for label in labels]
    for stream, headers in published.items():
        frames = [h for h in headers if h.type is MessageType.FRAME]
        assert [h.index for h in frames] == list(range(12))
        assert {h.series for h in headers} == {summary.acquisition}
        assert all(t_start <= (h.t_ns or 0) <= t_end for h in frames)
        assert [h.t_ns for h in frames] == sorted(h.t_ns for h in frames)
        for h in frames:
            event = h.meta["event"]
            assert stream_label(event["index"]) == stream.removeprefix("scope1-")
            assert event["index"]["t"] == h.index
            assert event["channel"]["config"] in {"GFP", "mCherry"} and "x_pos" in event


def test_the_acquisition_thread_never_waits_for_the_server(
    settings: ServerSettings, model_path: Path, run_service: Callable[..., Any], gated_engine_cls: Any,
    zmq_context: zmq.Context[Any],
) -> None:  # fmt: skip
    engine = gated_engine_cls(load_engine(model_path, "cpu", "mix"))  # holds every engine call until the gate opens
    service = run_service(settings, engine=engine)
    scope = simulated_microscope(shape=SHAPE, exposure_ms=2.0)
    sequence = useq.MDASequence(time_plan={"interval": 0, "loops": 40})
    # Listeners run in the order they were connected: one before and one after the streamer's own
    # frameReady handler time exactly that handler, on the acquisition thread.
    handler_s: list[float] = []
    entered: list[float] = []
    scope.core.mda.events.frameReady.connect(lambda *_: entered.append(time.perf_counter()))
    with MMCoreStreamer(
        scope.core, service.zmq_endpoint, mode="lossless", max_in_flight=8, context=zmq_context
    ) as streamer:
        scope.core.mda.events.frameReady.connect(lambda *_: handler_s.append(time.perf_counter() - entered[-1]))
        scope.core.mda.run(sequence)
        # The acquisition is over while the server has answered nothing: sending is still held back.
        assert engine.calls <= 1
        with pytest.raises(TimeoutError):
            streamer.wait(timeout=0.2)
        engine.gate.set()
        summary = streamer.wait(timeout=30)
    assert len(handler_s) == 40
    assert max(handler_s) < 0.05, f"frameReady took up to {max(handler_s) * 1e3:.1f} ms on the acquisition thread"
    assert summary.handler_ms_max < 50
    (s,) = summary.streams
    assert (s.acquired, s.denoised, s.dropped, s.skipped) == (40, 40, 0, 0) and summary.complete


def test_live_mode_counts_and_reports_what_the_slow_server_could_not_take(
    settings: ServerSettings, model_path: Path, run_service: Callable[..., Any], gated_engine_cls: Any,
    zmq_context: zmq.Context[Any], tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    engine = gated_engine_cls(load_engine(model_path, "cpu", "mix"), delay_s=0.2)  # 5 engine calls a second
    engine.gate.set()
    service = run_service(settings.model_copy(update={"live_max_backlog_frames": 4}), engine=engine)
    scope = simulated_microscope(shape=SHAPE, exposure_ms=2.0, history=100)  # a 500 fps camera
    sequence = useq.MDASequence(time_plan={"interval": 0, "loops": 30})
    with caplog.at_level(logging.WARNING, logger="livedenoise.clients.mmcore"):
        with MMCoreStreamer(
            scope.core, service.zmq_endpoint, mode="live", out_dir=tmp_path, max_in_flight=8, live_backlog=1,
            context=zmq_context,
        ) as streamer:  # fmt: skip
            scope.core.mda.run(sequence)
            summary = streamer.wait(timeout=30)
    (s,) = summary.streams
    assert s.acquired == 30 and s.accounted and s.failure is None
    assert s.dropped > 0 and s.skipped > 0 and s.denoised > 0  # both here and on the server
    assert s.denoised + s.dropped + s.skipped == 30 and s.sent == 30 - s.dropped
    assert not summary.complete and summary.total("dropped") == s.dropped
    assert any("dropped here" in r.getMessage() for r in caplog.records), "the end-of-acquisition report"
    # Raw keeps every frame; the denoised store has a frame for every raw one, NaN where none came back.
    raw = read_ome_zarr(s.raw_path)
    np.testing.assert_array_equal(raw, camera_frames_by_stream(sequence, list(scope.camera.history))["p0_c0"])
    denoised = read_ome_zarr(s.denoised_path)
    assert denoised.shape == raw.shape and denoised.dtype == np.float32
    assert int(np.isfinite(denoised).all(axis=(1, 2)).sum()) == s.denoised
    assert int(np.isnan(denoised).all(axis=(1, 2)).sum()) == 30 - s.denoised


def test_a_stream_the_server_refuses_is_counted_and_the_others_go_on(
    settings: ServerSettings, model_path: Path, run_service: Callable[..., Any], zmq_context: zmq.Context[Any],
) -> None:  # fmt: skip
    service = run_service(settings.model_copy(update={"max_streams": 1}), model_path, "mix")
    scope = simulated_microscope(shape=SHAPE, exposure_ms=1.0)
    sequence = useq.MDASequence(time_plan={"interval": 0, "loops": 8}, channels=["GFP", "mCherry"])
    with MMCoreStreamer(scope.core, service.zmq_endpoint, context=zmq_context) as streamer:
        scope.core.mda.run(sequence)
        summary = streamer.wait(timeout=30)
    first, second = summary.streams
    assert (first.label, first.denoised, first.failure) == ("p0_c0", 8, None)
    assert second.label == "p0_c1" and second.acquired == 8 and second.denoised == 0 and second.accounted
    assert second.failure is not None and "too_many_streams" in second.failure
    assert sum(second.rejected.values()) + second.lost == 8
    assert not summary.complete


def test_a_server_that_is_not_there_fails_the_streams_explicitly(
    free_port: Callable[[], int], zmq_context: zmq.Context[Any]
) -> None:
    scope = simulated_microscope(shape=SHAPE, exposure_ms=1.0)
    sequence = useq.MDASequence(time_plan={"interval": 0, "loops": 10})
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    with MMCoreStreamer(scope.core, endpoint, timeout_s=0.5, context=zmq_context) as streamer:
        scope.core.mda.run(sequence)  # never held up by the missing server
        summary = streamer.wait(timeout=10)
    (s,) = summary.streams
    assert s.acquired == 10 and s.denoised == 0 and s.lost == 10 and s.accounted
    assert s.failure is not None and endpoint in s.failure
    assert summary.total("lost") == 10 and not summary.complete
