"""Write a series' replies to an OME-Zarr movie as they arrive, one frame per frame sent.

The server answers every frame once, in order; a frame it skipped, failed or rejected becomes a NaN frame,
so ``t`` in the store is always the index the frame was sent with. Replies that come out of order (which
the protocol does not do, but a sink must not corrupt a movie if it ever did) wait until the gap fills.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from numpy.typing import NDArray

from livedenoise.clients.ome_zarr import OmeZarrMovieWriter
from livedenoise.clients.protocol import MessageType
from livedenoise.clients.stream_result import Reply

__all__ = ["ZarrReplySink"]

logger = logging.getLogger(__name__)


class ZarrReplySink:
    """An ``on_reply`` callback for one series that appends its denoised frames to ``writer``.

    Parameters
    ----------
    writer
        A float32 writer of the series' frame size.
    series
        Replies of other series (a previous series being flushed) are ignored.
    metadata
        livedenoise's attributes for the store (``attributes["livedenoise"]``); the serving model's id is
        added when the first frame names it.
    """

    def __init__(self, writer: OmeZarrMovieWriter, series: str, metadata: dict[str, Any] | None = None) -> None:
        self.writer = writer
        self.series = series
        self.metadata = dict(metadata or {})
        self._pending: dict[int, NDArray[np.float32]] = {}
        self._blank: NDArray[np.float32] | None = None

    def __call__(self, reply: Reply) -> None:
        header = reply.header
        if header.series != self.series or header.index is None or header.type is MessageType.END:
            return
        if reply.frame is not None:
            frame = reply.frame
            if header.model and self.metadata.get("model_id") != header.model:
                self.metadata["model_id"] = header.model
                self.writer.update_attributes({"livedenoise": self.metadata})
        else:
            frame = self._blank_frame(reply)
        self._pending[header.index] = frame
        while self.writer.frames in self._pending:
            self.writer.append(self._pending.pop(self.writer.frames))

    def _blank_frame(self, reply: Reply) -> NDArray[np.float32]:
        if self._blank is None:
            self._blank = np.full(self.writer.shape_yx, np.nan, dtype=np.float32)
        logger.debug("series %s frame %s: %s, stored as NaN", self.series, reply.index, reply.type.value)
        return self._blank

    @property
    def waiting(self) -> int:
        """Replies held back until an earlier index arrives (0 when the series ended cleanly)."""
        return len(self._pending)
