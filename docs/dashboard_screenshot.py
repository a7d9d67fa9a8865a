"""Make ``docs/dashboard.png``: the live dashboard while a synthetic calcium movie streams.

Everything runs on this machine, in one process: an ingest service and a control plane on free local ports in
a temporary home, two training jobs submitted through the API (DeepCAD-RT and FAST on the simulated movie, so
the models table shows their held-out scores and the jobs table their runs), the DeepCAD-RT model served, the
movie streamed at a camera rate, and the page opened in the system's Chromium (Playwright) once the charts
have a minute and a half of history.

    python docs/dashboard_screenshot.py                # about 5 minutes on 2 CPU cores
    python docs/dashboard_screenshot.py --quick        # short training and streaming: checks the script works

Needs the ``server`` and ``train`` extras, ``playwright`` and ``/usr/bin/chromium`` (no browser download).
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import uvicorn

from livedenoise.clients.control import ControlClient
from livedenoise.clients.stream import StreamClient
from livedenoise.models.synthetic import simulate_calcium_movie
from livedenoise.server.api.app import create_app
from livedenoise.server.ingest.control import IngestControlClient
from livedenoise.server.ingest.service import IngestService
from livedenoise.server.settings import ServerSettings

TOKEN = "screenshot"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@contextlib.contextmanager
def control_plane(settings: ServerSettings, ingest: IngestService) -> Iterator[str]:
    client = IngestControlClient(ingest.control_endpoint, ingest.control_secret, timeout_s=30)
    server = _Server(uvicorn.Config(create_app(settings, ingest=client), host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(30)


def train(control: ControlClient, method: str, seconds: float, name: str) -> str:
    job = control.submit_job(method, "calcium.npy", {"time_budget_s": seconds, "seed": 0}, name=name)
    while (info := control.job(job.id)).state in ("queued", "running"):
        print(f"  {method}: {info.state} {info.progress:.0%}", end="\r", flush=True)
        time.sleep(2)
    print(f"  {method}: {info.state}        ")
    if info.model_id is None:
        raise SystemExit(f"training {method} failed: {info.error}")
    return info.model_id


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "dashboard.png")
    parser.add_argument("--quick", action="store_true", help="seconds of training and streaming, not minutes")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()
    budget, history_s = (10.0, 10.0) if args.quick else (150.0, 75.0)

    movie = simulate_calcium_movie(frames=600, size=128, seed=0, photons=2.0).noisy
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        settings = ServerSettings(home=home, zmq_port=0, pub_port=0, control_port=0, api_token=TOKEN)
        settings.ensure_dirs()
        np.save(settings.resolved_data_root / "calcium.npy", movie)
        ingest = IngestService(settings)
        ingest.start()
        try:
            with control_plane(settings, ingest) as url, ControlClient(url, token=TOKEN, timeout=60) as control:
                print("training (jobs through the API):")
                served = train(control, "deepcad_rt", budget, "deepcad_rt-calcium")
                train(control, "fast", budget / 3, "fast-calcium")
                control.load_model(served)
                stop = threading.Event()
                camera = threading.Thread(target=stream, args=(ingest.zmq_endpoint, movie, stop), daemon=True)
                camera.start()
                try:
                    print(f"streaming for {history_s:.0f} s so the charts have history")
                    time.sleep(history_s)
                    screenshot(url, args.chromium, args.out)
                finally:
                    stop.set()
                    camera.join(30)
        finally:
            ingest.stop()
    print(f"wrote {args.out} ({args.out.stat().st_size // 1024} KiB)")


def stream(endpoint: str, movie: np.ndarray, stop: threading.Event) -> None:
    """Two cameras, 6 and 3 frames/s, the movie over and over: 2 CPU cores sustain about 12 frames/s of DeepCAD-RT
    at 128x128, and the browser taking the screenshot shares them."""

    def camera(name: str, frames: np.ndarray, fps: float) -> None:
        with StreamClient(endpoint, stream=name) as client:
            n = 0
            while not stop.is_set():
                n += 1
                client.stream_frames(
                    iter(frames), dtype=frames.dtype, shape=frames.shape[1:], series=f"{name}-{n:03d}", fps=fps,
                    keep_frames=False, stop=stop.is_set,
                )  # fmt: skip

    other = threading.Thread(target=camera, args=("rig2-gcamp", movie[::-1].copy(), 3.0), daemon=True)
    other.start()
    camera("rig1-gcamp", movie, 6.0)
    other.join(30)


def screenshot(url: str, chromium: str, out: Path) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        page: Any = browser.new_page(viewport={"width": 1320, "height": 900})
        page.goto(f"{url}/#token={TOKEN}")
        page.click('#streams tr[data-stream="rig1-gcamp"]')
        page.wait_for_selector('#preview-denoised[data-index]:not([data-index=""])', timeout=60_000)
        page.wait_for_selector('#chart-fps:not([data-points="0"])', timeout=60_000)
        # Raw copies start when the page asks: the first pair comes once they have been denoised (the latency).
        page.wait_for_selector('#preview-note[data-paired="true"]', timeout=60_000)
        time.sleep(2)
        page.screenshot(path=str(out), full_page=True)
        browser.close()


if __name__ == "__main__":
    main()
