"""BioImage Model Zoo packages: export a really trained model, validate it with bioimageio.spec offline, check
its test tensors against the serving engine, import it back, and refuse packages that are not ours or broken.

Every test runs with the network blocked and counted: validation must not make a single request."""

from __future__ import annotations

import io
import socket
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import onnx
import pytest

pytest.importorskip("bioimageio.spec")
pytest.importorskip("onnxruntime")

from bioimageio.spec import load_description  # noqa: E402
from bioimageio.spec.model.v0_5 import ModelDescr  # noqa: E402
from bioimageio.spec.utils import read_yaml, write_yaml  # noqa: E402

from livedenoise.clients.model_spec import METADATA_KEY, EstimateSpec, ModelSpec, WindowSpec  # noqa: E402
from livedenoise.clients.windowing import reflect_position  # noqa: E402
from livedenoise.models.bmz import BmzError, PackageOptions, export_package, import_package  # noqa: E402
from livedenoise.models.bmz._bioimageio import summary_problems, urls_in  # noqa: E402
from livedenoise.models.bmz.method_facts import PAPER_DOIS  # noqa: E402
from livedenoise.models.synthetic import SyntheticMovie  # noqa: E402
from livedenoise.models.trainer import TrainResult  # noqa: E402
from livedenoise.server.engine.loader import load_engine  # noqa: E402
from livedenoise.server.engine.offline import denoise_movie  # noqa: E402

OPTIONS = PackageOptions(authors=("Ada Lovelace",))
MAINTAINER_ALERT = "Missing `maintainers` or any author in `authors` with a specified `github_user` name."
CITE_WARNING = "cite: Needs to be filled for FAIR compliance"


def _only(warnings: list[str], expected: str) -> bool:
    """Whether ``warnings`` is the one ``expected`` warning (bioimageio.spec prefixes some with its version)."""
    return len(warnings) == 1 and warnings[0].endswith(expected)


@pytest.fixture(scope="module", autouse=True)
def network_attempts() -> Iterator[list[str]]:
    """Block the network for the whole module and record every attempt (there must be none)."""
    attempts: list[str] = []

    def refuse(*args: Any, **kwargs: Any) -> Any:
        attempts.append(repr(args[:3]))
        raise OSError("network access is blocked in the BioImage Model Zoo tests")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(socket, "getaddrinfo", refuse)
        mp.setattr(socket, "create_connection", refuse)
        mp.setattr(socket.socket, "connect", refuse)
        mp.setattr(socket.socket, "connect_ex", refuse)
        yield attempts
    assert not attempts, f"bioimageio validation went to the network: {attempts}"


