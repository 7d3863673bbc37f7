"""The dashboard confined, in a real browser (issue #14's done-when test).

A runs root (``hostile.make_tree``) holds runs whose ``thumbs.npy``, ``metrics.json``, ``cache/``
and other files are symlinks to a "secret" folder outside the root (a marker string, white faces),
a run whose name, class names, sample ids and metadata are Markdown images / links and HTML
pointing at a tiny HTTP server this test runs, and runs with a prediction of 42 or a NaN label.
Every page is visited in headless Chromium with every request recorded: none may go to another
host than the app's, the leak server must get no hit, the marker must appear in no page and no
download, nothing may be written in the secret folder, and the bad runs cost only their own entry.
"""

from __future__ import annotations

import http.server
import threading
from urllib.parse import urlparse

import pytest
from hostile import SECRET, make_tree, secret_state
from test_browser import (  # noqa: F401  (fixtures: pytest finds them by name here)
    APP_IDLE,
    PAGE_TIMEOUT_MS,
    _assert_clean,
    _open,
    _url,
    browser,
    server,
    shots,
    sync_api,
)

pytestmark = pytest.mark.browser

PAGES = ("runs", "geometry", "confusion", "projection", "neighbours", "compare", "dynamics")
PAGES += ("export",)
#: Pages that draw the selected runs: each names the run it cannot draw and draws the others.
RUN_PAGES = ("geometry", "confusion", "projection", "neighbours", "compare", "export")


@pytest.fixture(scope="module")
def leak():
    """A local HTTP server standing for "the internet": (its URL, the paths it was asked for)."""
    hits: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (the http.server API)
            hits.append(self.path)
            self.send_response(404)
            self.end_headers()

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", hits
    httpd.shutdown()


@pytest.fixture(scope="module")
def runs_root(tmp_path_factory, leak):
    """The hostile runs root (the ``server`` fixture of test_browser serves it)."""
    return make_tree(tmp_path_factory.mktemp("hostile"), leak[0])


def test_hostile_runs_leak_nothing_and_bad_runs_cost_only_themselves(  # noqa: F811
    browser, server, leak, runs_root, shots  # noqa: F811
):  # fmt: skip
    leak_url, hits = leak
    tree = runs_root.parent
    before = secret_state(tree)
    context = browser.new_context(viewport={"width": 1400, "height": 2000}, accept_downloads=True)
    page = context.new_page()
    requests: list[str] = []
    errors: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    literal = f"![x]({leak_url}/leak.png)"
    for name in PAGES:
        _open(page, _url(server, name))
        _assert_clean(page, errors, name)
        # (The escaping puts invisible word joiners into URLs so that nothing links them.)
        body = page.locator("body").inner_text().replace("\u2060", "")
        assert SECRET not in body, name
        hrefs = page.eval_on_selector_all("a[href]", "els => els.map(e => e.href)")
        assert all(h.startswith(server) for h in hrefs), (name, hrefs)
        if name in RUN_PAGES:
            # The run whose kNN votes hold 42 is named; the others are drawn.
            assert "Run knn_bad skipped" in body and "prediction 42" in body, name
        if name in ("projection", "neighbours", "compare"):
            assert literal in body, f"{name}: the Markdown name is not shown as text"
        page.screenshot(path=str(shots / f"confined-{name}.png"))
        if name == "projection":
            titles = page.locator(".js-plotly-plot .annotation-text").all_text_contents()
            assert page.locator(".js-plotly-plot a, .js-plotly-plot image").count() == 0
            # The softmax run is the reference (first subplot) since issue #13.
            assert len(titles) == 3 and titles[1].startswith("markdown ![x]")
            assert [titles[0], titles[2]] == ["softmax", "arcface"]
        if name == "runs":
            for bad in ("link_thumbs_npy", "link_metrics_json", "link_cache", "pred_bad"):
                assert f"Malformed run {bad} skipped" in body
    # Every download of the Export page (its last visit) is free of the marker.
    downloads = page.locator('[data-testid="stDownloadButton"] button')
    assert downloads.count() == 4
    for i in range(downloads.count()):
        with page.expect_download() as got:
            downloads.nth(i).click()
        data = open(got.value.path(), "rb").read()
        assert data and SECRET.encode() not in data, got.value.suggested_filename
        page.wait_for_function(APP_IDLE, timeout=PAGE_TIMEOUT_MS)
    context.close()

    app_host = urlparse(server).netloc
    hosts = {urlparse(u).netloc for u in requests if urlparse(u).scheme in ("http", "https", "ws")}
    assert hosts == {app_host}, sorted(u for u in requests if urlparse(u).netloc != app_host)
    assert hits == []
    assert secret_state(tree) == before
