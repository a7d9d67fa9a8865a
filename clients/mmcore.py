"""Stream Micro-Manager acquisitions (pymmcore-plus MDA) through a livedenoise server while they are acquired.

:class:`MMCoreStreamer` listens to a ``CMMCorePlus``' MDA events. Each acquired frame is copied on the
acquisition thread into a queue and nothing else happens there: one sender thread owns the sockets and the
files. Frames go out as `frames/1` streams, one per position and channel (and z-plane or grid tile, where
the sequence has them: a temporal window must always see the same field), one series per acquisition,
each frame carrying its acquisition time (``t_ns``) and the MDA event (``meta["event"]``). With an output
folder, raw and denoised frames are appended to OME-Zarr stores as they come, and every denoised frame is
handed to a callback.

Every acquired frame is accounted for, once, per stream: ``denoised``, ``skipped`` (the server's live
back-pressure), ``dropped`` (never sent: the live backlog or the memory budget here), ``errors`` and
``rejected`` by code (the server's replies), or ``lost`` (no reply will come: the stream failed, and
``failure`` says why). The summary is logged, written beside the stores and returned by
:meth:`MMCoreStreamer.wait`.

pymmcore-plus is never imported here (the streamer takes the core it is given); the OME-Zarr stores need
``zarr``. Both come with the ``mmcore`` extra.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import queue
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import zmq
from numpy.typing import NDArray

from livedenoise.clients.keys import ClientKeys
from livedenoise.clients.protocol import MAX_NAME_CHARS, MessageType, StreamMode, encode_json
from livedenoise.clients.stream import Reply, StreamClient, StreamError

if TYPE_CHECKING:
    from pymmcore_plus import CMMCorePlus
    from useq import MDAEvent, MDASequence

    from livedenoise.clients.ome_zarr import OmeZarrMovieWriter

__all__ = ["AcquisitionSummary", "MMCoreStreamer", "StreamSummary", "stream_label"]

logger = logging.getLogger(__name__)

#: Axes that get a stream of their own, in the order of a stream's label; ``p`` and ``c`` always appear.
_LABEL_AXES = ("p", "g", "z", "c")
#: ``meta["event"]`` is cut down to the event's position in the sequence above this many bytes of JSON.
_MAX_EVENT_META_BYTES = 2048
_IDLE_POLL_S = 0.05  # how long the sender waits for a frame when no reply is expected
_BUSY_POLL_S = 0.001  # ... and while replies are expected (it polls the sockets in between)


def stream_label(index: dict[str, int] | Any) -> str:
    """The stream a frame belongs to, from its MDA event's ``index``: ``"p0_c1"``, ``"p2_z3_c0"``, ...

    Every axis but time separates streams; ``p`` and ``c`` are always named (0 when the sequence has no
    positions or channels), other axes only when present.
    """
    axes = {str(getattr(k, "value", k)): int(v) for k, v in dict(index).items()}
    axes.pop("t", None)
    axes.setdefault("p", 0)
    axes.setdefault("c", 0)
    order = [a for a in _LABEL_AXES if a in axes] + sorted(a for a in axes if a not in _LABEL_AXES)
    return "_".join(f"{a}{axes[a]}" for a in order)


@dataclass
class StreamSummary:
    """One stream of one acquisition: what became of each frame acquired for it.

    ``acquired == denoised + skipped + dropped + sum(errors) + sum(rejected) + lost`` always holds
    (:attr:`accounted`).
    """

    stream: str
    label: str
    position: str | None = None
    channel: str | None = None
    acquired: int = 0
    sent: int = 0
    denoised: int = 0
    skipped: int = 0  # answered `skipped` by the server (live back-pressure)
    dropped: int = 0  # never sent: the live backlog here, or the memory budget
    errors: dict[str, int] = field(default_factory=dict)  # accepted by the server, then failed: code -> frames
    rejected: dict[str, int] = field(default_factory=dict)  # refused by the server: code -> frames
    lost: int = 0  # no reply will come: the stream failed (see `failure`)
    callback_errors: int = 0
    write_errors: int = 0
    models: list[str] = field(default_factory=list)
    latency_ms_p50: float | None = None
    latency_ms_p99: float | None = None
    raw_path: str | None = None
    denoised_path: str | None = None
    failure: str | None = None

    @property
    def accounted(self) -> bool:
        """Every acquired frame has exactly one outcome."""
        outcomes = self.denoised + self.skipped + self.dropped + sum(self.errors.values())
        return self.acquired == outcomes + sum(self.rejected.values()) + self.lost

    @property
    def not_denoised(self) -> int:
        return self.acquired - self.denoised

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class AcquisitionSummary:
    """One acquisition (one series per stream): its streams, the acquisition thread's cost, and where it went."""

    acquisition: str
    mode: str | None
    streams: list[StreamSummary]
    out_dir: str | None = None
    finished: bool = True  # False when the streamer closed before the MDA's sequenceFinished
    wall_s: float = 0.0
    # The frameReady handler's time on the acquisition thread (the copy, plus any wait for the GIL).
    handler_ms_p50: float = 0.0
    handler_ms_p99: float = 0.0
    handler_ms_max: float = 0.0

    def total(self, name: str) -> int:
        """A counter summed over streams: ``acquired``, ``denoised``, ``skipped``, ``dropped``, ``lost``,
        ``errors`` or ``rejected`` (the last two over every code)."""
        values = (getattr(s, name) for s in self.streams)
        return sum(sum(v.values()) if isinstance(v, dict) else int(v) for v in values)

    @property
    def complete(self) -> bool:
        """Every acquired frame was denoised."""
        return all(s.denoised == s.acquired and s.failure is None for s in self.streams)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["totals"] = {
            k: self.total(k) for k in ("acquired", "denoised", "skipped", "dropped", "errors", "rejected", "lost")
        }
        return out

    def describe(self) -> str:
        """One line, as logged at the end of the acquisition."""
        t = self.to_dict()["totals"]
        failed = sum(1 for s in self.streams if s.failure)
        return (
            f"acquisition {self.acquisition}: {len(self.streams)} streams, {t['acquired']} frames acquired, "
            f"{t['denoised']} denoised, {t['skipped']} skipped by the server, {t['dropped']} dropped here, "
            f"{t['errors']} errors, {t['rejected']} rejected, {t['lost']} lost"
            + (f", {failed} streams failed" if failed else "")
            + f"; frameReady handler median {self.handler_ms_p50:.3f} ms, max {self.handler_ms_max:.2f} ms"
        )


