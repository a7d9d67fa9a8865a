"""ModelRegistry against real ONNX files on disk."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import onnx
import pytest

from livedenoise.clients.model_spec import METADATA_KEY, WindowSpec
from livedenoise.server.errors import Conflict, InvalidModel, UnknownModel
from livedenoise.server.registry import ModelRegistry


def _files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def test_add_path_stores_by_content_and_parses_spec(tmp_path: Path, model_file) -> None:
    registry = ModelRegistry(tmp_path / "models")
    source = model_file(seed=1)

    record = registry.add_path(source, name="first")

    sha = hashlib.sha256(source.read_bytes()).hexdigest()
    assert record.id == "m-" + sha[:12]
    assert record.sha256 == sha and record.size == source.stat().st_size
    assert record.name == "first" and record.source == source.name
    assert record.spec["window"]["before"] == 1 and record.spec["method"] == "test_mix"
    assert registry.path_of(record.id).read_bytes() == source.read_bytes()
    assert registry.get(record.id) == record
    assert [r.id for r in registry.list()] == [record.id]


def test_duplicate_content_returns_same_id(tmp_path: Path, model_file) -> None:
    registry = ModelRegistry(tmp_path / "models")
    source = model_file(seed=2)
    first = registry.add_path(source, name="a")
    again = registry.add_bytes(source.read_bytes(), name="b")
    other = registry.add_path(model_file(seed=3))
    assert again.id == first.id and again.name == "a"
    assert other.id != first.id
    assert len(registry.list()) == 2


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("corrupt", "not a valid ONNX model"),
        ("external", "keeps its data in an external file"),
        ("no_spec", "has no 'livedenoise.spec' metadata"),
        ("empty", "empty"),
        ("bad_spec", "'before' must be an integer >= 0"),
        ("window_mismatch", "has 3 planes but the spec's window needs 5"),
    ],
)
def test_invalid_files_are_refused_and_nothing_is_stored(tmp_path: Path, onnx_models, kind: str, message: str) -> None:
    registry = ModelRegistry(tmp_path / "models")
    path = tmp_path / f"{kind}.onnx"
    if kind == "corrupt":
        onnx_models.write_corrupt_model(path)
    elif kind == "external":  # a tensor whose data "lives" in another file: ORT would read that file
        onnx_models.make_mix_model(path, WindowSpec(before=1, after=1))
        model = onnx.load(str(path))
        secret = tmp_path / "secret.bin"
        secret.write_bytes(b"\0" * 64)
        tensor = onnx.TensorProto(name="stolen", data_type=onnx.TensorProto.FLOAT, dims=[16])
        tensor.data_location = onnx.TensorProto.EXTERNAL
        entry = tensor.external_data.add()
        entry.key, entry.value = "location", "secret.bin"
        model.graph.initializer.append(tensor)
        onnx.save(model, str(path))
    elif kind == "no_spec":
        onnx_models.write_model_without_spec(path)
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "bad_spec":
        onnx_models.make_mix_model(path, WindowSpec(before=1, after=1))
        model = onnx.load(str(path))
        for prop in model.metadata_props:
            if prop.key == METADATA_KEY:
                spec = json.loads(prop.value)
                spec["window"]["before"] = -1
                prop.value = json.dumps(spec)
        onnx.save(model, str(path))
    else:  # the graph takes 3 frames but the spec claims a 5-frame window
        onnx_models.make_mix_model(path, WindowSpec(before=1, after=1), static_hw=(16, 16))
        model = onnx.load(str(path))
        for prop in model.metadata_props:
            if prop.key == METADATA_KEY:
                spec = json.loads(prop.value)
                spec["window"]["before"] = 3
                prop.value = json.dumps(spec)
        model.graph.input[0].type.tensor_type.shape.dim[1].dim_value = 3
        onnx.save(model, str(path))
    before = _files(registry.models_dir)

    with pytest.raises(InvalidModel) as info:
        registry.add_path(path)

    assert info.value.code == "invalid_model" and message in info.value.message
    assert _files(registry.models_dir) == before
    assert registry.list() == []


def test_error_messages_name_the_problem(tmp_path: Path, onnx_models) -> None:
    registry = ModelRegistry(tmp_path / "models")
    with pytest.raises(InvalidModel, match="not a valid ONNX model"):
        registry.add_path(onnx_models.write_corrupt_model(tmp_path / "c.onnx"))
    with pytest.raises(InvalidModel, match=METADATA_KEY):
        registry.add_path(onnx_models.write_model_without_spec(tmp_path / "n.onnx"))
    with pytest.raises(InvalidModel, match="does not exist"):
        registry.add_path(tmp_path / "missing.onnx")


def test_active_model_persists_and_cannot_be_deleted(tmp_path: Path, model_file) -> None:
    registry = ModelRegistry(tmp_path / "models")
    a = registry.add_path(model_file(seed=4))
    b = registry.add_path(model_file(seed=5))
    assert registry.active_id() is None

    registry.set_active(a.id)
    reopened = ModelRegistry(tmp_path / "models")

    assert reopened.active_id() == a.id
    with pytest.raises(Conflict, match=a.id):
        reopened.delete(a.id)
    assert reopened.delete(b.id).id == b.id
    assert [r.id for r in reopened.list()] == [a.id]
    assert not reopened.path_of(b.id).exists()


def test_unknown_ids(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path / "models")
    for bad in ("m-000000000000", "../../etc/passwd", "nonsense"):
        with pytest.raises(UnknownModel):
            registry.get(bad)
        with pytest.raises(UnknownModel):
            registry.delete(bad)
    with pytest.raises(UnknownModel):
        registry.set_active("m-000000000000")


def test_upload_over_the_size_limit_is_refused_and_nothing_kept(tmp_path: Path, model_file) -> None:
    from livedenoise.server.errors import UploadTooLarge

    source = model_file(seed=4)
    registry = ModelRegistry(tmp_path / "models", max_bytes=source.stat().st_size - 1)

    with pytest.raises(UploadTooLarge, match="limit of"):
        registry.add_path(source)

    assert registry.list() == [] and _files(tmp_path / "models") == []
    assert (
        ModelRegistry(tmp_path / "models", max_bytes=source.stat().st_size).add_path(source).size
        == source.stat().st_size
    )


def test_the_check_runs_in_a_limited_child_process(tmp_path: Path, model_file, monkeypatch: pytest.MonkeyPatch) -> None:
    """A model that needs more memory than the checking process may have is refused; the server is untouched."""
    from livedenoise.server import model_check

    monkeypatch.setattr(model_check, "CHECK_MEMORY_BYTES", 64 * 1024**2)  # too little for ONNX Runtime itself
    registry = ModelRegistry(tmp_path / "models")
    with pytest.raises(InvalidModel, match="could not be checked"):
        registry.add_path(model_file(seed=1))
    assert registry.list() == []
