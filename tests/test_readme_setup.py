"""The README's two set-up commands and .ci/run stay one: the same venv, the same extras, the same test command.

The first command must work where the system Python refuses ``pip install`` (PEP 668), so it creates and
activates a virtual environment before installing anything.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _setup_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Set-up: two commands", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.S)
    assert block, "the set-up section has a bash block"
    return [line.split("   #", 1)[0].strip() for line in block.group(1).splitlines() if line.strip()]


def _ci_lines() -> list[str]:
    return [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines() if line.strip()]


def _extras(command: str) -> set[str]:
    found = re.search(r"""pip install -e ["']?\.\[([a-z0-9_,-]+)\]""", command)
    assert found, f"no `pip install -e .[extras]` in {command!r}"
    return set(found.group(1).split(","))


def test_the_first_command_installs_into_a_fresh_virtual_environment() -> None:
    first, _ = _setup_commands()
    steps = [s.strip() for s in first.split("&&")]
    assert steps[0] == "python3 -m venv .venv" and steps[1] == ". .venv/bin/activate", steps
    installs = [s for s in steps if s.startswith("pip install")]
    assert installs and all(steps.index(s) > 1 for s in installs), "pip runs only inside the venv"
    assert installs[0] == "pip install torch==2.13.0", "the CPU torch build goes in first"
    assert steps[-1] == "livedenoise demo"


def test_ci_installs_the_same_extras_and_runs_the_same_test_command() -> None:
    first, tests = _setup_commands()
    ci = _ci_lines()
    ci_install = next(line for line in ci if line.startswith("pip install -e"))
    assert _extras(ci_install) == _extras(first)
    assert tests in ci, f"CI must run the README's test command {tests!r}"
    assert any(shlex.split(line)[1:3] == ["-m", "venv"] for line in ci if line.startswith('"$PYTHON"')), ci
