"""Render the report in headless Chromium: every image loads, no console error, no network request.

Needs Debian's `chromium` (which `.ci/run` installs); skips with the reason where it is absent.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from genrad.report import build

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="Chromium is not installed (apt-get install chromium chromium-driver; .ci/run does it)"
)
# These machines have no internet: keep Chromium from trying to reach Google's services.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-quic",
    "--disable-sync",
]


@pytest.fixture()
def browser_context(tmp_path: Path) -> Iterator[object]:
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e '.[dev]')")
    with sync_api.sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield context
        finally:
            context.close()


def test_report_renders_with_every_image_loaded_and_no_console_error(browser_context, run_dir: Path, tmp_path: Path) -> None:
    report = build(run_dir, tmp_path / "report.html")
    page = browser_context.new_page()
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(report.resolve().as_uri())
    page.wait_for_load_state("load")
    images = page.evaluate("Array.from(document.images).map(i => [i.complete, i.naturalWidth])")
    assert len(images) >= 6
    assert all(complete and width > 0 for complete, width in images)
    assert errors == []
    screenshot = tmp_path / "report.png"
    page.screenshot(path=str(screenshot), full_page=True)
    assert screenshot.stat().st_size > 10_000


def test_report_makes_no_network_request(browser_context, run_dir: Path, tmp_path: Path) -> None:
    report = build(run_dir, tmp_path / "report.html")
    requested: list[str] = []
    browser_context.on("request", lambda request: requested.append(request.url))
    page = browser_context.new_page()
    page.goto(report.resolve().as_uri())
    page.wait_for_load_state("networkidle")
    external = [url for url in requested if not url.startswith(("file://", "data:"))]
    assert requested, "the page itself should have been requested"
    assert external == []
