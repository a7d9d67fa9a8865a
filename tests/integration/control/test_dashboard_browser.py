"""The dashboard in a real headless browser (the system's Chromium, driven by Playwright) against a real control
plane and ingest service while a test camera streams: the stream appears with a raw and a denoised preview that
update, the charts draw, a hot swap from the page changes the served model, and a job is followed and cancelled.

Skipped where ``/usr/bin/chromium`` (Debian: ``apt-get install chromium``) or the ``playwright`` package is
missing; Playwright's own browser downloads are never used.
"""

from __future__ import annotations

import contextlib
import importlib.util
import shutil
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from livedenoise.clients.control import ControlClient
from livedenoise.clients.stream import StreamClient
from livedenoise.server.ingest.service import IngestService

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs the system Chromium (apt-get install chromium)"),
    pytest.mark.skipif(
        importlib.util.find_spec("playwright") is None, reason="needs playwright (pip install playwright)"
    ),
]
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
TOKEN = "browser-test-token"
TIMEOUT_MS = 30_000


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.console_errors = []  # type: ignore[attr-defined]
    page.on("console", lambda m: m.type == "error" and page.console_errors.append(m.text))
    page.on("pageerror", lambda e: page.console_errors.append(str(e)))
    yield page
    context.close()


@contextlib.contextmanager
def camera(endpoint: str, fps: float = 30.0) -> Iterator[None]:
    """A camera on a thread: a 64x64 noisy movie streamed over and over until the block exits."""
    rng = np.random.default_rng(5)
    y, x = np.mgrid[:64, :64]
    movie = rng.poisson(300 + 250 * np.exp(-((y - 30) ** 2 + (x - 24) ** 2) / 80), (60, 64, 64)).astype(np.uint16)
    stop = threading.Event()
    failures: list[BaseException] = []

    def run() -> None:
        try:
            with StreamClient(endpoint, stream="cam0") as client:
                n = 0
                while not stop.is_set():
                    n += 1
                    client.stream_frames(
                        iter(movie), dtype=movie.dtype, shape=(64, 64), series=f"run{n}", fps=fps,
                        keep_frames=False, stop=stop.is_set,
                    )  # fmt: skip
        except BaseException as exc:
            failures.append(exc)

    thread = threading.Thread(target=run, name="test-camera", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(30)
        assert not failures, failures


def _index(page: Any, selector: str) -> tuple[str, str]:
    img = page.locator(selector)
    return img.get_attribute("data-series") or "", img.get_attribute("data-index") or ""


def _drawn_pixels(page: Any, selector: str) -> int:
    return int(
        page.eval_on_selector(
            selector,
            """c => { const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                      let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++; return n; }""",
        )
    )


def test_the_dashboard_previews_a_stream_draws_its_charts_and_hot_swaps_the_model(
    start_server: Callable[..., str], ingest: IngestService, model_file: Callable[..., Path], page: Any, wait
) -> None:
    url = start_server(token=TOKEN)
    with ControlClient(url, token=TOKEN, timeout=30) as control:
        first = control.upload_model(model_file(seed=1), name="first")
        second = control.upload_model(model_file(seed=2), name="second")
        control.load_model(first.id)
        with camera(ingest.zmq_endpoint):
            page.goto(f"{url}/#token={TOKEN}")
            assert "token" not in page.url  # taken from the fragment, then out of the address bar
            page.wait_for_selector('#streams tr[data-stream="cam0"]')
            # The preview shows both images, and they move on while the camera streams.
            # (Selectors, not page-side functions: the page's CSP forbids evaluating strings, and stays on.)
            for selector in ("#preview-raw", "#preview-denoised"):
                page.wait_for_selector(f'{selector}[data-index]:not([data-index=""])')
            seen = {sel: _index(page, sel) for sel in ("#preview-raw", "#preview-denoised")}
            for selector, before in seen.items():
                wait(lambda s=selector, b=before: _index(page, s) != b, timeout_s=30, what=f"{selector} to update")
            for selector in ("#preview-raw", "#preview-denoised"):
                assert page.eval_on_selector(selector, "img => img.complete && img.naturalWidth") == 64
            assert "frame" in (page.text_content("#caption-denoised") or "")
            page.wait_for_selector('#preview-note[data-paired="true"]')  # raw beside denoised of one frame
            raw, denoised, paired = page.evaluate(
                "() => ['preview-raw', 'preview-denoised', 'preview-note'].map(id => {"
                " const d = document.getElementById(id).dataset; return d.index ?? d.paired; })"
            )  # one moment of the page
            assert paired == "false" or raw == denoised, (raw, denoised, paired)
            # Charts: points from the status history, drawn on the canvases.
            for chart in ("#chart-fps", "#chart-latency", "#chart-skips", "#chart-backlog"):
                wait(lambda c=chart: int(page.get_attribute(c, "data-points") or 0) >= 2, 30, what=f"{chart} points")
                assert _drawn_pixels(page, chart) > 500, chart
            # Models: method, window, and a hot swap from the page.
            row = page.locator(f'#models tr[data-model="{second.id}"]')
            assert row.locator("td").nth(1).text_content() == "test_mix"
            assert row.locator("td").nth(2).text_content() == "1 · 1 · 1"
            assert page.locator(f'button[data-swap="{first.id}"]').is_disabled()
            row.locator("button.swap").click()
            wait(lambda: (s := control.status()).model is not None and s.model.id == second.id, 30, what="the swap")
            assert control.status().control.active_model == second.id
            page.wait_for_selector(f'#served-model[data-model="{second.id}"]')
            page.wait_for_selector(f'button[data-swap="{second.id}"]:disabled')
            # Replies keep coming from the new model, shown in the preview.
            wait(lambda: second.id in (page.text_content("#caption-denoised") or ""), 30, what="the new model's frames")
    assert page.console_errors == []


def test_without_the_token_the_page_asks_for_it_once_and_then_previews(
    start_server: Callable[..., str], ingest: IngestService, model_file: Callable[..., Path], page: Any
) -> None:
    url = start_server(token=TOKEN)
    with ControlClient(url, token=TOKEN, timeout=30) as control:
        control.load_model(control.upload_model(model_file(seed=1)).id)
        with camera(ingest.zmq_endpoint):
            page.goto(f"{url}/")
            page.wait_for_selector('#streams tr[data-stream="cam0"]')  # reads are open, like the API's
            page.wait_for_selector("#token-banner:not([hidden])")  # the preview answered 401
            assert page.get_attribute("#preview-raw", "src") is None
            page.fill("#token-input", "wrong")
            page.click("#token-save")
            page.wait_for_selector("#token-banner:not([hidden])")
            page.fill("#token-input", TOKEN)
            page.press("#token-input", "Enter")
            page.wait_for_selector('#preview-denoised[data-index]:not([data-index=""])')
            assert page.is_hidden("#token-banner")
            assert page.evaluate("sessionStorage.getItem('livedenoise.token')") == TOKEN


@pytest.mark.filterwarnings("ignore:subprocess .* is still running:ResourceWarning")
def test_a_job_shows_its_progress_and_log_and_is_cancelled_from_the_page(
    start_server: Callable[..., str], tiny_movie: str, long_config: dict, page: Any, wait
) -> None:
    url = start_server(token=TOKEN)
    with ControlClient(url, token=TOKEN, timeout=30) as control:
        job = control.submit_job("deepcad_rt", tiny_movie, long_config)
        wait(lambda: control.job(job.id).progress > 0, 120, what="the job to report progress")
        page.goto(f"{url}/#token={TOKEN}")
        row = page.locator(f'#jobs tr[data-job="{job.id}"]')
        row.wait_for()
        wait(lambda: row.locator("td.job-state").text_content() == "running", 30, what="the running job on the page")
        page.click(f'button[data-log="{job.id}"]')
        wait(lambda: (page.text_content("#job-log") or "").strip(), 30, what="the job's log tail")
        page.click(f'button[data-cancel="{job.id}"]')
        wait(lambda: control.job(job.id).state == "cancelled", 60, what="the cancel")
        wait(
            lambda: row.locator("td.job-state").text_content() == "cancelled", 30, what="the cancelled job on the page"
        )
