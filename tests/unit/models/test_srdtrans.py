"""SRDTrans: the orthogonal triplets never hand the network a target pixel, the stack length is fixed from training
to serving (refused otherwise, by the network and at load), the shifted windows keep wrapped regions apart, and
the served graph exports."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import onnx
import pytest
import torch
from pydantic import ValidationError

from livedenoise.clients.model_spec import METADATA_KEY, Normalization, WindowSpec
from livedenoise.models.config import TrainConfig
from livedenoise.models.export import export_onnx
from livedenoise.models.networks.srdtrans import SRDTransNet, shift_region_ids, window_merge, window_partition
from livedenoise.models.recipes import get_recipe
from livedenoise.models.recipes.srdtrans import TRIPLETS, draw_triplets, orthogonal_substacks
from livedenoise.models.trainer import TrainResult
from livedenoise.server.engine.loader import load_engine
from livedenoise.server.errors import InvalidModel

TINY = {"patch_t": 8, "levels": 2, "base_channels": 4, "embed_dim": 16, "heads": 2, "mlp_dim": 32, "patch_xy": 14}


def _unique(b: int, t: int, h: int, w: int) -> torch.Tensor:
    return torch.arange(b * t * h * w, dtype=torch.float32).view(b, t, h, w)


def test_triplets_are_a_pixel_and_its_horizontal_and_vertical_neighbours() -> None:
    assert len({tuple(t) for t in TRIPLETS.tolist()}) == 8
    for first, second, third in TRIPLETS.tolist():
        assert len({first, second, third}) == 3
        # Cell 0 1 / 2 3: one neighbour in the same row, the other in the same column, never the diagonal.
        same_row = {n for n in (second, third) if n // 2 == first // 2}
        same_col = {n for n in (second, third) if n % 2 == first % 2}
        assert len(same_row) == len(same_col) == 1 and same_row != same_col
    # Every pixel of the cell is the input pixel of two triplets (its two neighbours in either order).
    assert sorted(TRIPLETS[:, 0].tolist()) == [0, 0, 1, 1, 2, 2, 3, 3]
    index = draw_triplets(2, 5, 16, 16, torch.Generator().manual_seed(0))
    assert index.shape == (3, 2, 5, 8, 8) and bool((index[0] != index[1]).all() & (index[1] != index[2]).all())
    drawn = {tuple(t) for t in index.permute(1, 2, 3, 4, 0).reshape(-1, 3).tolist()}
    assert drawn == {tuple(t) for t in TRIPLETS.tolist()}


def test_no_input_pixel_is_a_target_pixel_and_targets_come_from_the_same_frame() -> None:
    b, t, h, w = 3, 8, 14, 14
    patches = _unique(b, t, h, w)
    for seed in range(4):
        sub1, sub2, sub3 = orthogonal_substacks(patches, torch.Generator().manual_seed(seed))
        assert sub1.shape == sub2.shape == sub3.shape == (b, t, h // 2, w // 2)
        assert not bool(torch.isin(sub1, torch.cat([sub2, sub3])).any())
        assert not bool(torch.isin(sub2, sub3).any())
        frame = lambda v: v.long() // (h * w)  # noqa: E731  # the sample and frame a unique value comes from
        assert bool((frame(sub1) == frame(sub2)).all() & (frame(sub1) == frame(sub3)).all())
        # The targets are the input pixel's neighbours: one in its row, the other in its column.
        row = lambda v: (v.long() % (h * w)) // w  # noqa: E731
        col = lambda v: v.long() % w  # noqa: E731
        for sub in (sub2, sub3):
            assert bool(((row(sub) - row(sub1)).abs() + (col(sub) - col(sub1)).abs() == 1).all())
        assert bool(((row(sub2) == row(sub1)) != (row(sub3) == row(sub1))).all())


def test_copying_the_input_cannot_lower_the_loss() -> None:
    """A network that copied its input pixel would score it against the neighbours only: with unique values at
    least 1 apart, every error is at least 1."""

    class Copy(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(()))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x + self.w

    recipe = get_recipe("srdtrans", **TINY)
    out = recipe.training_step(Copy(), _unique(2, 8, 14, 14), torch.Generator().manual_seed(0))
    assert float(out.loss.detach()) >= 1.0 and set(out.logs) == {"target2", "target3"}


def test_the_window_is_the_training_stack_with_the_middle_kept() -> None:
    w = TrainConfig(method="srdtrans").window()
    assert (w.before, w.out_frames, w.after, w.spatial_multiple) == (8, 16, 8, 7) and w.window_length == 32
    w = TrainConfig(method="srdtrans", patch_t=128, out_frames=96).window()
    assert (w.before, w.after, w.latency_frames) == (16, 16, 111)
    recipe = get_recipe("srdtrans", **TINY, out_frames=4)
    tw = recipe.training_window()
    assert tw.frames == tw.min_frames == 8 and tw.centre is None and tw.short_movie_centre is None
    assert tw.size == 14 and tw.spatial_multiple == 14


def test_served_graph_keeps_the_middle_of_the_network_output() -> None:
    torch.manual_seed(0)
    recipe = get_recipe("srdtrans", **TINY, out_frames=4, attn_dropout=0.0)
    model = recipe.build_model().eval()
    window = torch.randn(2, 8, 14, 21)
    with torch.no_grad():
        torch.testing.assert_close(recipe.export_module(model)(window), model(window)[:, 2:6], rtol=0, atol=0)


def test_a_stack_of_another_length_is_refused_naming_patch_t() -> None:
    net = SRDTransNet(patch_t=8, base_channels=2, levels=2, embed_dim=8, heads=2, mlp_dim=8)
    with pytest.raises(ValueError, match="patch_t=8 frames .* 2 tokens.* got 16 frames"):
        net(torch.zeros(1, 1, 16, 7, 7))
    with pytest.raises(ValueError, match="14x10 pixels are not multiples of the attention window \\(7\\)"):
        net(torch.zeros(1, 1, 8, 14, 10))
    with pytest.raises(ValueError, match="multiple of 2\\*\\*levels = 4"):
        SRDTransNet(patch_t=6, levels=2)


def test_window_partition_round_trips_and_shifted_regions_follow_the_reference() -> None:
    x = torch.randn(2, 14, 21, 3)
    windows = window_partition(x, 7)
    assert windows.shape == (12, 49, 3)
    torch.testing.assert_close(windows[1].reshape(7, 7, 3), x[0, :7, 7:14])  # row-major windows
    torch.testing.assert_close(window_merge(windows, x, 7), x, rtol=0, atol=0)
    # Shift 3 on a 14-pixel axis: rows 0..6 one region, 7..10 the next, 11..13 the wrapped-around part.
    ids = shift_region_ids(torch.zeros(1, 14, 14, 1), 7, 3)
    assert ids.shape == (4, 49)
    assert ids[0].unique().tolist() == [0.0]
    assert ids[3].reshape(7, 7)[:, 0].tolist() == [4.0] * 4 + [7.0] * 3
    assert ids[3].reshape(7, 7)[0].tolist() == [4.0] * 4 + [5.0] * 3


def test_shifted_windows_attend_within_their_window_and_region_only() -> None:
    """Gradient of one output pixel of the shifted Swin block: non-zero only inside its shifted window, and, in the
    window that wraps around the frame, only inside its own region (the reference's -100 mask)."""
    torch.manual_seed(0)
    net = SRDTransNet(patch_t=4, base_channels=2, levels=2, embed_dim=8, heads=2, mlp_dim=8, attn_dropout=0.0)
    block = net.blocks[0].spatial[1]
    assert block.shift == 3
    x = torch.randn(1, 14, 14, 8, requires_grad=True)

    def reach(y: int, x_: int) -> torch.Tensor:
        x.grad = None
        block(x)[0, y, x_].sum().backward()
        return x.grad[0].abs().sum(-1)

    grad = reach(5, 5)  # the shifted window covering rows and columns 3..9
    assert float(grad[8, 8]) > 0 and float(grad[3:10, 3:10].min()) > 0
    assert float(grad[:3].max()) < 1e-30 and float(grad[10:].max()) < 1e-30
    grad = reach(1, 1)  # the wrapped window: rows and columns 10..13 + 0..2, four regions
    assert float(grad[2, 2]) > 0 and float(grad[0, 0]) > 0
    assert float(grad[12, 12]) < 1e-30 and float(grad[1, 12]) < 1e-30 and float(grad[12, 1]) < 1e-30


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"patch_t": 40}, "patch_t=40 is not a multiple of 2\\*\\*levels = 16 .* use patch_t=32 or 48"),
        ({"heads": 3}, "embed_dim=128 is not divisible by heads=3; use heads in \\[1, 2, 4, 8"),
        ({"patch_xy": 64}, "patch_xy=64 is not a multiple of 2 \\* window_size = 14 .* use patch_xy=56 or 70"),
        ({"window_size": 8, "patch_xy": 56}, "patch_xy=56 is not a multiple of 2 \\* window_size = 16"),
        ({"out_frames": 15}, "cannot be split evenly before and after; use out_frames=14 or 16"),
        ({"out_frames": 40}, "out_frames=40 is more than the patch_t=32 frames a call computes; use at most 32"),
        ({"window_size": 1}, "greater than or equal to 2"),
        ({"batch_size": 0}, "greater than or equal to 1"),
        ({"loss": "huber"}, "'l1', 'l2' or 'l1_l2'"),
    ],
)
def test_bad_srdtrans_configs_say_how_to_fix_them(fields: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        TrainConfig(method="srdtrans", **fields)


@pytest.mark.slow
def test_export_matches_torch_and_a_window_unlike_the_graph_is_refused_at_load(tmp_path: Path) -> None:
    torch.manual_seed(0)
    config = TrainConfig(method="srdtrans", **TINY, out_frames=4, device="cpu")
    recipe = get_recipe("srdtrans", **TINY, out_frames=4)
    result = TrainResult(
        network=recipe.build_model().eval(),
        recipe=recipe,
        config=config,
        normalization=Normalization("zscore", 0.0, 1.0),
        window=recipe.window(),
    )
    path = tmp_path / "srdtrans.onnx"
    spec = export_onnx(result, path)  # ONNX Runtime against torch, other batch and size: relative error < 1e-4
    graph_input = onnx.load(str(path)).graph.input[0].type.tensor_type.shape.dim
    assert graph_input[1].dim_value == 8 and not graph_input[2].dim_value  # patch_t fixed, H dynamic
    load_engine(path, provider="cpu", threads=1).close()

    # The same graph under a spec whose window is another length (as a model exported with another patch_t
    # would be): refused when the engine opens it, naming both lengths.
    other = replace(spec, window=WindowSpec(before=4, after=4, out_frames=8, spatial_multiple=7))
    model = onnx.load(str(path))
    for prop in model.metadata_props:
        if prop.key == METADATA_KEY:
            prop.value = other.to_json()
    onnx.save(model, str(tmp_path / "mismatch.onnx"))
    with pytest.raises(InvalidModel, match="has 8 planes but the spec's window needs 16"):
        load_engine(tmp_path / "mismatch.onnx", provider="cpu", threads=1)
