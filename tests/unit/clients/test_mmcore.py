"""MMCoreStreamer's pieces that need no server: stream labels, event metadata, accounting, argument checks."""

from __future__ import annotations

import pytest

from livedenoise.clients.mmcore import AcquisitionSummary, MMCoreStreamer, StreamSummary, _event_meta, stream_label
from livedenoise.clients.protocol import encode_json


def test_stream_label_separates_every_axis_but_time():
    assert stream_label({"t": 5}) == "p0_c0"
    assert stream_label({"t": 1, "p": 2, "c": 1}) == "p2_c1"
    assert stream_label({"c": 1, "z": 3, "p": 0, "t": 9, "g": 4}) == "p0_g4_z3_c1"
    assert stream_label({"p": 1, "q": 2}) == "p1_c0_q2"


def test_summary_accounts_for_every_frame_once():
    s = StreamSummary(stream="mm-p0_c0", label="p0_c0", acquired=10, denoised=5, skipped=1, dropped=1,
                      errors={"inference_failed": 1}, rejected={"no_start": 1}, lost=1)  # fmt: skip
    assert s.accounted and s.not_denoised == 5
    s.lost = 0
    assert not s.accounted
    summary = AcquisitionSummary(acquisition="a", mode="live", streams=[s, StreamSummary("mm-p1_c0", "p1_c0")])
    assert summary.total("errors") == 1 and summary.total("acquired") == 10 and not summary.complete
    totals = summary.to_dict()["totals"]
    assert totals["dropped"] == 1 and totals["rejected"] == 1
    assert "5 denoised" in summary.describe()


def test_event_meta_leaves_out_the_sequence_and_stays_small():
    useq = pytest.importorskip("useq")
    sequence = useq.MDASequence(time_plan={"interval": 0, "loops": 2}, channels=["GFP"],
                                stage_positions=[{"x": 1, "y": 2, "name": "a"}])  # fmt: skip
    event = next(iter(sequence))
    meta = _event_meta(event)
    assert "sequence" not in meta and meta["index"] == {"t": 0, "p": 0, "c": 0}
    assert meta["channel"]["config"] == "GFP" and meta["pos_name"] == "a"
    big = event.model_copy(update={"metadata": {"notes": "x" * 5000}})
    small = _event_meta(big)
    assert len(encode_json(small)) <= 2048 and small["index"] == meta["index"]


def test_streamer_refuses_bad_arguments():
    with pytest.raises(ValueError, match="mode must be one of"):
        MMCoreStreamer(object(), "tcp://127.0.0.1:1", mode="fast")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_in_flight"):
        MMCoreStreamer(object(), "tcp://127.0.0.1:1", max_in_flight=0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="stream_prefix"):
        MMCoreStreamer(object(), "tcp://127.0.0.1:1", stream_prefix="")  # type: ignore[arg-type]
