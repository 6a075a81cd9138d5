"""The demo in a real browser: Debian's chromium, headless, driven by Playwright, all on loopback.

Needs `apt-get install -y chromium` and `pip install playwright` (no `playwright install`: the system
chromium is used). Missing either is a FAILURE with the install command, not a skip, unless
GLEAN_HUB_SKIP_BROWSER=1. GLEAN_HUB_CHROMIUM overrides the browser path (default: chromium on PATH).
"""

from __future__ import annotations

import os
import shutil
import time
from urllib.parse import urlparse

import pytest
from conftest import tiny_model
from demo_helpers import EXAMPLE, TINY, load_app, png_size, serving, tiny_folders
from test_released import CATS_8X, _publish, host, tiny_glean_pth  # noqa: F401 - host is a fixture

SCREENSHOT_COPY = "/tmp/demo_screenshot.png"  # for people to look at after a run
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]

pytestmark = pytest.mark.skipif(os.environ.get("GLEAN_HUB_SKIP_BROWSER") == "1", reason="GLEAN_HUB_SKIP_BROWSER=1")


@pytest.fixture(scope="module")
def cats_256_pth() -> bytes:
    """A tiny official-layout checkpoint with the released cats 8x model's real sizes (32 -> 256)."""
    return tiny_glean_pth(tiny_model(seed=5, in_size=32, out_size=256, category="cats"))


def chromium_path() -> str:
    path = os.environ.get("GLEAN_HUB_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not path or not os.path.exists(path):
        pytest.fail("the browser test needs Debian's chromium: apt-get update && apt-get install -y chromium "
                    "(or set GLEAN_HUB_CHROMIUM=/path/to/chrome; GLEAN_HUB_SKIP_BROWSER=1 skips this test)")
    return path


def sync_playwright():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("the browser test needs Playwright's Python package: pip install playwright "
                    "(no `playwright install`: the system chromium is used)")
    return sync_playwright()


def test_upload_pick_upscale_download_in_chromium(tmp_path):
    app = load_app()
    category, scale = "cats", 8
    in_size, out_size = TINY[(category, scale)]
    demo = app.build_demo(tiny_folders(tmp_path / "models"))
    with serving(app, demo) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000}, accept_downloads=True)
            outside = []  # every request that is not to our loopback server: the page must render offline
            page.on("request", lambda r: outside.append(r.url)
                    if urlparse(r.url).hostname not in ("127.0.0.1", "localhost") and not r.url.startswith("data:") else None)
            page.goto(url)
            page.wait_for_selector("#run", timeout=60_000)
            assert "8×" in page.locator("#scale input:checked").first.evaluate("e => e.parentElement.innerText")
            assert "bicubic" in page.content()  # "Before (bicubic upscale of the same input) / after (GLEAN)"
            # no result yet: the Download button is disabled, also after the slider's page-load change event
            # (Gradio 6.31 sends one with [None, None]; that once enabled the button, issue 15)
            time.sleep(2)
            assert page.locator("#download").is_disabled()

            page.set_input_files("#input-image input[type=file]", str(EXAMPLE))
            page.wait_for_selector("#input-image img", timeout=30_000)
            page.locator("#category input").click()
            page.get_by_role("option", name=category).click()
            page.locator("#scale label").filter(has_text=f"{scale}×").click()
            page.locator("#run").click()

            page.wait_for_function("document.querySelectorAll('#slider img').length >= 2", timeout=120_000)
            page.wait_for_function("document.querySelector('#status').innerText.includes(' s')", timeout=30_000)
            status = page.locator("#status").inner_text()
            assert f"{category}-{scale}x" in status and f"{in_size}×{in_size} → {out_size}×{out_size}" in status
            assert "192×128" in page.locator("#lr-note").inner_text()
            assert f"Output: {out_size}×{out_size} px" in page.locator("#lr-note").inner_text()
            page.wait_for_function("!document.querySelector('#download').disabled", timeout=30_000)  # a result: on
            time.sleep(0.5)  # let the images paint before the screenshot

            shot = tmp_path / "demo.png"
            page.screenshot(path=str(shot), full_page=True)
            shutil.copyfile(shot, SCREENSHOT_COPY)

            with page.expect_download(timeout=30_000) as download_info:
                page.locator("#download").click()
            download = tmp_path / download_info.value.suggested_filename
            download_info.value.save_as(download)
            assert download.suffix == ".png"
            assert png_size(download) == (out_size, out_size)
            assert outside == [], f"the page tried to reach beyond loopback: {outside}"
        finally:
            browser.close()



def test_download_a_released_model_by_clicking_then_pick_it(tmp_path, monkeypatch, host, cats_256_pth):  # noqa: F811
    """Issue 16: the accordion lists the released models not cached yet with their approximate download size; the
    button fetches one from the loopback stand-in for download.openmmlab.com and it becomes a Category entry."""
    app = load_app()
    _publish(monkeypatch, host, CATS_8X, cats_256_pth)
    demo = app.build_demo(tiny_folders(tmp_path / "models"), examples=False, downloads=True)
    with serving(app, demo) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.goto(url)
            page.wait_for_selector("#released-box", timeout=60_000)
            page.locator("#released-box").get_by_text("More models").click()  # open the accordion
            assert "≈765 MB download (approximate)" in page.locator("#released input").input_value()
            assert host.log == []  # nothing is downloaded before the click
            page.locator("#fetch").click()
            page.wait_for_function("document.querySelector('#fetch-status').innerText.includes('Added')", timeout=60_000)
            assert page.locator("#category input").input_value() == "cats · OpenMMLab 256 px"
            page.wait_for_function("document.querySelector('#scale').innerText.includes('8× (32→256)')", timeout=30_000)
            assert "openmmlab/glean-cats-16x" in page.locator("#released input").input_value()  # the next one
        finally:
            browser.close()
