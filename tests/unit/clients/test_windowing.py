from __future__ import annotations

import logging

import numpy as np
import pytest

from livedenoise.clients.model_spec import WindowSpec
from livedenoise.clients.windowing import SeriesWindow, reflect_position, stack_windows

SPECS = [
    WindowSpec(0, 0, 1),
    WindowSpec(2, 2, 1),
    WindowSpec(3, 1, 2),
    WindowSpec(1, 4, 3),
    WindowSpec(5, 0, 1),
    WindowSpec(0, 3, 4),
]


def frame_of(position: int) -> np.ndarray:
    """A 2x3 frame whose pixels encode its position, so window contents reveal their source."""
    return np.full((2, 3), position, dtype=np.uint16)


def reference_blocks(spec: WindowSpec, length: int) -> list[tuple[int, int, list[int]]]:
    """(start, count, source positions) of every block of a finished series, via np.pad(mode='reflect')."""
    k = spec.out_frames
    n_blocks = -(-length // k)
    pad_after = n_blocks * k - length + spec.after
    padded = np.pad(np.arange(length), (spec.before, pad_after), mode="reflect")
    return [
        (j * k, min(k, length - j * k), padded[j * k : j * k + spec.window_length].tolist()) for j in range(n_blocks)
    ]


@pytest.mark.parametrize("length", [1, 2, 3, 5, 8, 30])
def test_reflect_position_matches_numpy_reflect(length: int) -> None:
    padded = np.pad(np.arange(length), (25, 25), mode="reflect")
    got = [reflect_position(p, length) for p in range(-25, length + 25)]
    assert got == padded.tolist()


@pytest.mark.parametrize("spec", SPECS, ids=str)
@pytest.mark.parametrize("length", [1, 2, 3, 4, 7, 23])
@pytest.mark.parametrize("margin", [0, 16])
def test_streamed_blocks_match_reference_and_form_as_early_as_possible(
    spec: WindowSpec, length: int, margin: int, caplog: pytest.LogCaptureFixture
) -> None:
    series = SeriesWindow(history_margin=margin)
    formed: list[tuple[int, int, list[int], int | None]] = []  # + arrivals when formed (None: after end)
    for p in range(length):
        series.append(frame_of(p))
        while (block := series.next_block(spec)) is not None:
            formed.append((block.start, block.count, list(block.positions), series.arrived))
            # the window really holds the frames of those positions
            assert block.window.dtype == np.float32
            assert block.window[:, 0, 0].tolist() == list(block.positions)
    series.end()
    while (block := series.next_block(spec)) is not None:
        formed.append((block.start, block.count, list(block.positions), None))
        assert block.window[:, 0, 0].tolist() == list(block.positions)
    assert series.done
    assert [f[:3] for f in formed] == [tuple(r) for r in reference_blocks(spec, length)]
    needed = -1  # blocks form in order, so a block also waits for every earlier one
    for start, _, _, arrivals in formed:
        needed = max(needed, start + spec.out_frames - 1 + spec.after, spec.before - start)
        if needed < length:
            assert arrivals == needed + 1, f"block at {start} formed after {arrivals} arrivals, needed {needed + 1}"
        else:
            assert arrivals is None
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], "a needed frame was trimmed"


def test_one_frame_series_mirrors_to_itself() -> None:
    series = SeriesWindow()
    series.append(frame_of(7))
    spec = WindowSpec(3, 3, 1)
    assert series.next_block(spec) is None
    series.end()
    block = series.next_block(spec)
    assert block is not None and block.count == 1
    assert block.positions == (0,) * 7
    assert np.all(block.window == 7)
    assert series.next_block(spec) is None and series.done


