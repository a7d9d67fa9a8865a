"""The `livedenoise` command line: argument errors and missing extras are reported in one clear line."""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from livedenoise.clients.cli import build_parser, main


def _cli_without(module: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the CLI in a fresh interpreter where importing ``module`` fails, as in an install without its extra."""
    code = (
        f"import sys; sys.modules[{module!r}] = None\n"
        "from livedenoise.clients.cli import main\n"
        f"sys.exit(main({list(args)!r}))\n"
    )
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(
    ("blocked", "args", "extra"),
    [
        ("torch", ["train", "movie.npy", "--out", "m.onnx"], "train"),
        ("scipy", ["simulate", "out"], "train"),
        ("matplotlib", ["demo"], "train"),
        ("onnxruntime", ["denoise", "movie.npy", "--model", "m.onnx", "--out", "d.tif"], "server"),
        ("fastapi", ["serve"], "server"),
    ],
)
def test_missing_extra_names_what_to_install(blocked: str, args: list[str], extra: str) -> None:
    proc = _cli_without(blocked, *args)
    assert proc.returncode != 0
    assert f"pip install 'livedenoise[{extra}]'" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_bad_movie_file_is_one_line_naming_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "movie.npy"
    bad.write_bytes(b"not a numpy file")
    proc = subprocess.run(
        [sys.executable, "-m", "livedenoise.clients.cli", "denoise", str(bad), "--model", "m.onnx", "--out", "d.tif"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "movie.npy" in proc.stderr and "Traceback" not in proc.stderr


def test_size_accepts_square_and_rectangular() -> None:
    parser = build_parser()
    assert parser.parse_args(["simulate", "o", "--size", "64"]).size == 64
    assert parser.parse_args(["simulate", "o", "--size", "48x80"]).size == (48, 80)
    with pytest.raises(SystemExit):
        parser.parse_args(["simulate", "o", "--size", "big"])


def test_stream_of_a_movie_needs_a_reachable_server_but_reads_the_movie_first(tmp_path: Path) -> None:
    movie = tmp_path / "m.npy"
    np.save(movie, np.zeros((3, 4, 5, 6), dtype=np.uint16))  # 4-D: refused before any network traffic
    proc = subprocess.run(
        [sys.executable, "-m", "livedenoise.clients.cli", "stream", str(movie), "--to", "tcp://127.0.0.1:1"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "m.npy" in proc.stderr and "(3, 4, 5, 6)" in proc.stderr


def test_methods_lists_every_registered_method(capsys: pytest.CaptureFixture[str]) -> None:
    from livedenoise.clients.cli import main
    from livedenoise.models.catalogue import list_methods, method_info

    assert main(["methods", "--markdown"]) == 0
    out = capsys.readouterr().out
    for name in list_methods():
        line = next(row for row in out.splitlines() if row.startswith(f"| `{name}`"))
        window = method_info(name).config_cls().window()
        assert f"{window.before} · {window.out_frames} · {window.after}" in line
        assert method_info(name).paper in line and (" M |" in line or " k |" in line)
    # a method without public code says so, beside its name
    assert all(
        ("(provisional)" in r) == method_info(n).provisional
        for n in list_methods()
        for r in out.splitlines()
        if r.startswith(f"| `{n}`")
    )
    # support: 30 · 1 · 30, latency 30 frames, ~1.4 M parameters at its defaults
    assert any(r.startswith("| `support`") and "| 30 |" in r for r in out.splitlines())


def test_bad_training_option_is_refused_before_the_movie_is_read(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "livedenoise.clients.cli", "train", str(tmp_path / "missing.tif"), "--out", "m.onnx",
         "--method", "support", "--param", "bs_size=2"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2
    assert (
        "bs_size=2 must be odd" in proc.stderr and "Traceback" not in proc.stderr and "missing.tif" not in proc.stderr
    )


def test_keys_create_writes_a_pair_and_stream_needs_both_key_files(tmp_path, capsys) -> None:
    from livedenoise.clients.cli import main

    assert main(["keys", "create", "rig1", "--dir", str(tmp_path)]) == 0
    assert (tmp_path / "rig1.key").exists() and (tmp_path / "rig1.key_secret").exists()
    assert "rig1.key_secret" in capsys.readouterr().out
    assert main(["keys", "create", "rig1", "--dir", str(tmp_path)]) == 2
    assert "exists" in capsys.readouterr().err
    movie = tmp_path / "m.npy"
    import numpy as np

    np.save(movie, np.zeros((3, 8, 8), np.uint16))
    assert main(["stream", str(movie), "--server-key", str(tmp_path / "rig1.key")]) == 2
    assert "--client-key" in capsys.readouterr().err


def _every_action(parser: argparse.ArgumentParser, path: str = "livedenoise") -> Iterator[tuple[str, argparse.Action]]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _every_action(sub, f"{path} {name}")
        else:
            yield path, action


def test_every_option_of_every_command_says_what_it_does() -> None:
    missing = [
        f"{command} {'/'.join(action.option_strings) or action.dest}"
        for command, action in _every_action(build_parser())
        if not action.help or action.help == argparse.SUPPRESS
    ]
    assert not missing, f"options without a help text: {missing}"


def test_options_with_a_fixed_set_of_values_list_them() -> None:
    actions = {(command, action.dest): action for command, action in _every_action(build_parser())}
    assert actions[("livedenoise train", "method")].choices is not None
    assert "deepcad_rt" in (actions[("livedenoise train", "method")].help or "")
    for command, dest in [("livedenoise stream", "mode"), ("livedenoise denoise", "provider"),
                          ("livedenoise serve", "provider"), ("livedenoise train", "device")]:  # fmt: skip
        assert actions[(command, dest)].choices, f"{command} --{dest} lists no choices"


def test_an_unknown_method_is_refused_by_name(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["train", "movie.tif", "--method", "nope", "--out", "m.onnx"])
    assert "invalid choice: 'nope'" in capsys.readouterr().err
