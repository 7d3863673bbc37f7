"""From an aggregate to its faces in headless Chromium (issue #13), with real mouse clicks.

A click on a confusion cell (at its pixel position, from the plot area's bounding box and the
axes' ranges) lists the faces in that cell; a click on a per-class recall bar lists that class's
hardest faces; the pick survives a rerun and "Clear" forgets it. Then the HTML report is
downloaded and holds at least three distinct series colours, and no request of the whole visit
went to another host. The expected counts come from the runs' files (labels and logits), counted
here with numpy. Screenshots go to ``$FEREMBED_SCREENSHOTS`` (default: a pytest temporary
folder), with the fixtures of test_browser.py.
"""

from __future__ import annotations

from urllib.parse import urlparse

import numpy as np
import pytest
from test_browser import (  # noqa: F401 (fixtures of the browser test)
    APP_IDLE,
    PAGE_TIMEOUT_MS,
    _assert_clean,
    _open,
    browser,
    server,
    shots,
    sync_api,
)

from ferembed.runs import load_run

pytestmark = [pytest.mark.browser, pytest.mark.slow]  # about a minute

#: The app's default selection puts the softmax run first (test_pages checks it): it is run A.
RUN_A = "softmax"
#: A click reruns the page on cached data: seconds, not minutes.
CLICK_TIMEOUT_MS = 60_000
PAGE_SIZE = 24  # dashboard._faces_view.PAGE_SIZE, restated: the test says what a person sees


def _head_counts(run) -> np.ndarray:
    k = len(run.class_names)
    counts = np.zeros((k, k), np.int64)
    np.add.at(counts, (run.labels, np.asarray(run.logits).argmax(axis=1)), 1)
    return counts


def _wait_idle(page) -> None:
    page.wait_for_function(APP_IDLE, timeout=PAGE_TIMEOUT_MS)
    page.wait_for_timeout(800)


def _faces_in(page, key: str) -> int:
    return page.locator(f".st-key-{key} img").count()


def _click_cell(page, chart_key: str, row: int, col: int) -> None:
    """A mouse click at the centre of cell (row, col) of the heatmap of ``chart_key``."""
    plot = page.locator(f".st-key-{chart_key} .js-plotly-plot").first
    area = plot.locator(".nsewdrag").first.bounding_box()
    ranges = plot.evaluate("gd => ({x: gd._fullLayout.xaxis.range, y: gd._fullLayout.yaxis.range})")
    (x0, x1), (y0, y1) = ranges["x"], ranges["y"]
    # Pixels grow left to right with x, and top to bottom from the y range's end to its start.
    px = area["x"] + (col - x0) / (x1 - x0) * area["width"]
    py = area["y"] + (y1 - row) / (y1 - y0) * area["height"]
    page.mouse.move(px, py, steps=4)
    page.wait_for_timeout(300)  # Plotly finds the point under the pointer on hover
    page.mouse.click(px, py)


def _click_bar(page, chart_key: str, trace: int, category: int) -> None:
    """A mouse click in the middle of one bar (its drawn rectangle's bounding box)."""
    bars = page.locator(f".st-key-{chart_key} g.trace.bars").nth(trace).locator("g.point path")
    box = bars.nth(category).bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(cx, cy, steps=4)
    page.wait_for_timeout(300)
    page.mouse.click(cx, cy)