def test_spec_change_between_blocks_uses_each_spec_from_next_position() -> None:
    a, b = WindowSpec(2, 2, 1), WindowSpec(1, 3, 2)
    series = SeriesWindow()
    blocks = []
    for p in range(20):
        series.append(frame_of(p))
        spec = a if p < 9 else b
        while (block := series.next_block(spec)) is not None:
            blocks.append(block)
    series.end()
    while (block := series.next_block(b)) is not None:
        blocks.append(block)
    starts = [blk.start for blk in blocks]
    covered = [p for blk in blocks for p in range(blk.start, blk.stop)]
    assert covered == list(range(20)), "every position answered exactly once across the swap"
    switch = next(i for i, blk in enumerate(blocks) if blk.spec == b)
    assert all(blk.spec == a for blk in blocks[:switch]) and all(blk.spec == b for blk in blocks[switch:])
    for blk in blocks:
        s = blk.start
        expected = [
            reflect_position(p, 20) for p in range(s - blk.spec.before, s + blk.spec.out_frames + blk.spec.after)
        ]
        assert list(blk.positions) == expected
    assert starts[switch + 1] - starts[switch] == 2


def test_history_is_trimmed_on_long_series() -> None:
    spec = WindowSpec(3, 2, 1)
    series = SeriesWindow(history_margin=4)
    for p in range(500):
        series.append(frame_of(p))
        while series.next_block(spec) is not None:
            pass
        assert series.held <= spec.before + spec.after + spec.out_frames + 4 + 1


def test_live_drop_removes_whole_blocks_and_keeps_context() -> None:
    spec = WindowSpec(2, 1, 2)
    series = SeriesWindow()
    for p in range(15):
        series.append(frame_of(p))
    dropped = series.drop_oldest(spec, budget=5)
    assert [list(r) for r in dropped] == [[0, 1], [2, 3], [4, 5], [6, 7], [8, 9]]
    assert series.waiting == 5
    block = series.next_block(spec)
    assert block is not None and block.start == 10
    # the dropped frames are still the context of the next block
    assert list(block.positions) == [8, 9, 10, 11, 12]


def test_live_drop_budget_never_below_what_a_block_needs() -> None:
    spec = WindowSpec(0, 3, 1)
    series = SeriesWindow()
    for p in range(4):
        series.append(frame_of(p))
    assert series.drop_oldest(spec, budget=1) == []  # 4 waiting is exactly after + out_frames
    assert series.next_block(spec) is not None


def test_skip_all_and_append_after_end() -> None:
    series = SeriesWindow()
    for p in range(3):
        series.append(frame_of(p))
    assert list(series.skip_all()) == [0, 1, 2]
    series.end()
    assert series.done
    with pytest.raises(ValueError, match="ended"):
        series.append(frame_of(3))


@pytest.mark.parametrize(
    "spec", [WindowSpec(3, 3, 1, reference="running_mean"), WindowSpec(1, 2, 3, reference="running_mean")], ids=str
)
@pytest.mark.parametrize("length", [1, 4, 23])
@pytest.mark.parametrize("arrive_in_bursts", [False, True])
def test_running_mean_plane_depends_on_the_series_not_on_timing(
    spec: WindowSpec, length: int, arrive_in_bursts: bool
) -> None:
    """The reference plane is the mean of positions 0 .. newest position the window reads, however the frames
    arrive (one by one, or in bursts that leave blocks to be formed later, or all before the end)."""
    rng = np.random.default_rng(length)
    frames = rng.integers(0, 1000, size=(length, 2, 3)).astype(np.uint16)
    series = SeriesWindow(history_margin=0)
    got: dict[int, np.ndarray] = {}
    for p, frame in enumerate(frames):
        series.append(frame)
        if arrive_in_bursts and p % 5 != 4:
            continue
        while (block := series.next_block(spec)) is not None:
            got[block.start] = block.window
    series.end()
    while (block := series.next_block(spec)) is not None:
        got[block.start] = block.window
    assert sorted(got) == list(range(0, length, spec.out_frames))
    for start, window in got.items():
        assert window.shape == (spec.input_planes, 2, 3)
        positions = [
            reflect_position(p, length) for p in range(start - spec.before, start + spec.out_frames + spec.after)
        ]
        np.testing.assert_array_equal(window[:-1], frames[positions].astype(np.float32))
        expected = frames[: max(positions) + 1].astype(np.float64).mean(axis=0)
        np.testing.assert_allclose(window[-1], expected, rtol=1e-6)