@pytest.fixture(scope="module")
def trained(tiny_result: TrainResult, tiny_movie: SyntheticMovie, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A really trained DeepCAD-RT model (the suite's tiny one), exported to ONNX and packaged."""
    from livedenoise.models.export import export_onnx

    folder = tmp_path_factory.mktemp("bmz")
    export_onnx(tiny_result, folder / "model.onnx")
    export_package(
        folder / "model.onnx", folder / "package.zip", tiny_movie.noisy, movie_name="noisy.tif", options=OPTIONS
    )
    return folder


def _rdf(package: Path) -> dict[str, Any]:
    with zipfile.ZipFile(package) as archive:
        content = read_yaml(io.StringIO(archive.read("rdf.yaml").decode()))
    assert isinstance(content, dict)
    return content


def _member(package: Path, name: str) -> bytes:
    with zipfile.ZipFile(package) as archive:
        return archive.read(name)


def _array(package: Path, name: str) -> np.ndarray:
    return np.load(io.BytesIO(_member(package, name)))


def _validate(package: Path) -> Any:
    """The package validated by bioimageio.spec with io checks, its URLs known (its zip closed after)."""
    with zipfile.ZipFile(package) as archive:
        return load_description(archive, perform_io_checks=True, known_files=dict.fromkeys(urls_in(_rdf(package))))


def _rezip(package: Path, target: Path, edit: Callable[[dict[str, bytes]], None]) -> Path:
    """A copy of ``package`` whose members ``edit`` changed (a dict of name -> bytes)."""
    with zipfile.ZipFile(package) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    edit(members)
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return target


def _edit_rdf(members: dict[str, bytes], change: Callable[[dict[str, Any]], None]) -> None:
    content = read_yaml(io.StringIO(members["rdf.yaml"].decode()))
    assert isinstance(content, dict)
    change(content)
    out = io.StringIO()
    write_yaml(content, out)
    members["rdf.yaml"] = out.getvalue().encode()


# --------------------------------------------------------------------------- the package of a trained model


def test_package_of_a_trained_model_validates_offline_without_a_warning(
    trained: Path, network_attempts: list[str]
) -> None:
    descr = _validate(trained / "package.zip")
    assert isinstance(descr, ModelDescr), descr.validation_summary.format()
    errors, warnings = summary_problems(descr.validation_summary)
    # bioimageio.spec alone reaches "valid-format" (format, every file's sha256, test tensor shapes); "passed"
    # needs bioimageio.core to run the weights, which test_steps_reproduce_the_test_output does here instead.
    assert descr.validation_summary.status == "valid-format"
    # FAIR-complete (covers, documentation, samples, citation, licence); the one alert is the zoo's maintainer,
    # a GitHub user name, which bioimageio.spec would look up on GitHub: the uploader gives it on bioimage.io.
    assert errors == [] and _only(warnings, MAINTAINER_ALERT), warnings
    assert network_attempts == []


def test_package_holds_ours_files_axes_and_normalisation(trained: Path) -> None:
    package = trained / "package.zip"
    with zipfile.ZipFile(package) as archive:
        assert archive.testzip() is None
        names = set(archive.namelist())
    assert names == {
        "rdf.yaml", "weights.onnx", "test_input.npy", "test_output.npy", "sample_input.tif", "sample_output.tif",
        "cover.png", "README.md",
    }  # fmt: skip
    assert _member(package, "weights.onnx") == (trained / "model.onnx").read_bytes()
    assert _member(package, "cover.png").startswith(b"\x89PNG\r\n\x1a\n")
    rdf = _rdf(package)
    spec = ModelSpec.from_json(rdf["config"]["livedenoise"]["spec_json"])
    assert spec.method == "deepcad_rt"
    assert rdf["cite"] == [{"text": rdf["cite"][0]["text"], "doi": PAPER_DOIS["deepcad_rt"]}]
    assert "Real-time denoising" in rdf["cite"][0]["text"]
    (tensor_in,), (tensor_out,) = rdf["inputs"], rdf["outputs"]
    assert [a["type"] for a in tensor_in["axes"]] == ["batch", "time", "space", "space"]
    assert [a.get("id") for a in tensor_in["axes"][1:]] == ["time", "y", "x"]
    assert tensor_in["axes"][1]["size"] == spec.window.input_planes
    assert tensor_out["axes"][1]["size"] == spec.window.out_frames
    assert tensor_in["axes"][2]["size"]["step"] == spec.window.spatial_multiple
    assert tensor_out["axes"][2]["size"] == {"tensor_id": "frames", "axis_id": "y"}
    n = spec.normalization
    (pre,) = [s for s in tensor_in["preprocessing"] if s["id"] == "scale_linear"]
    (post,) = [s for s in tensor_out["postprocessing"] if s["id"] == "scale_linear"]
    assert pre["kwargs"] == pytest.approx({"gain": 1 / n.scale, "offset": -n.offset / n.scale})
    assert post["kwargs"] == pytest.approx({"gain": n.scale, "offset": n.offset})
    assert rdf["weights"]["onnx"]["opset_version"] == 17
    assert rdf["config"]["livedenoise"]["test_window"]["training_movie"] is True
    assert rdf["config"]["bioimageio"]["model_parameter_count"] > 1000


def test_test_tensors_are_a_window_of_the_training_movie_and_what_the_server_returns(
    trained: Path, tiny_movie: SyntheticMovie
) -> None:
    package = trained / "package.zip"
    window = _rdf(package)["config"]["livedenoise"]["test_window"]
    y0, x0, h, w = window["crop_yxhw"]
    start = window["first_denoised_frame"]
    spec = ModelSpec.from_json(_rdf(package)["config"]["livedenoise"]["spec_json"])
    movie = tiny_movie.noisy[:, y0 : y0 + h, x0 : x0 + w]
    ws = spec.window
    positions = [
        reflect_position(p, movie.shape[0]) for p in range(start - ws.before, start + ws.out_frames + ws.after)
    ]
    test_in, test_out = _array(package, "test_input.npy"), _array(package, "test_output.npy")
    assert test_in.dtype == test_out.dtype == np.float32
    np.testing.assert_array_equal(test_in[0], movie[positions].astype(np.float32))
    # The whole crop streamed through the server's own windowing and engine gives the same frames.
    served = denoise_movie(load_engine(trained / "model.onnx", model_id="m", threads=1), movie, batch_size=2)
    expected = served[start : start + ws.out_frames]
    np.testing.assert_allclose(test_out[0], expected, rtol=0, atol=1e-5 * float(np.abs(expected).max()))


def test_steps_of_the_description_reproduce_the_test_output_in_onnx_runtime(trained: Path) -> None:
    """What a zoo tool does: scale_linear, the weights, scale_linear back, read from rdf.yaml alone."""
    import onnxruntime as ort

    package = trained / "package.zip"
    rdf = _rdf(package)
    (pre,) = [s["kwargs"] for s in rdf["inputs"][0]["preprocessing"] if s["id"] == "scale_linear"]
    (post,) = [s["kwargs"] for s in rdf["outputs"][0]["postprocessing"] if s["id"] == "scale_linear"]
    x = _array(package, "test_input.npy") * np.float32(pre["gain"]) + np.float32(pre["offset"])
    session = ort.InferenceSession(_member(package, "weights.onnx"), providers=["CPUExecutionProvider"])
    y = session.run(None, {"frames": x.astype(np.float32)})[0] * np.float32(post["gain"]) + np.float32(post["offset"])
    expected = _array(package, "test_output.npy")
    np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-4 * float(np.abs(expected).max()))


def test_documentation_says_window_normalisation_score_usage_and_citation(trained: Path) -> None:
    doc = _member(trained / "package.zip", "README.md").decode()
    spec = ModelSpec.from_json(_rdf(trained / "package.zip")["config"]["livedenoise"]["spec_json"])
    assert "## Validation" in doc and "holds no held-out score" in doc  # 48 frames: none held out (see below)
    assert f"{spec.window.before} frames before" in doc
    assert f"(x - {spec.normalization.offset:g}) / {spec.normalization.scale:g}" in doc and "scale_linear" in doc
    assert "livedenoise import-bmz package.zip model.onnx" in doc and "livedenoise denoise" in doc
    assert PAPER_DOIS["deepcad_rt"] in doc
    assert "the training movie (`noisy.tif`" in doc


def test_import_gives_back_the_identical_onnx_file_from_the_zip_and_from_its_folder(
    trained: Path, tmp_path: Path
) -> None:
    original = (trained / "model.onnx").read_bytes()
    result = import_package(trained / "package.zip", tmp_path / "back.onnx")
    assert (tmp_path / "back.onnx").read_bytes() == original
    assert result.spec == ModelSpec.from_metadata(
        {p.key: p.value for p in onnx.load(str(trained / "model.onnx")).metadata_props}
    )
    assert result.reproduction.passed and result.status == "valid-format"
    unpacked = tmp_path / "unpacked"
    with zipfile.ZipFile(trained / "package.zip") as archive:
        archive.extractall(unpacked)
    import_package(unpacked, tmp_path / "from_folder.onnx")
    assert (tmp_path / "from_folder.onnx").read_bytes() == original


# --------------------------------------------------------------------------- description variants (tiny graphs)


def _with_spec(path: Path, spec: ModelSpec) -> Path:
    """Replace the embedded spec of an ONNX file (the graph must already honour it)."""
    model = onnx.load(str(path))
    del model.metadata_props[:]
    onnx.helper.set_model_props(model, {METADATA_KEY: spec.to_json()})
    onnx.save(model, str(path))
    return path


def _variant(kind: str, onnx_models: ModuleType, path: Path) -> Path:
    """A tiny graph and spec for each shape of description: spatial multiple, running mean, fixed frame size,
    several estimates, and a method with a citation but no DOI."""
    make = onnx_models.make_mix_model
    if kind == "multiple":
        return make(path, WindowSpec(before=2, after=1, out_frames=2, spatial_multiple=4), levels=2)
    if kind == "running_mean":  # one more input plane than frames: the graph is built for it, then the spec says so
        make(path, WindowSpec(before=2, after=2, spatial_multiple=2), levels=1)
        window = WindowSpec(before=2, after=1, spatial_multiple=2, reference="running_mean")
        return _with_spec(path, onnx_models.make_spec(window))
    if kind == "frame_shape":
        make(path, WindowSpec(before=1, after=1), static_hw=(24, 20))
        spec = onnx_models.make_spec(WindowSpec(before=1, after=1))
        return _with_spec(path, ModelSpec(**{**spec.__dict__, "frame_shape": (24, 20)}))
    if kind == "estimates":  # final (reads 2 ahead) and causal (reads none) of one frame: two output planes
        make(path, WindowSpec(before=3, after=1, out_frames=2))
        spec = onnx_models.make_spec(WindowSpec(before=3, after=2))
        estimates = (EstimateSpec("final", 2), EstimateSpec("causal", 0))
        return _with_spec(path, ModelSpec(**{**spec.__dict__, "estimates": estimates}))
    if kind == "url_citation":
        make(path, WindowSpec(before=1, after=1))
        spec = onnx_models.make_spec(WindowSpec(before=1, after=1), method="someone_else")
        extra = {"citation": "Someone et al., A denoiser, Some Journal (2020)", "family": "blind-spot frame"}
        return _with_spec(path, ModelSpec(**{**spec.__dict__, "extra": extra}))
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["multiple", "running_mean", "frame_shape", "estimates", "url_citation"])
def test_every_shape_of_model_gives_a_valid_package_that_imports_back(
    kind: str, onnx_models: ModuleType, tmp_path: Path, network_attempts: list[str]
) -> None:
    model = _variant(kind, onnx_models, tmp_path / "model.onnx")
    movie = np.random.default_rng(1).poisson(80.0, (13, 24, 20)).astype(np.uint16)
    result = export_package(model, tmp_path / "p.zip", movie, movie_name="m.npy", options=OPTIONS)
    spec = result.spec
    assert result.reproduction.passed
    assert result.sample.window.shape == (1, spec.window.input_planes, 24, 20)
    assert result.sample.output.shape == (1, spec.output_planes, 24, 20)
    descr = _validate(tmp_path / "p.zip")
    assert isinstance(descr, ModelDescr), descr.validation_summary.format()
    errors, warnings = summary_problems(descr.validation_summary)
    assert errors == []
    # An unregistered test method has no paper to cite (bioimageio.spec then reports the citation, before the
    # maintainer).
    assert _only(warnings, MAINTAINER_ALERT if kind == "url_citation" else CITE_WARNING), warnings
    rdf = _rdf(tmp_path / "p.zip")
    if kind == "url_citation":
        assert rdf["cite"][0]["url"].startswith("https://scholar.google.com/scholar?q=Someone")
    if kind == "frame_shape":
        assert [a["size"] for a in rdf["inputs"][0]["axes"][2:]] == [24, 20]
    import_package(tmp_path / "p.zip", tmp_path / "back.onnx")
    assert (tmp_path / "back.onnx").read_bytes() == model.read_bytes()
    assert network_attempts == []


