"""The dashboard in a real browser: headless Chromium (Debian's ``chromium``) driven by Playwright.

Starts ``ferembed._dashboard.launch`` on a free localhost port, visits every page, waits for the
script to finish, asserts that no Streamlit exception box and no JavaScript error appeared, and
saves one screenshot per page into ``$FEREMBED_SCREENSHOTS`` (default: a pytest temporary folder).
Then it selects faces in the projection with a box drag, and checks that two tabs keep separate
run selections.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import REPO, VALID

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PAGES = ("runs", "geometry", "confusion", "projection", "neighbours", "compare", "export")
#: The first visit of the projection computes UMAP (numba compiles it): allow minutes.
PAGE_TIMEOUT_MS = 300_000
#: True once the script run is over and every lazily loaded element has rendered.
APP_IDLE = """() => {
  const app = document.querySelector('[data-testid="stApp"]');
  return app !== null && app.getAttribute('data-test-script-state') === 'notRunning'
    && document.querySelector('[data-testid="stSkeleton"]') === null;
}"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def sync_api():
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not found (install the Debian package: apt-get install chromium)")
    try:
        from playwright import sync_api
    except ImportError:
        pytest.skip("playwright is not installed (pip install playwright)")
    return sync_api


@pytest.fixture(scope="module")
def server(sync_api, runs_root, tmp_path_factory):
    """URL of a dashboard served by ``ferembed._dashboard.launch`` in a subprocess."""
    port = _free_port()
    log = tmp_path_factory.mktemp("server") / "streamlit.log"
    code = (
        "import sys; from ferembed._dashboard import launch; "
        f"sys.exit(launch({str(runs_root)!r}, port={port}))"
    )
    with open(log, "wb") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-c", code],
            cwd=REPO,
            stdout=fh,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: Streamlit goes down with it
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                    if r.read().strip() == b"ok":
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"dashboard did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.5)
        yield url
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=20)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(proc.pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def browser(sync_api):
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    out = os.environ.get("FEREMBED_SCREENSHOTS")
    path = Path(out) if out else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


def _url(server: str, name: str) -> str:
    """The runs page is the default page, served at the root URL."""
    return f"{server}/" if name == "runs" else f"{server}/{name}"


def _open(page, url: str) -> None:
    page.goto(url)
    page.wait_for_function(APP_IDLE, timeout=PAGE_TIMEOUT_MS)
    page.wait_for_timeout(800)  # let Plotly finish drawing before a screenshot


def _assert_clean(page, errors: list[str], where: str) -> None:
    boxes = page.locator('[data-testid="stException"]')
    assert boxes.count() == 0, f"{where}: {boxes.first.inner_text()[:2000]}"
    dialogs = page.get_by_role("dialog")  # e.g. Streamlit's "Page not found"
    assert dialogs.count() == 0, f"{where}: {dialogs.first.inner_text()[:500]}"
    assert not errors, f"{where}: JavaScript errors {errors}"


def test_every_page_renders_in_chromium(browser, server, shots):
    page = browser.new_page(viewport={"width": 1400, "height": 2000})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    for name in PAGES:
        _open(page, _url(server, name))
        _assert_clean(page, errors, name)
        heading = page.locator("h1").first.inner_text()
        assert heading.strip() == name.capitalize()
        page.screenshot(path=str(shots / f"{PAGES.index(name) + 1}-{name}.png"))
    # Content a person would look for, per page.
    _open(page, _url(server, "runs"))
    body = page.locator('[data-testid="stMain"]').inner_text()
    assert "Malformed run" in body and "bad_json" in body
    page.close()


def test_box_selection_lists_faces(browser, server, shots):
    page = browser.new_page(viewport={"width": 1400, "height": 2000})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    _open(page, f"{server}/projection")
    # Drag a box over the whole first subplot (the chart's drag mode is box select).
    area = page.locator(".js-plotly-plot .nsewdrag").first.bounding_box()
    x0, y0 = area["x"] + 2, area["y"] + 2
    x1, y1 = area["x"] + area["width"] - 2, area["y"] + area["height"] - 2
    page.mouse.move(x0, y0)
    page.mouse.down()
    page.mouse.move((x0 + x1) / 2, (y0 + y1) / 2, steps=5)
    page.mouse.move(x1, y1, steps=5)
    page.mouse.up()
    page.wait_for_function(
        "() => document.body.innerText.includes('selected')", timeout=PAGE_TIMEOUT_MS
    )
    page.wait_for_function(APP_IDLE, timeout=PAGE_TIMEOUT_MS)
    page.wait_for_timeout(800)
    _assert_clean(page, errors, "projection selection")
    body = page.locator('[data-testid="stMain"]').inner_text()
    # The first subplot is the reference: the softmax run by default (issue #13).
    assert "softmax: " in body and "selected" in body
    assert page.locator(
        '[data-testid="stImage"] img, [data-testid="stFullScreenFrame"] img'
    ).count()
    page.screenshot(path=str(shots / "8-projection-selection.png"))
    page.close()


def test_tabs_keep_separate_selections(browser, server):
    context = browser.new_context(viewport={"width": 1400, "height": 1200})
    one, two = context.new_page(), context.new_page()
    for tab in (one, two):
        _open(tab, _url(server, "runs"))
    tags = '[data-testid="stSidebar"] [data-testid="stMultiSelectTagsContainer"] [data-tag]'
    assert one.locator(tags).count() == two.locator(tags).count() == len(VALID)
    # Remove the first run from tab one's selection.
    one.locator('[data-testid="stSidebar"]').get_by_role(
        "button", name=f"Remove {VALID[0]}"
    ).click()
    one.wait_for_function(
        f"() => document.querySelectorAll({tags!r}).length === {len(VALID) - 1}", timeout=60_000
    )
    # Tab two reruns (navigates to another page in the same session) and keeps all runs.
    two.locator('[data-testid="stSidebarNav"] a', has_text="Geometry").click()
    two.wait_for_function(APP_IDLE, timeout=PAGE_TIMEOUT_MS)
    two.wait_for_timeout(500)
    assert two.locator(tags).count() == len(VALID)
    assert one.locator(tags).count() == len(VALID) - 1
    context.close()