# ---------------------------------------------------------------------------------------------- internals


class _Acquisition:
    """Made on the acquisition thread at sequenceStarted; its counters are only touched there."""

    def __init__(self, sequence: MDASequence, pixel_size_um: float | None, prefix: str) -> None:
        uid = getattr(sequence, "uid", None) or uuid.uuid4()
        self.id = f"{time.strftime('%Y%m%d-%H%M%S')}-{uid.hex[:8]}"
        self.sequence = sequence
        self.pixel_size_um = pixel_size_um
        interval = getattr(getattr(sequence, "time_plan", None), "interval", None)
        seconds = interval.total_seconds() if interval is not None else 0.0
        self.frame_interval_s = seconds if seconds > 0 else None
        self.prefix = prefix
        self.counters: dict[str, int] = {}
        self.handler_s: list[float] = []
        self.started = time.monotonic()


class _Frame:
    __slots__ = ("acq", "label", "index", "pixels", "shape", "dtype", "event", "t_ns")

    def __init__(
        self,
        acq: _Acquisition,
        label: str,
        index: int,
        pixels: NDArray[Any] | None,
        shape: tuple[int, ...],
        dtype: str,
        event: MDAEvent,
        t_ns: int,
    ) -> None:
        self.acq = acq
        self.label = label
        self.index = index
        self.pixels = pixels  # None: not admitted (memory budget), or released after sending
        self.shape = shape
        self.dtype = dtype
        self.event = event
        self.t_ns = t_ns


@dataclass(frozen=True)
class _Begin:
    acq: _Acquisition


@dataclass(frozen=True)
class _Finish:
    acq: _Acquisition
    finished: bool = True


_STOP = object()