def test_the_network_guard_would_see_a_url_checked_online(
    onnx_models: ModuleType, tmp_path: Path, network_attempts: list[str]
) -> None:
    """The guard is real: validating the same package without its URLs as known files goes out (and is
    refused), so the tests above show the known-files context is what keeps validation offline."""
    model = _variant("url_citation", onnx_models, tmp_path / "model.onnx")
    movie = np.random.default_rng(1).poisson(80.0, (13, 24, 20)).astype(np.uint16)
    export_package(model, tmp_path / "p.zip", movie, movie_name="m.npy", options=OPTIONS)
    before = len(network_attempts)
    with zipfile.ZipFile(tmp_path / "p.zip") as archive:
        load_description(archive, perform_io_checks=True, known_files={})
    assert len(network_attempts) > before
    del network_attempts[before:]  # expected here; the module's final check stays meaningful


@pytest.mark.parametrize(("model_db", "verdict"), [(17.15, "the model is 2.70 dB better."), (13.0, "does NOT beat")])
def test_documentation_puts_the_held_out_score_beside_the_classical_filter(
    model_db: float, verdict: str, onnx_models: ModuleType, tmp_path: Path
) -> None:
    model = _variant("multiple", onnx_models, tmp_path / "model.onnx")
    spec = ModelSpec.from_metadata({p.key: p.value for p in onnx.load(str(model)).metadata_props})
    validation = {
        "heldout_frames": 74, "model_gain_db": model_db, "best_filter": "gaussian_3d(1,1,1)",
        "best_filter_gain_db": 14.45, "filters": {"gaussian_3d(1,1,1)": 14.45}, "best_epoch": 3,
    }  # fmt: skip
    _with_spec(model, ModelSpec(**{**spec.__dict__, "extra": {"validation": validation}}))
    movie = np.random.default_rng(1).poisson(80.0, (13, 24, 20)).astype(np.uint16)
    result = export_package(model, tmp_path / "p.zip", movie, movie_name="m.npy", options=OPTIONS)
    doc = _member(result.path, "README.md").decode()
    assert f"model {model_db:+.2f} dB, best classical filter gaussian_3d(1,1,1) +14.45 dB" in doc
    assert verdict in doc
    assert _rdf(result.path)["config"]["livedenoise"]["validation"]["best_filter_gain_db"] == 14.45


