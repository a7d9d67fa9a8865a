"""Play a recorded movie into a livedenoise server as if it were a camera (demos, benchmarks, soak tests)."""

from __future__ import annotations

import itertools
import logging
import os
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import zmq
from numpy.typing import NDArray

from livedenoise.clients.keys import ClientKeys
from livedenoise.clients.movie_io import read_movie
from livedenoise.clients.stream import Reply, StreamClient, StreamResult

__all__ = ["replay_movie"]

logger = logging.getLogger(__name__)


def _frames(movie: NDArray[Any], loop: bool, max_frames: int | None) -> Iterator[NDArray[Any]]:
    source: Iterator[NDArray[Any]] = itertools.cycle(movie) if loop else iter(movie)
    return itertools.islice(source, max_frames) if max_frames is not None else source


def replay_movie(
    source: str | os.PathLike[str] | NDArray[Any],
    endpoint: str,
    fps: float,
    *,
    stream: str = "cam0",
    loop: bool = False,
    max_frames: int | None = None,
    stop: Callable[[], bool] | None = None,
    series: str | None = None,
    mode: str | None = None,
    keep_frames: bool | None = None,
    max_in_flight: int = 64,
    timeout_s: float = 30.0,
    context: zmq.Context[Any] | None = None,
    on_reply: Callable[[Reply], None] | None = None,
    progress: Callable[[float], None] | None = None,
    curve: ClientKeys | None = None,
) -> StreamResult:
    """Send a movie to ``endpoint`` at ``fps`` frames per second, as one series, and collect the replies.

    Frames leave on a monotonic schedule (frame ``i`` at ``t0 + i / fps``), so the rate does not drift
    with the time spent sending and receiving; a frame that could not leave on time (the server held
    back all the credit) is counted in ``StreamResult.late_frames``.

    Parameters
    ----------
    source
        A ``.tif``/``.tiff``/``.npy`` path (read with :func:`~livedenoise.clients.movie_io.read_movie`)
        or a ``[T, Y, X]`` array.
    endpoint
        The server's `frames/1` endpoint, e.g. ``"tcp://127.0.0.1:5555"``.
    fps
        Camera frame rate.
    stream
        Stream id the frames are sent under.
    loop
        Repeat the movie (indices keep increasing) until ``max_frames`` frames were sent or ``stop()``
        returns true; one of the two is required.
    max_frames
        Send at most this many frames.
    stop
        Polled before every frame; true ends the series (flushed, with its ``end`` reply).
    series, mode
        As in :meth:`StreamClient.denoise`.
    keep_frames
        Keep the denoised pixels in the result; default: yes unless looping.
    max_in_flight, timeout_s, context
        As in :class:`StreamClient`.
    on_reply, progress
        Called with every reply, and with the fraction of frames answered (when the count is known).
    curve
        Keys for a server with CURVE authentication (see :class:`~livedenoise.clients.keys.ClientKeys`).

    Returns
    -------
    StreamResult
    """
    if not fps > 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    if max_frames is not None and max_frames < 1:
        raise ValueError(f"max_frames must be >= 1, got {max_frames}")
    if loop and max_frames is None and stop is None:
        raise ValueError("loop=True plays forever: give max_frames or a stop() callable")
    if isinstance(source, (str, os.PathLike)):
        movie = read_movie(source)
        name = str(source)
    else:
        movie = np.asarray(source)
        if movie.ndim == 2:
            movie = movie[np.newaxis]
        if movie.ndim != 3 or movie.shape[0] == 0:
            raise ValueError(f"movie must be [T, Y, X] with T >= 1, got shape {movie.shape}")
        name = "array"
    t = int(movie.shape[0])
    total = max_frames if loop else min(t, max_frames or t)
    logger.info("replaying %s %s %s at %g fps to %s (stream %s)", name, movie.shape, movie.dtype, fps, endpoint, stream)
    with StreamClient(
        endpoint, stream=stream, context=context, max_in_flight=max_in_flight, timeout_s=timeout_s, curve=curve
    ) as client:
        return client.stream_frames(
            _frames(movie, loop, max_frames),
            dtype=movie.dtype,
            shape=(int(movie.shape[1]), int(movie.shape[2])),
            total=total,
            series=series,
            fps=fps,
            mode=mode,
            on_reply=on_reply,
            progress=progress,
            keep_frames=(not loop) if keep_frames is None else keep_frames,
            stop=stop,
        )
