"""The Export page's HTML report, downloaded through a real browser, and the app's network
traffic (issue #13): the report draws its series in distinct colours (not the dashboard theme's
#000001, #000002, ... placeholders), and no request of any page leaves the machine.

Headless Chromium through Playwright, with the fixtures of test_browser.py.
"""

from __future__ import annotations

import json
import re
from urllib.parse import urlparse

import pytest
from conftest import VALID
from test_browser import APP_IDLE, PAGE_TIMEOUT_MS, PAGES, _url, browser, server, sync_api  # noqa: F401

pytestmark = pytest.mark.browser


def _figures(html: str) -> list[tuple[list[dict], dict]]:
    """The (traces, layout) of every ``Plotly.newPlot(id, traces, layout, ...)`` call in a page."""
    decoder = json.JSONDecoder()
    figures = []
    for match in re.finditer(r"Plotly\.newPlot\(\s*\"[^\"]+\",\s*", html):
        traces, end = decoder.raw_decode(html, match.end())
        layout, _ = decoder.raw_decode(html, end + html[end:].index("{"))
        figures.append((traces, layout))
    return figures


def _series_colours(traces: list[dict], layout: dict) -> list[str]:
    """The colour each named trace is drawn in: its own marker/line colour when it sets a single
    one, else the next colour of the layout's (or template's) colorway, as plotly.js assigns it."""
    template = layout.get("template", {}).get("layout", {})
    colorway = layout.get("colorway") or template.get("colorway") or []
    colours = []
    for i, trace in enumerate(traces):
        if not trace.get("name"):
            continue
        own = [
            trace.get(part, {}).get("color")
            for part in ("marker", "line")
            if isinstance(trace.get(part, {}).get("color"), str)
        ]
        colours.append((own[0] if own else colorway[i % len(colorway)]).lower())
    return colours


def test_downloaded_html_report_has_distinct_series_colours(browser, server, tmp_path):  # noqa: F811
    page = browser.new_page(viewport={"width": 1400, "height": 1600}, accept_downloads=True)
    page.goto(_url(server, "export"))
    page.wait_for_function(APP_IDLE, timeout=PAGE_TIMEOUT_MS)
    with page.expect_download(timeout=60_000) as info:
        page.get_by_role("button", name="HTML report").click()
    path = tmp_path / info.value.suggested_filename
    info.value.save_as(path)
    page.close()
    html = path.read_text(encoding="utf-8")
    figures = _figures(html)
    assert figures, "the report holds no plotly figure"
    # The figure with one series per run: its runs must be told apart by colour.
    per_run = [
        _series_colours(t, lay) for t, lay in figures if {tr.get("name") for tr in t} >= set(VALID)
    ]
    assert per_run, "no figure has one series per selected run"
    for colours in per_run:
        assert len(set(colours)) >= 3, colours
        assert not any(re.fullmatch(r"#00000\d", c) for c in colours), colours


def test_no_request_leaves_the_machine(browser, server):  # noqa: F811
    page = browser.new_page(viewport={"width": 1400, "height": 1600})
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    for name in PAGES:
        page.goto(_url(server, name))
        page.wait_for_function(APP_IDLE, timeout=PAGE_TIMEOUT_MS)
        page.wait_for_timeout(500)  # late requests: fonts, icons, images
    page.close()
    app_host = urlparse(server).netloc
    assert len(requests) > len(PAGES)
    away = sorted(
        u
        for u in requests
        if urlparse(u).scheme in ("http", "https", "ws", "wss") and urlparse(u).netloc != app_host
    )
    assert not away, away
