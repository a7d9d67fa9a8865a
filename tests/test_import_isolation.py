"""Invariant 4: ``livedenoise.clients`` imports neither torch, fastapi nor onnxruntime; ``livedenoise.server`` never imports torch.

Each check runs in a fresh interpreter, so modules imported by other tests cannot hide a violation.
"""

from __future__ import annotations

import json
import subprocess
import sys

CLIENT_FORBIDDEN = ("torch", "fastapi", "onnxruntime")
SERVER_FORBIDDEN = ("torch",)

_PROBE = r"""
import importlib, json, pkgutil, sys
package = importlib.import_module(sys.argv[1])
imported, skipped = [sys.argv[1]], []
for info in pkgutil.walk_packages(package.__path__, sys.argv[1] + "."):
    try:
        importlib.import_module(info.name)
        imported.append(info.name)
    except ImportError as exc:  # an optional extra that is absent: it cannot pull in anything either
        skipped.append(f"{info.name}: {exc}")
forbidden = sys.argv[2].split(",")
loaded = sorted(name for name in sys.modules if name.split(".")[0] in forbidden)
print(json.dumps({"imported": imported, "skipped": skipped, "loaded": loaded}))
"""


def _probe(package: str, forbidden: tuple[str, ...]) -> dict[str, list[str]]:
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE, package, ",".join(forbidden)], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, f"importing {package} failed:\n{proc.stderr}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_client_package_stays_light():
    result = _probe("livedenoise.clients", CLIENT_FORBIDDEN)
    heavy = {name.split(".")[0] for name in result["loaded"]}
    assert not heavy, f"importing livedenoise.clients pulled in {sorted(heavy)} (modules: {result['imported']})"
    for module in ("protocol", "model_spec", "movie_io", "stream", "replay"):
        assert f"livedenoise.clients.{module}" in result["imported"], result["skipped"]
    assert not result["skipped"], f"client modules failed to import: {result['skipped']}"


def test_server_package_never_imports_torch():
    result = _probe("livedenoise.server", SERVER_FORBIDDEN)
    assert not result["loaded"], f"importing every livedenoise.server module pulled in torch: {result['loaded']}"
    assert len(result["imported"]) > 1
    assert not result["skipped"], f"server modules failed to import: {result['skipped']}"
