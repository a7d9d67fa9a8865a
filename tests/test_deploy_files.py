"""Static checks of docker/*.Dockerfile and deploy/compose.yaml (no Docker daemon needed).

The runtime image must stay torch-free and never carry the CPU ``onnxruntime`` beside ``onnxruntime-gpu``;
every image exposes the ports and state directory the compose file and the docs promise.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DOCKER = ROOT / "docker"
HOME = "/var/lib/livedenoise"
PORTS = {5555, 5556, 8000}
ENTRYPOINT_SERVE = ["livedenoise", "serve", "--bind", "0.0.0.0"]


def _instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = pending + line, ""
        word, _, args = line.partition(" ")
        out.append((word.upper(), args.strip()))
    assert not pending, f"{path.name}: dangling line continuation"
    return out


def _args(instructions: list[tuple[str, str]], name: str) -> list[str]:
    return [args for word, args in instructions if word == name]


def _base_image(instructions: list[tuple[str, str]]) -> str:
    """The FROM image with ARG defaults substituted."""
    defaults = {}
    for args in _args(instructions, "ARG"):
        key, _, value = args.partition("=")
        defaults[key.strip()] = value.strip()
    (image,) = _args(instructions, "FROM")
    return re.sub(r"\$\{(\w+)\}", lambda m: defaults[m.group(1)], image.split()[0])


def _env(instructions: list[tuple[str, str]]) -> dict[str, str]:
    env: dict[str, str] = {}
    for args in _args(instructions, "ENV"):
        for token in shlex.split(args):
            key, sep, value = token.partition("=")
            if sep:
                env[key] = value
    return env


def _pip_commands(instructions: list[tuple[str, str]]) -> list[list[list[str]]]:
    """For each RUN, its pip commands in order, each as a token list starting with install/uninstall."""
    runs = []
    for args in _args(instructions, "RUN"):
        lexer = shlex.shlex(args, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        commands, current = [], []
        for token in [*lexer, "&&"]:
            if token in ("&&", "||", ";", "|"):
                if "pip" in current:
                    commands.append(current[current.index("pip") + 1 :])
                current = []
            else:
                current.append(token)
        runs.append(commands)
    return runs


def _installed(instructions: list[tuple[str, str]]) -> list[str]:
    """Every requirement a `pip install` names (options and their values dropped)."""
    reqs = []
    for run in _pip_commands(instructions):
        for cmd in run:
            if cmd[:1] != ["install"]:
                continue
            skip = False
            for token in cmd[1:]:
                if skip:
                    skip = False
                elif token in ("--index-url", "-i", "--extra-index-url", "-r", "-c"):
                    skip = True
                elif not token.startswith("-"):
                    reqs.append(token)
    return reqs


def _requirement_name(req: str) -> str:
    return re.split(r"[=<>!~\[ ;]", req, maxsplit=1)[0].lower()


@pytest.fixture(scope="module", params=["runtime-gpu", "trainer", "cpu"])
def image(request: pytest.FixtureRequest) -> tuple[str, list[tuple[str, str]]]:
    path = DOCKER / f"{request.param}.Dockerfile"
    return request.param, _instructions(path)


def test_every_image_runs_as_non_root_with_state_in_home(image):
    name, ins = image
    users = _args(ins, "USER")
    assert users and users[-1] not in ("root", "0"), f"{name}: the image must end with a non-root USER"
    env = _env(ins)
    assert env.get("LIVEDENOISE_HOME") == HOME, f"{name}: LIVEDENOISE_HOME must be {HOME}"
    volumes = " ".join(_args(ins, "VOLUME"))
    assert HOME in volumes, f"{name}: {HOME} must be a VOLUME"


def test_every_image_copies_only_existing_sources(image):
    name, ins = image
    for args in _args(ins, "COPY"):
        *sources, _dest = shlex.split(args)
        for src in sources:
            assert (ROOT / src).exists(), f"{name}: COPY {src} does not exist in the repo"
            assert src.split("/")[0] not in ("tests", ".venv", ".git"), f"{name}: COPY {src} should not be in an image"


@pytest.mark.parametrize("name", ["runtime-gpu", "cpu"])
def test_serving_images_expose_ports_healthcheck_and_serve(name):
    ins = _instructions(DOCKER / f"{name}.Dockerfile")
    exposed = {int(p.split("/")[0]) for args in _args(ins, "EXPOSE") for p in args.split()}
    assert exposed == PORTS
    (health,) = _args(ins, "HEALTHCHECK")
    assert "/v1/health" in health and ":8000" in health
    (entry,) = _args(ins, "ENTRYPOINT")
    assert yaml.safe_load(entry) == ENTRYPOINT_SERVE  # JSON (exec) form parses as YAML too


def test_runtime_image_is_torch_free_and_gpu_onnxruntime_only():
    ins = _instructions(DOCKER / "runtime-gpu.Dockerfile")
    base = _base_image(ins)
    assert base.startswith("nvidia/cuda:") and "cudnn" in base and "runtime" in base, base
    names = [_requirement_name(r) for r in _installed(ins)]
    assert not [n for n in names if n.startswith("torch")], f"runtime image installs torch: {names}"
    assert "onnxruntime" not in names, "the CPU onnxruntime is installed explicitly"
    assert {"onnxruntime-gpu", "tensorrt-cu12"} <= set(names) or {"onnxruntime-gpu", "tensorrt"} <= set(names), names
    project = [r for r in _installed(ins) if r.strip("'\"").startswith(".")]
    # Beside `server`, only torch-free extras (file formats).
    assert project and all(re.fullmatch(r"""["']?\.\[server(,zarr)?\]["']?""", r) for r in project), (
        f"the runtime installs the project with the server extra and torch-free ones only (train/gpu extras pull "
        f"torch): {project}"
    )
    # `.[server]` pulls the CPU onnxruntime: the same RUN must remove it before onnxruntime-gpu goes in.
    for run in _pip_commands(ins):
        flat = [" ".join(cmd) for cmd in run]
        server = [i for i, c in enumerate(flat) if c.startswith("install") and ".[server]" in c]
        if not server:
            continue
        uninstall = [i for i, c in enumerate(flat) if re.fullmatch(r"uninstall -y onnxruntime", c)]
        gpu = [i for i, c in enumerate(flat) if c.startswith("install") and "onnxruntime-gpu" in c]
        assert uninstall and gpu and server[0] < uninstall[0] < gpu[0], flat
    assert _env(ins).get("LIVEDENOISE_PROVIDER") in ("cuda", "tensorrt")