def test_window_spec_reference_is_validated_and_round_trips() -> None:
    from livedenoise.clients.model_spec import SpecError

    spec = WindowSpec(2, 2, 1, reference="running_mean")
    assert spec.input_planes == spec.window_length + 1 == 6
    fields = {"before": 2, "after": 2, "out_frames": 1, "spatial_multiple": 1}
    assert WindowSpec.from_dict({**fields, "reference": "running_mean"}) == spec
    assert WindowSpec.from_dict(fields).reference == "none"  # specs written before the field
    with pytest.raises(SpecError, match="reference"):
        WindowSpec(1, 1, reference="median")


def test_an_estimate_reading_fewer_future_frames_is_formed_as_soon_as_its_own_frames_arrive() -> None:
    """reads_after=0 on a 2+2 window: block [s, s+1] is ready once s+1 (and the start mirror) has arrived;
    the planes the estimate does not read repeat the newest frame it reads until the series ends."""
    spec = WindowSpec(2, 2, 2)
    series = SeriesWindow()
    for p in range(3):
        series.append(frame_of(p))
        if p < 2:  # the start mirror of position -2 is position 2
            assert not series.ready(spec, reads_after=0)
    assert not series.ready(spec)  # the full window needs position 3
    block = series.next_block(spec, reads_after=0)
    assert block is not None and (block.start, block.count) == (0, 2)
    assert list(block.positions) == [2, 1, 0, 1, 1, 1]  # mirrored start, then 1 repeated for the unread 2, 3
    assert block.window.shape == (spec.input_planes, 2, 3)
    series.append(frame_of(3))
    block = series.next_block(spec, reads_after=0)  # [2, 3] reads up to 3: formed without waiting for 4, 5
    assert block is not None and list(block.positions) == [0, 1, 2, 3, 3, 3]
    series.append(frame_of(4))
    series.end()
    tail = series.next_block(spec, reads_after=0)
    # Once ended, positions past the end are reflected as for any estimate (the estimate ignores them).
    assert tail is not None and (tail.start, tail.count, list(tail.positions)) == (4, 1, [2, 3, 4, 3, 2, 1])
    assert series.done


def test_live_drop_budget_counts_the_future_frames_of_the_series_estimate() -> None:
    spec = WindowSpec(0, 3, 1)
    series = SeriesWindow()
    for p in range(4):
        series.append(frame_of(p))
    assert [list(r) for r in series.drop_oldest(spec, budget=1, reads_after=0)] == [[0], [1], [2]]


def test_blocks_hold_the_received_frames_and_are_cast_once_where_the_engine_runs() -> None:
    spec = WindowSpec(1, 2, 1)
    series = SeriesWindow()
    frames = [np.full((3, 4), 250 + i, dtype=np.uint8 if i % 2 else np.uint16) for i in range(6)]
    for frame in frames:
        series.append(frame)
    series.end()
    blocks = [series.next_block(spec), series.next_block(spec)]
    assert all(b is not None for b in blocks)
    first, second = blocks[0], blocks[1]
    assert first is not None and second is not None
    # no copy when the block is formed (under the stream table's lock in the server): the series' own arrays
    assert all(plane is frames[p] for plane, p in zip(first.planes, first.positions))
    stacked = stack_windows([first, second])
    assert stacked.dtype == np.float32 and stacked.shape == (2, 4, 3, 4)
    expected = [[250.0 + p for p in block.positions] for block in (first, second)]
    assert stacked[:, :, 0, 0].tolist() == expected
    np.testing.assert_array_equal(first.window, stacked[0])