def test_click_a_cell_and_a_bar_to_see_their_faces(browser, server, shots, runs_root, tmp_path):  # noqa: F811
    run = load_run(runs_root / RUN_A)
    classes = run.class_names
    counts = _head_counts(run)
    off = counts - np.diag(np.diag(counts))
    row, col = np.unravel_index(int(np.argmax(off)), off.shape)  # the largest confusion
    assert off[row, col] > 0

    page = browser.new_page(viewport={"width": 1400, "height": 2400})
    errors: list[str] = []
    requests: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("request", lambda r: requests.append(r.url))
    _open(page, f"{server}/confusion")
    _assert_clean(page, errors, "confusion")
    assert _faces_in(page, "conf_cell_faces0") == 0

    # A confused cell: every face in it (fewer than a page).
    _click_cell(page, "conf_main", int(row), int(col))
    page.wait_for_function(
        f"() => document.querySelectorAll('.st-key-conf_cell_faces0 img').length === "
        f"{int(counts[row, col])}",
        timeout=CLICK_TIMEOUT_MS,
    )
    _wait_idle(page)
    _assert_clean(page, errors, "confusion cell")
    body = page.locator('[data-testid="stMain"]').inner_text()
    assert f"Labelled {classes[row]}, predicted {classes[col]}" in body
    assert _faces_in(page, "conf_cell_faces0") == counts[row, col]
    assert _faces_in(page, "conf_cell_0_nb") > 0  # the nearest neighbours of one of them
    page.locator(".st-key-conf_cell_faces0").scroll_into_view_if_needed()
    page.screenshot(path=str(shots / "faces-1-cell.png"), full_page=True)

    # A diagonal cell with more faces than a page: one page of them.
    big = int(np.argmax(np.diag(counts)))
    assert counts[big, big] > PAGE_SIZE
    _click_cell(page, "conf_main", big, big)
    page.wait_for_function(
        "() => document.body.innerText.includes("
        f"'Labelled {classes[big]}, predicted {classes[big]}')",
        timeout=CLICK_TIMEOUT_MS,
    )
    _wait_idle(page)
    assert _faces_in(page, "conf_cell_faces0") == PAGE_SIZE

    # The pick survives a rerun (another normalisation redraws the matrix).
    page.get_by_text("Normalised by row").click()
    page.wait_for_function(
        "() => document.body.innerText.includes('(counts)')", timeout=CLICK_TIMEOUT_MS
    )
    _wait_idle(page)
    _assert_clean(page, errors, "confusion, counts")
    assert _faces_in(page, "conf_cell_faces0") == PAGE_SIZE

    # A recall bar: run A's bars are the first trace; the class of the largest confusion.
    _click_bar(page, "conf_recall", 0, int(row))
    page.wait_for_function(
        f"() => document.body.innerText.includes('the hardest faces labelled {classes[row]}')",
        timeout=CLICK_TIMEOUT_MS,
    )
    _wait_idle(page)
    _assert_clean(page, errors, "recall bar")
    n_class = int(counts[row].sum())
    assert _faces_in(page, "conf_class_faces") == min(n_class, PAGE_SIZE)
    body = page.locator('[data-testid="stMain"]').inner_text()
    assert "Ranked by lowest probability of the true class" in body
    page.locator(".st-key-conf_class_faces").scroll_into_view_if_needed()
    page.screenshot(path=str(shots / "faces-2-bar.png"), full_page=True)

    # Clear forgets the pick.
    page.get_by_role("button", name="Clear the faces").click()
    page.wait_for_function(
        "() => !document.body.innerText.includes('hardest faces labelled')",
        timeout=CLICK_TIMEOUT_MS,
    )
    _wait_idle(page)
    assert _faces_in(page, "conf_class_faces") == 0
    assert "hardest faces labelled" not in page.locator('[data-testid="stMain"]').inner_text()

    # Geometry: a bar of the per-class compactness chart, the faces farthest from the centroid.
    _open(page, f"{server}/geometry")
    _click_bar(page, "geom_compactness_mean", 0, int(row))
    page.wait_for_function(
        f"() => document.body.innerText.includes('the hardest faces labelled {classes[row]}')",
        timeout=CLICK_TIMEOUT_MS,
    )
    _wait_idle(page)
    _assert_clean(page, errors, "geometry bar")
    assert _faces_in(page, "geom_class_faces") == min(n_class, PAGE_SIZE)
    assert "farthest from the class centroid" in page.locator('[data-testid="stMain"]').inner_text()
    page.locator(".st-key-geom_class_faces").scroll_into_view_if_needed()
    page.screenshot(path=str(shots / "faces-3-geometry-bar.png"), full_page=True)

    # The HTML report, downloaded as a person would: at least three series colours.
    _open(page, f"{server}/export")
    with page.expect_download() as info:
        page.get_by_role("button", name="HTML report").click()
    assert info.value.suggested_filename == "report.html"
    report = tmp_path / "report.html"  # the download is stored without its name: save it as one
    info.value.save_as(report)
    assert "#000001" not in report.read_text(encoding="utf-8")  # no theme placeholder colours
    # Opened in the browser: the colours Plotly draws the series of each figure with.
    page.goto(report.as_uri())
    page.wait_for_function("() => document.querySelectorAll('.js-plotly-plot').length > 0")
    colours = page.evaluate(
        """() => Array.from(document.querySelectorAll('.js-plotly-plot')).map(gd =>
             gd._fullData.filter(t => t.type === 'bar' || t.type === 'scatter').map(t =>
               (t.marker && typeof t.marker.color === 'string') ? t.marker.color
               : (t.line && t.line.color) || null))"""
    )
    most = max((len({c for c in fig if c}) for fig in colours), default=0)
    assert most >= 3, colours

    # No request of the whole visit left the machine.
    host = urlparse(server).netloc
    hosts = {urlparse(u).netloc for u in requests if urlparse(u).scheme in ("http", "https")}
    assert hosts == {host}, sorted(u for u in requests if urlparse(u).netloc != host)
    page.close()