def test_trainer_image_uses_the_base_cuda_torch():
    ins = _instructions(DOCKER / "trainer.Dockerfile")
    assert _base_image(ins).startswith("pytorch/pytorch:") and "cuda" in _base_image(ins)
    reqs = _installed(ins)
    assert [r for r in reqs if r.strip("'\"").startswith(".")] == [".[train,zarr]"]
    assert not [r for r in reqs if _requirement_name(r).startswith("torch")], "torch comes from the base image"


def test_cpu_image_takes_torch_from_the_cpu_index():
    ins = _instructions(DOCKER / "cpu.Dockerfile")
    assert _base_image(ins).startswith("python:") and "slim" in _base_image(ins)
    torch_installs = [
        cmd
        for run in _pip_commands(ins)
        for cmd in run
        if cmd[:1] == ["install"] and any(_requirement_name(t) == "torch" for t in cmd)
    ]
    assert torch_installs, "the CPU image installs torch explicitly"
    for cmd in torch_installs:
        assert "https://download.pytorch.org/whl/cpu" in cmd, f"torch must come from the CPU index: {cmd}"
    assert [r for r in _installed(ins) if r.strip("'\"").startswith(".")] == [".[server,train,openvino,zarr]"]
    assert _env(ins).get("LIVEDENOISE_PROVIDER") == "cpu"


@pytest.fixture(scope="module")
def service() -> dict:
    compose = yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text())
    services = compose["services"]
    assert len(services) == 1, f"one GPU runtime service expected, got {sorted(services)}"
    (svc,) = services.values()
    svc["_volumes_declared"] = set(compose.get("volumes") or {})
    return svc


def test_compose_builds_the_runtime_image(service):
    build = service["build"]
    context = (ROOT / "deploy" / build["context"]).resolve()
    assert context == ROOT
    assert (context / build["dockerfile"]).resolve() == DOCKER / "runtime-gpu.Dockerfile"


def test_compose_ports(service):
    published = {}
    for entry in service["ports"]:
        host, _, container = str(entry).rpartition(":")
        published[int(container)] = int(host)
    assert published == {p: p for p in PORTS}


def test_compose_volumes_hold_home_and_data_root(service):
    env = service["environment"]
    targets = {}
    for entry in service["volumes"]:
        # `${VAR:-default}` sources: check the default (a named volume or a path).
        source, target = re.sub(r"\$\{\w+:-([^}]+)\}", r"\1", str(entry)).split(":")[:2]
        targets[target] = source
    assert env["LIVEDENOISE_HOME"] == HOME and HOME in targets
    assert env["LIVEDENOISE_DATA_ROOT"] in targets
    for name in targets.values():
        if "/" not in name and not name.startswith("."):
            assert name in service["_volumes_declared"], f"named volume {name!r} is not declared"


def test_compose_reserves_one_nvidia_gpu(service):
    (device,) = service["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia"
    assert device.get("count") == 1 or len(device.get("device_ids", [])) == 1
    assert "gpu" in device["capabilities"]


def test_compose_token_restart_and_healthcheck(service):
    token = service["environment"]["LIVEDENOISE_API_TOKEN"]
    assert token.startswith("${LIVEDENOISE_API_TOKEN") and ":?" in token, (
        "the token comes from the environment, required"
    )
    assert service["restart"] in ("always", "unless-stopped", "on-failure")
    assert any("/v1/health" in str(part) for part in service["healthcheck"]["test"])


def test_dockerignore_keeps_the_context_small():
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()}
    assert {".git", ".venv", "tests"} <= ignored