def _event_meta(event: MDAEvent) -> dict[str, Any]:
    """The MDA event as JSON for ``meta["event"]`` (without the sequence it came from), bounded in size."""
    data: dict[str, Any] = event.model_dump(mode="json", exclude={"sequence", "slm_image"}, exclude_none=True)
    if not data.get("metadata"):
        data.pop("metadata", None)
    if len(encode_json(data)) > _MAX_EVENT_META_BYTES:
        data = {k: data[k] for k in ("index", "channel", "x_pos", "y_pos", "z_pos", "pos_name") if k in data}
        if len(encode_json(data)) > _MAX_EVENT_META_BYTES:
            data = {"index": data.get("index", {})}
    return data


class _Stream:
    """The sender thread's state for one stream of one acquisition."""

    def __init__(self, summary: StreamSummary, shape: tuple[int, ...], dtype: str) -> None:
        self.summary = summary
        self.shape = shape
        self.dtype = dtype
        self.client: StreamClient | None = None
        self.pending: deque[_Frame] = deque()
        self.events: dict[int, MDAEvent] = {}  # sent, waiting for their reply
        self.outcomes: dict[int, NDArray[np.float32] | None] = {}  # answered, waiting for their turn in the store
        self.next_t = 0  # next index to append to the denoised store
        self.raw: OmeZarrMovieWriter | None = None
        self.denoised: OmeZarrMovieWriter | None = None
        self.end_sent = False
        self.end_seen = False
        self.last_progress = time.monotonic()
        self.latencies: list[float] = []
        self._nan: NDArray[np.float32] | None = None

    @property
    def failed(self) -> bool:
        return self.summary.failure is not None

    @property
    def in_flight(self) -> int:
        return self.client.in_flight if self.client is not None else 0

    @property
    def done(self) -> bool:
        """Nothing more to wait for: the ``end`` reply came, or the stream failed and every reply due came."""
        if self.client is None or self.end_seen:
            return True
        return self.failed and self.in_flight == 0 and not self.pending

    def nan_frame(self) -> NDArray[np.float32]:
        if self._nan is None:
            self._nan = np.full(self.shape, np.nan, dtype=np.float32)
        return self._nan