# --------------------------------------------------------------------------- refusals


@pytest.fixture
def small_package(onnx_models: ModuleType, tmp_path: Path) -> Path:
    model = _variant("multiple", onnx_models, tmp_path / "model.onnx")
    movie = np.random.default_rng(2).poisson(50.0, (9, 16, 16)).astype(np.uint16)
    return export_package(model, tmp_path / "p.zip", movie, movie_name="m.npy", options=OPTIONS).path


def test_import_refuses_a_package_livedenoise_did_not_write(small_package: Path, tmp_path: Path) -> None:
    def foreign(members: dict[str, bytes]) -> None:
        _edit_rdf(members, lambda rdf: rdf["config"].pop("livedenoise"))

    package = _rezip(small_package, tmp_path / "other.zip", foreign)
    assert isinstance(_validate(package), ModelDescr)  # a valid zoo model, just not ours
    with pytest.raises(BmzError, match=r"not exported by livedenoise: .* no config\.livedenoise section"):
        import_package(package, tmp_path / "out.onnx")
    assert not (tmp_path / "out.onnx").exists()


def test_import_refuses_a_corrupt_or_truncated_zip(small_package: Path, tmp_path: Path) -> None:
    data = bytearray(small_package.read_bytes())
    with zipfile.ZipFile(small_package) as archive:
        info = archive.getinfo("weights.onnx")
    middle = info.header_offset + 30 + len(info.filename) + info.compress_size // 2
    data[middle] ^= 0xFF
    (tmp_path / "corrupt.zip").write_bytes(bytes(data))
    with pytest.raises(BmzError, match=r"corrupt.*weights\.onnx.*CRC"):
        import_package(tmp_path / "corrupt.zip", tmp_path / "out.onnx")
    (tmp_path / "truncated.zip").write_bytes(bytes(data[: len(data) // 2]))
    with pytest.raises(BmzError, match="not a zip archive"):
        import_package(tmp_path / "truncated.zip", tmp_path / "out.onnx")
    with pytest.raises(FileNotFoundError):
        import_package(tmp_path / "absent.zip", tmp_path / "out.onnx")


@pytest.mark.parametrize(
    ("missing", "message"),
    [
        ("test_output.npy", r"is missing test_output\.npy, which its rdf\.yaml names"),
        ("weights.onnx", r"is missing weights\.onnx, which its rdf\.yaml names"),
        ("rdf.yaml", r"has no rdf\.yaml .*not a BioImage Model Zoo package"),
    ],
)
def test_import_names_a_missing_file(missing: str, message: str, small_package: Path, tmp_path: Path) -> None:
    package = _rezip(small_package, tmp_path / "partial.zip", lambda members: members.pop(missing))
    with pytest.raises(BmzError, match=message):
        import_package(package, tmp_path / "out.onnx")


def test_import_refuses_weights_changed_after_export(
    small_package: Path, onnx_models: ModuleType, tmp_path: Path
) -> None:
    # Other weights under the same name: their sha256 is not the recorded one.
    other = onnx_models.make_mix_model(
        tmp_path / "other.onnx", WindowSpec(before=2, after=1, out_frames=2, spatial_multiple=4), levels=2, seed=5
    )

    def swap(members: dict[str, bytes]) -> None:
        members["weights.onnx"] = other.read_bytes()

    with pytest.raises(BmzError, match="(?i)sha256 mismatch.*weights.onnx"):
        import_package(_rezip(small_package, tmp_path / "swapped.zip", swap), tmp_path / "out.onnx")

    # Weights whose embedded spec was edited, with the hash updated to match: the metadata check catches it.
    edited = onnx.load_model_from_string(_member(small_package, "weights.onnx"))
    spec = ModelSpec.from_json(next(p.value for p in edited.metadata_props if p.key == METADATA_KEY))
    del edited.metadata_props[:]
    onnx.helper.set_model_props(edited, {METADATA_KEY: ModelSpec(**{**spec.__dict__, "version": "edited"}).to_json()})
    data = edited.SerializeToString()

    def tamper(members: dict[str, bytes]) -> None:
        import hashlib

        members["weights.onnx"] = data
        _edit_rdf(members, lambda rdf: rdf["weights"]["onnx"].update(sha256=hashlib.sha256(data).hexdigest()))

    with pytest.raises(BmzError, match="livedenoise metadata differs"):
        import_package(_rezip(small_package, tmp_path / "tampered.zip", tamper), tmp_path / "out.onnx")


def test_export_refuses_foreign_models_and_movies_the_model_cannot_take(
    onnx_models: ModuleType, tmp_path: Path
) -> None:
    movie = np.zeros((5, 16, 16), np.uint16)
    bare = onnx_models.write_model_without_spec(tmp_path / "bare.onnx")
    with pytest.raises(BmzError, match="no livedenoise metadata"):
        export_package(bare, tmp_path / "p.zip", movie, movie_name="m.npy")
    corrupt = onnx_models.write_corrupt_model(tmp_path / "corrupt.onnx")
    with pytest.raises(BmzError, match="not an ONNX model"):
        export_package(corrupt, tmp_path / "p.zip", movie, movie_name="m.npy")
    model = _variant("frame_shape", onnx_models, tmp_path / "fixed.onnx")
    with pytest.raises(BmzError, match="serves only 24x20 frames"):
        export_package(model, tmp_path / "p.zip", movie, movie_name="m.npy")
    with pytest.raises(BmzError, match=r"must be \[T, H, W\]"):
        export_package(model, tmp_path / "p.zip", movie[0], movie_name="m.npy")
    assert not (tmp_path / "p.zip").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".bmz-")]  # no staging folder left behind


def test_export_leaves_an_existing_package_in_place_when_it_fails(small_package: Path, onnx_models: ModuleType) -> None:
    before = small_package.read_bytes()
    bad = PackageOptions(authors=("Ada Lovelace",), license="not-a-licence")
    model = small_package.parent / "model.onnx"
    movie = np.zeros((5, 16, 16), np.uint16)
    with pytest.raises(BmzError, match="license"):
        export_package(model, small_package, movie, movie_name="m.npy", options=bad)
    assert small_package.read_bytes() == before
    assert _rdf(small_package)["license"] == "CC-BY-4.0"