class MMCoreStreamer:
    """Denoise every frame of a pymmcore-plus MDA acquisition through a livedenoise server, as it is acquired.

    Use it as a context manager around one or more acquisitions (``core.mda.run(sequence)`` or
    ``core.run_mda(sequence)``); :meth:`wait` returns the summary once an acquisition is drained.

    Parameters
    ----------
    core
        A ``pymmcore_plus.CMMCorePlus`` (or ``UniMMCore``); its ``mda.events`` are listened to.
    endpoint
        The server's `frames/1` endpoint, e.g. ``"tcp://127.0.0.1:5555"``.
    mode
        ``"live"`` (bounded latency: the server skips frames it cannot keep up with, and frames that cannot
        be sent within ``live_backlog`` frames are dropped here) or ``"lossless"`` (every frame is sent;
        latency and memory grow while the server is behind); ``None``: the server's default.
    out_dir
        Folder for the OME-Zarr stores: ``<out_dir>/<acquisition>/<label>_raw.ome.zarr`` and
        ``<label>_denoised.ome.zarr`` per stream (``label`` e.g. ``p0_c1``), with ``sequence.json`` and
        ``summary.json``. The denoised store has one float32 frame per raw frame, NaN where no denoised
        frame came back. ``None``: nothing is written.
    on_denoised
        Called with ``(event, frame)`` for every denoised frame (float32 ``[y, x]``), in order per stream,
        on the streamer's sender thread: a slow callback delays replies, never the camera. Exceptions are
        logged and counted.
    write_raw
        Also store the raw frames (when ``out_dir`` is given).
    stream_prefix
        Stream ids are ``<stream_prefix>-<label>``: give each microscope sharing a server its own.
    max_in_flight
        Frames per stream sent without a reply yet (flow control). It must be larger than the model's
        latency in frames (``livedenoise methods``: up to 30), or the server waits for frames the client holds.
    live_backlog
        In live mode, frames per stream waiting for credit beyond which the oldest is dropped; default
        ``max_in_flight``.
    max_buffered_bytes
        Memory for frames copied from the camera and not yet sent (all streams); a frame beyond it is
        dropped (its raw frame is stored as zeros) and counted.
    timeout_s
        A stream whose server sends nothing for this long while replies are due fails (its frames are
        counted ``lost``).
    context, curve
        As for :class:`~livedenoise.clients.stream.StreamClient`.
    """

    def __init__(
        self,
        core: CMMCorePlus,
        endpoint: str,
        *,
        mode: str | None = None,
        out_dir: str | Path | None = None,
        on_denoised: Callable[[MDAEvent, NDArray[np.float32]], None] | None = None,
        write_raw: bool = True,
        stream_prefix: str = "mm",
        max_in_flight: int = 64,
        live_backlog: int | None = None,
        max_buffered_bytes: int = 2 << 30,
        timeout_s: float = 30.0,
        context: zmq.Context[Any] | None = None,
        curve: ClientKeys | None = None,
    ) -> None:
        modes = [m.value for m in StreamMode]
        if mode is not None and mode not in modes:
            raise ValueError(f"mode must be one of {modes} or None (the server's default), got {mode!r}")
        if not stream_prefix or len(stream_prefix) > MAX_NAME_CHARS // 2:
            raise ValueError(f"stream_prefix must be 1-{MAX_NAME_CHARS // 2} characters, got {stream_prefix!r}")
        if max_in_flight < 1:
            raise ValueError(f"max_in_flight must be >= 1, got {max_in_flight}")
        if live_backlog is not None and live_backlog < 0:
            raise ValueError(f"live_backlog must be >= 0, got {live_backlog}")
        if max_buffered_bytes < 1:
            raise ValueError(f"max_buffered_bytes must be >= 1, got {max_buffered_bytes}")
        if not timeout_s > 0:
            raise ValueError(f"timeout_s must be > 0, got {timeout_s}")
        if out_dir is not None and importlib.util.find_spec("zarr") is None:
            # Say so now, not at the first frame of an acquisition.
            raise ImportError(
                "writing OME-Zarr stores needs the 'zarr' package (v3): pip install 'livedenoise[mmcore]'"
            )
        self.core = core
        self.endpoint = endpoint
        self.mode = mode
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.on_denoised = on_denoised
        self.write_raw = write_raw
        self.stream_prefix = stream_prefix
        self.max_in_flight = max_in_flight
        self.live_backlog = max_in_flight if live_backlog is None else live_backlog
        self.max_buffered_bytes = max_buffered_bytes
        self.timeout_s = timeout_s
        self._context = context
        self._curve = curve
        self.summaries: list[AcquisitionSummary] = []
        self.ignored_frames = 0  # frameReady without a sequenceStarted seen (connected mid-acquisition)
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._acq: _Acquisition | None = None  # the acquisition being acquired (acquisition thread)
        self._streams: dict[str, _Stream] = {}  # the acquisition being sent (sender thread)
        self._current: _Acquisition | None = None  # ... and its record
        self._bytes_lock = threading.Lock()
        self._buffered_bytes = 0
        self._cond = threading.Condition()
        self._open = 0  # acquisitions started and not yet summarised
        self._fatal: BaseException | None = None
        self._thread: threading.Thread | None = None
        self._connected = False

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Start the sender thread and listen to the core's MDA events."""
        if self._thread is not None:
            raise RuntimeError("MMCoreStreamer.start() called twice")
        self._thread = threading.Thread(target=self._run, name="livedenoise-mmcore-sender", daemon=True)
        self._thread.start()
        events = self.core.mda.events
        events.sequenceStarted.connect(self._on_sequence_started)
        events.frameReady.connect(self._on_frame_ready)
        events.sequenceFinished.connect(self._on_sequence_finished)
        self._connected = True
        logger.info("streaming MDA acquisitions to %s (mode %s)", self.endpoint, self.mode or "server default")

    def close(self) -> None:
        """Stop listening, drain an acquisition still open (it is summarised as unfinished) and stop."""
        if self._connected:
            events = self.core.mda.events
            events.sequenceStarted.disconnect(self._on_sequence_started)
            events.frameReady.disconnect(self._on_frame_ready)
            events.sequenceFinished.disconnect(self._on_sequence_finished)
            self._connected = False
        if self._acq is not None:
            self._queue.put(_Finish(self._acq, finished=False))
            self._acq = None
        if self._thread is not None:
            self._queue.put(_STOP)
            self._thread.join()
            self._thread = None
        if self.ignored_frames:
            logger.warning("%d frames arrived outside an acquisition the streamer saw start", self.ignored_frames)

    def __enter__(self) -> MMCoreStreamer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def wait(self, timeout: float | None = None) -> AcquisitionSummary:
        """Wait until every acquisition that has started is drained; the last one's summary.

        Raises
        ------
        TimeoutError
            Not drained within ``timeout`` seconds.
        LookupError
            No acquisition has run while the streamer listened.
        RuntimeError
            The sender thread died (a bug; the cause is chained and was logged).
        """
        with self._cond:
            if not self._cond.wait_for(lambda: self._open == 0 or self._fatal is not None, timeout):
                raise TimeoutError(f"{self._open} acquisitions still draining after {timeout} s")
            if self._fatal is not None:
                raise RuntimeError(f"the streamer's sender thread failed: {self._fatal!r}") from self._fatal
            if not self.summaries:
                raise LookupError("no acquisition has run while the streamer was listening")
            return self.summaries[-1]

    # ------------------------------------------------------------------ acquisition thread

    def _on_sequence_started(self, sequence: MDASequence, meta: dict[str, Any] | None = None) -> None:
        try:
            pixel = float(self.core.getPixelSizeUm())
        except RuntimeError:
            pixel = 0.0
        acq = _Acquisition(sequence, pixel if pixel > 0 else None, self.stream_prefix)
        if self._acq is not None:  # a sequenceFinished we never saw
            self._queue.put(_Finish(self._acq, finished=False))
        self._acq = acq
        with self._cond:
            self._open += 1
        self._queue.put(_Begin(acq))

    def _on_frame_ready(self, img: NDArray[Any], event: MDAEvent, meta: dict[str, Any] | None = None) -> None:
        # The camera's thread: copy the frame and queue it, nothing that can wait on the network or a disk.
        t0 = time.perf_counter()
        t_ns = time.time_ns()
        acq = self._acq
        if acq is None:
            self.ignored_frames += 1
            return
        label = stream_label(event.index)
        index = acq.counters.get(label, 0)
        acq.counters[label] = index + 1
        image = np.asarray(img)
        with self._bytes_lock:
            admit = self._fatal is None and self._buffered_bytes + image.nbytes <= self.max_buffered_bytes
            if admit:
                self._buffered_bytes += image.nbytes
        # Camera buffers are re-used: the copy is the frame from now on.
        pixels = np.array(image, copy=True) if admit else None
        self._queue.put(_Frame(acq, label, index, pixels, image.shape, image.dtype.str, event, t_ns))
        acq.handler_s.append(time.perf_counter() - t0)

    def _on_sequence_finished(self, sequence: MDASequence) -> None:
        acq, self._acq = self._acq, None
        if acq is not None:
            self._queue.put(_Finish(acq))

    # ------------------------------------------------------------------ sender thread

    def _run(self) -> None:
        try:
            while True:
                busy = any(s.pending or s.in_flight for s in self._streams.values())
                try:
                    item = self._queue.get(timeout=_BUSY_POLL_S if busy else _IDLE_POLL_S)
                except queue.Empty:
                    item = None
                if item is _STOP:
                    break
                if isinstance(item, _Frame):
                    self._take(item)
                elif isinstance(item, _Begin):
                    self._begin(item.acq)
                elif isinstance(item, _Finish):
                    self._finish(item)
                self._pump()
        except Exception as exc:  # a bug: say so loudly, and let wait() raise instead of hanging
            logger.exception("the MMCoreStreamer sender thread failed; frames from now on are not streamed")
            with self._bytes_lock:
                self._fatal = exc
            with self._cond:
                self._cond.notify_all()
        finally:
            for stream in self._streams.values():
                self._close_stream(stream)

    def _acq_dir(self, acq: _Acquisition) -> Path | None:
        return self.out_dir / acq.id if self.out_dir is not None else None

    def _begin(self, acq: _Acquisition) -> None:
        self._current = acq
        self._streams = {}
        folder = self._acq_dir(acq)
        if folder is not None:
            try:
                folder.mkdir(parents=True, exist_ok=True)
                (folder / "sequence.json").write_text(acq.sequence.model_dump_json(indent=2), encoding="utf-8")
            except OSError as exc:  # the stores will fail too, each counted in its stream's write_errors
                logger.error("acquisition %s: cannot write into %s: %s", acq.id, folder, exc)
            except (AttributeError, TypeError, ValueError) as exc:  # a generator-driven run has no plain sequence
                logger.debug("sequence of %s not written: %s", acq.id, exc)
        logger.info("acquisition %s started: streaming to %s", acq.id, self.endpoint)

    def _release(self, frame: _Frame) -> None:
        if frame.pixels is not None:
            with self._bytes_lock:
                self._buffered_bytes -= frame.pixels.nbytes
            frame.pixels = None

    def _take(self, frame: _Frame) -> None:
        """A frame from the camera: store it raw, then queue it for sending."""
        if frame.acq is not self._current:
            self._begin(frame.acq)  # (only after a bug elsewhere; never lose the frame)
        stream = self._streams.get(frame.label) or self._open_stream(frame)
        stream.summary.acquired += 1
        if stream.raw is not None:
            raw = frame.pixels if frame.pixels is not None else np.zeros(frame.shape, dtype=frame.dtype)
            self._write(stream, "raw", raw)
        if frame.pixels is None:
            stream.summary.dropped += 1
            logger.debug("stream %s: frame %d dropped: memory budget spent", stream.summary.stream, frame.index)
            self._resolve(stream, frame.index, None)
        elif stream.failed:
            self._lose(stream, frame)
        else:
            stream.pending.append(frame)
            if self.mode == StreamMode.LIVE.value:
                while len(stream.pending) > self.live_backlog:
                    old = stream.pending.popleft()
                    self._release(old)
                    stream.summary.dropped += 1
                    self._resolve(stream, old.index, None)

    def _open_stream(self, frame: _Frame) -> _Stream:
        acq, label = frame.acq, frame.label
        event = frame.event
        channel = getattr(getattr(event, "channel", None), "config", None)
        summary = StreamSummary(
            stream=f"{acq.prefix}-{label}", label=label, position=getattr(event, "pos_name", None), channel=channel
        )
        stream = self._streams[label] = _Stream(summary, frame.shape, frame.dtype)
        if len(frame.shape) != 2:
            summary.failure = (
                f"frames of shape {list(frame.shape)} cannot be denoised: livedenoise streams single-channel "
                "[y, x] frames (a colour camera's frames are not supported)"
            )
            logger.error("stream %s: %s", summary.stream, summary.failure)
            return stream
        folder = self._acq_dir(acq)
        if folder is not None:
            stream.raw = self._writer(folder / f"{label}_raw.ome.zarr", stream, acq, "raw", frame.dtype)
            stream.denoised = self._writer(folder / f"{label}_denoised.ome.zarr", stream, acq, "denoised", "<f4")
        start_meta = {"acquisition": acq.id, "label": label, "position": summary.position, "channel": channel}
        try:
            client = stream.client = StreamClient(
                self.endpoint,
                stream=summary.stream,
                context=self._context,
                max_in_flight=self.max_in_flight,
                timeout_s=self.timeout_s,
                curve=self._curve,
            )
            client.start(
                acq.id,
                frame.dtype,
                (int(frame.shape[0]), int(frame.shape[1])),
                mode=self.mode,
                meta={k: v for k, v in start_meta.items() if v is not None},
            )
        except (ValueError, StreamError, zmq.ZMQError) as exc:
            self._fail(stream, f"could not start the series on {self.endpoint}: {exc}")
        return stream

    def _writer(
        self, path: Path, stream: _Stream, acq: _Acquisition, kind: str, dtype: str
    ) -> OmeZarrMovieWriter | None:
        if kind == "raw" and not self.write_raw:
            return None
        from livedenoise.clients.ome_zarr import OmeZarrMovieWriter

        s = stream.summary
        attributes = {
            "livedenoise": {
                "kind": kind,
                "acquisition": acq.id,
                "stream": s.stream,
                "label": s.label,
                "position": s.position,
                "channel": s.channel,
                "mode": self.mode,
                "endpoint": self.endpoint,
            }
        }
        try:
            writer = OmeZarrMovieWriter(
                path,
                shape_yx=(int(stream.shape[0]), int(stream.shape[1])),
                dtype=dtype,
                name=f"{s.label} {kind}",
                pixel_size_um=(acq.pixel_size_um, acq.pixel_size_um) if acq.pixel_size_um else None,
                frame_interval_s=acq.frame_interval_s,
                attributes=attributes,
            )
        except (OSError, ValueError) as exc:
            s.write_errors += 1
            logger.error("stream %s: cannot create %s: %s; its %s frames are not stored", s.stream, path, exc, kind)
            return None
        if kind == "raw":
            s.raw_path = str(path)
        else:
            s.denoised_path = str(path)
        return writer

    def _write(self, stream: _Stream, kind: str, frame: NDArray[Any]) -> None:
        writer = stream.raw if kind == "raw" else stream.denoised
        if writer is None:
            return
        try:
            writer.append(frame)
        except (OSError, ValueError) as exc:
            stream.summary.write_errors += 1
            name = stream.summary.stream
            logger.error(
                "stream %s: writing %s failed (%s); no more %s frames are stored", name, writer.path, exc, kind
            )
            writer.close()
            if kind == "raw":
                stream.raw = None
            else:
                stream.denoised = None

    def _resolve(self, stream: _Stream, index: int, frame: NDArray[np.float32] | None) -> None:
        """Record a frame's outcome; the denoised store takes outcomes in index order (rejections come early)."""
        stream.outcomes[index] = frame
        while stream.next_t in stream.outcomes:
            out = stream.outcomes.pop(stream.next_t)
            self._write(stream, "denoised", out if out is not None else stream.nan_frame())
            stream.next_t += 1

    def _lose(self, stream: _Stream, frame: _Frame) -> None:
        self._release(frame)
        stream.summary.lost += 1
        self._resolve(stream, frame.index, None)

    def _fail(self, stream: _Stream, message: str) -> None:
        """The stream cannot go on: what was sent and what waits will never be answered."""
        s = stream.summary
        if s.failure is None:
            s.failure = message
            logger.error("stream %s: %s", s.stream, message)
        for index in sorted(stream.events):
            s.lost += 1
            self._resolve(stream, index, None)
        stream.events.clear()
        while stream.pending:
            self._lose(stream, stream.pending.popleft())
        if stream.client is not None:
            stream.client.close()
            stream.client = None  # nothing more will come

    def _pump(self) -> None:
        """Take the replies that are there, send what the credit allows, and notice a silent server."""
        now = time.monotonic()
        for stream in self._streams.values():
            client = stream.client
            if client is None or stream.end_seen:
                continue
            try:
                while (reply := client.recv(timeout=0)) is not None:
                    self._on_reply(stream, reply)
                    stream.last_progress = now
                while stream.pending and not stream.failed and client.in_flight < self.max_in_flight:
                    if client.in_flight == 0:
                        stream.last_progress = now
                    self._send(stream, client, stream.pending.popleft())
            except (StreamError, zmq.ZMQError) as exc:
                self._fail(stream, f"{type(exc).__name__}: {exc}")
                continue
            waiting = client.in_flight > 0 or (stream.end_sent and not stream.end_seen)
            if waiting and now - stream.last_progress > self.timeout_s:
                hint = ""
                if client.in_flight >= self.max_in_flight and not stream.end_sent:
                    # A model answers frame i only once it has frame i + latency: less credit than that stalls.
                    hint = (
                        f" with {client.in_flight} frames in flight (max_in_flight={self.max_in_flight}; it must be "
                        "larger than the model's latency in frames)"
                    )
                self._fail(stream, f"no reply from {self.endpoint} for {self.timeout_s} s{hint}")

    def _send(self, stream: _Stream, client: StreamClient, frame: _Frame) -> None:
        assert frame.pixels is not None
        try:
            client.send(frame.pixels, frame.index, t_ns=frame.t_ns, meta={"event": _event_meta(frame.event)})
        except StreamError:
            self._lose(stream, frame)
            raise
        except ValueError as exc:  # the camera changed frame size or pixel type within the acquisition
            self._lose(stream, frame)
            self._fail(stream, f"frame {frame.index} cannot be sent: {exc}")
            return
        self._release(frame)
        stream.events[frame.index] = frame.event
        stream.summary.sent += 1

    def _on_reply(self, stream: _Stream, reply: Reply) -> None:
        h = reply.header
        s = stream.summary
        if h.type is MessageType.END:
            stream.end_seen = True
            return
        if h.index is None:  # the series' start (or end) was refused: stop sending, take the replies still due
            if s.failure is None:
                s.failure = f"the server refused the series: {h.code}: {h.message}"
                logger.error("stream %s: %s", s.stream, s.failure)
            while stream.pending:
                self._lose(stream, stream.pending.popleft())
            return
        event = stream.events.pop(h.index, None)
        frame: NDArray[np.float32] | None = None
        code = h.code or "unknown"
        if reply.rejected:
            s.rejected[code] = s.rejected.get(code, 0) + 1
        elif h.type is MessageType.FRAME:
            frame = reply.frame
            s.denoised += 1
            if h.model and h.model not in s.models:
                s.models.append(h.model)
            if reply.rtt_ms is not None:
                stream.latencies.append(reply.rtt_ms)
        elif h.type is MessageType.SKIPPED:
            s.skipped += 1
        else:
            s.errors[code] = s.errors.get(code, 0) + 1
            logger.debug("stream %s: frame %d failed on the server: %s: %s", s.stream, h.index, code, h.message)
        self._resolve(stream, h.index, frame)
        if frame is not None and self.on_denoised is not None and event is not None:
            try:
                self.on_denoised(event, frame)
            except Exception:  # the user's code: count it, keep streaming
                s.callback_errors += 1
                if s.callback_errors == 1:
                    logger.exception("stream %s: on_denoised failed (later failures are counted only)", s.stream)

    def _finish(self, item: _Finish) -> None:
        """The acquisition ended: send what waits, end every series, take every reply, then summarise."""
        acq = item.acq
        if acq is not self._current:
            self._begin(acq)
        streams = list(self._streams.values())
        while True:
            for stream in streams:
                client = stream.client
                if client is None or stream.failed or stream.end_sent or stream.pending:
                    continue
                try:
                    client.end()
                except (StreamError, zmq.ZMQError) as exc:
                    self._fail(stream, f"could not end the series: {exc}")
                    continue
                stream.end_sent = True
                stream.last_progress = time.monotonic()
            self._pump()
            if all(s.done for s in streams):
                break
            time.sleep(_BUSY_POLL_S)
        for stream in streams:
            if stream.events:  # sent, and the series is over without their replies
                self._fail(stream, f"frames {sorted(stream.events)[:10]} got no reply before the series ended")
            self._close_stream(stream)
        summary = self._summarise(acq, streams, item.finished)
        self._streams = {}
        self._current = None
        folder = self._acq_dir(acq)
        if folder is not None:
            try:
                (folder / "summary.json").write_text(json.dumps(summary.to_dict(), indent=2), encoding="utf-8")
            except OSError as exc:
                logger.error("acquisition %s: cannot write its summary into %s: %s", acq.id, folder, exc)
        level = logging.INFO if summary.complete else logging.WARNING
        logger.log(level, "%s", summary.describe())
        for s in summary.streams:
            logger.log(level if s.not_denoised else logging.DEBUG, "stream %s: %s", s.stream, s.to_dict())
        with self._cond:
            self.summaries.append(summary)
            self._open -= 1
            self._cond.notify_all()

    def _close_stream(self, stream: _Stream) -> None:
        for writer in (stream.raw, stream.denoised):
            if writer is not None:
                writer.close()
        if stream.client is not None:
            stream.client.close()

    def _summarise(self, acq: _Acquisition, streams: list[_Stream], finished: bool) -> AcquisitionSummary:
        for stream in streams:
            lat = np.asarray(stream.latencies)
            if lat.size:
                stream.summary.latency_ms_p50 = round(float(np.percentile(lat, 50)), 3)
                stream.summary.latency_ms_p99 = round(float(np.percentile(lat, 99)), 3)
        handler = np.asarray(acq.handler_s) * 1e3
        folder = self._acq_dir(acq)
        return AcquisitionSummary(
            acquisition=acq.id,
            mode=self.mode,
            streams=[s.summary for s in sorted(streams, key=lambda s: s.summary.label)],
            out_dir=str(folder) if folder is not None else None,
            finished=finished,
            wall_s=round(time.monotonic() - acq.started, 4),
            handler_ms_p50=round(float(np.percentile(handler, 50)), 4) if handler.size else 0.0,
            handler_ms_p99=round(float(np.percentile(handler, 99)), 4) if handler.size else 0.0,
            handler_ms_max=round(float(handler.max()), 4) if handler.size else 0.0,
        )
