"""Projection page: a selection in one panel marks the same samples (by sample_id) in every
panel, survives a change of colouring, and is counted per class; figure downloads (issue #13).

Expected ids and counts are computed here from the runs' files (samples table, labels). The
last test drags a box in headless Chromium (`-m browser`, with the fixtures of test_browser.py).
"""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from conftest import VALID
from page_views import _decode, chart, pca, tables_with
from test_browser import browser, server, sync_api  # noqa: F401 (fixtures of the browser test)

from ferembed.runs import load_run


def _select(at, fig, wanted) -> None:
    """Set the chart's selection the way the browser reports it: (trace, index in the trace)."""
    points = [{"curve_number": c, "point_index": i} for c, i in wanted]
    at.session_state["proj_chart"] = {
        "selection": {"points": points, "point_indices": [], "box": [], "lasso": []}
    }


def _clear_event(at) -> None:
    """What the browser does when the figure changes: the new chart has no selection."""
    at.session_state["proj_chart"] = {
        "selection": {"points": [], "point_indices": [], "box": [], "lasso": []}
    }


def _highlighted(fig, runs) -> dict[int, set[str]]:
    """Per panel, the sample ids of the points the figure marks as selected."""
    marked: dict[int, set[str]] = {}
    for trace in fig["data"]:
        custom = np.asarray(trace["customdata"], dtype=np.int64)
        panel = int(custom[0, 0])
        ids = runs[panel].samples["sample_id"].astype(str).to_numpy()[custom[:, 1]]
        chosen = trace.get("selectedpoints")
        assert chosen is not None, "a trace without selectedpoints"
        marked.setdefault(panel, set()).update(ids[np.asarray(chosen, dtype=np.int64)])
    return marked


def tables_with_or_none(at, *columns):
    """The page's tables that have all these columns (maybe none)."""
    return [d.value for d in at.dataframe if set(columns) <= set(d.value.columns)]


@pytest.fixture
def selected(app, runs_root):
    """An AppTest with points picked in the first panel only, and the picked sample ids."""
    at = app("projection", setup=pca)
    fig = chart(at, "proj_chart")
    runs = [load_run(runs_root / v) for v in VALID]
    panel0 = [c for c, t in enumerate(fig["data"]) if t["customdata"][0][0] == 0]
    # A few points of two traces (classes) of the first panel, as a lasso would give.
    wanted = [(panel0[0], i) for i in range(4)] + [(panel0[1], i) for i in range(3)]
    ids = set()
    for c, i in wanted:
        panel, row = fig["data"][c]["customdata"][i]
        assert panel == 0
        ids.add(str(runs[0].samples["sample_id"].to_numpy()[row]))
    _select(at, fig, wanted)
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    return at, runs, ids


def _check_marked(at, runs, ids) -> None:
    marked = _highlighted(chart(at, "proj_chart"), runs)
    assert sorted(marked) == list(range(len(VALID)))
    for panel, got in marked.items():
        have = set(runs[panel].samples["sample_id"].astype(str))
        assert got == ids & have
        assert got  # the synthetic runs share their samples: every panel marks some


def test_a_selection_in_one_panel_is_marked_in_every_panel(selected):
    at, runs, ids = selected
    _check_marked(at, runs, ids)


def test_the_selection_survives_a_change_of_colouring(selected):
    at, runs, ids = selected
    at.session_state["proj_color"] = "correct"
    _clear_event(at)
    at.run()
    assert not at.exception
    fig = chart(at, "proj_chart")
    assert {t["name"] for t in fig["data"]} <= {"correct", "wrong", "no prediction"}
    _check_marked(at, runs, ids)
    # The faces listed are still those picked in the first panel.
    table = tables_with(at, "sample_id", "noise")
    assert len(table) == 1 and set(table[0]["sample_id"]) == ids


def test_the_per_class_breakdown_counts_each_runs_labels(selected):
    at, runs, ids = selected
    table = tables_with(at, "class", *VALID)
    assert len(table) == 1
    table = table[0].set_index("class")
    for run, name in zip(runs, VALID, strict=True):
        sid = run.samples["sample_id"].astype(str).to_numpy()
        labels = run.labels[np.isin(sid, list(ids))]
        for k, cls in enumerate(run.class_names):
            assert table.loc[cls, name] == int((labels == k).sum())
        assert table.loc["total", name] == len(labels)


def test_clear_selection_forgets_it(selected):
    at, runs, ids = selected
    _clear_event(at)
    at.button(key="proj_clear").click().run()
    assert not at.exception
    fig = chart(at, "proj_chart")
    assert all(t.get("selectedpoints") is None for t in fig["data"])
    assert not tables_with_or_none(at, "sample_id", "noise")


# ---------------------------------------------------------------------------------------------
# Figure downloads
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def downloads(monkeypatch):
    """The bytes of every file offered for download, by file name."""
    from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage

    files: dict[str, bytes] = {}
    original = MemoryMediaFileStorage.load_and_get_id

    def spy(self, path_or_data, mimetype, kind, filename=None):
        files[filename] = path_or_data
        return original(self, path_or_data, mimetype, kind, filename)

    monkeypatch.setattr(MemoryMediaFileStorage, "load_and_get_id", spy)
    return files


def _check_files(files, figure) -> None:
    root = ET.parse(io.BytesIO(files[f"{figure}.svg"])).getroot()
    assert root.tag.endswith("svg")
    assert files[f"{figure}.pdf"].startswith(b"%PDF-")
    assert files[f"{figure}.png"].startswith(b"\x89PNG\r\n\x1a\n")


def test_projection_figure_downloads(app, downloads):
    def setup(at):
        pca(at)
        at.session_state["proj_figure"] = True

    at = app("projection", setup=setup)
    labels = [d.label for d in at.download_button]
    assert [label.split(" ")[0] for label in labels] == [
        "projection.svg",
        "projection.pdf",
        "projection.png",
    ]
    _check_files(downloads, "projection")
    svg = downloads["projection.svg"].decode()
    assert all(v in svg for v in VALID)  # one titled panel per selected run


def test_export_figure_downloads(app, downloads):
    def setup(at):
        at.session_state["export_figure"] = "geometry"
        at.session_state["export_figure_files"] = True

    at = app("export", setup=setup)
    assert "geometry.svg" in " ".join(d.label for d in at.download_button)
    _check_files(downloads, "geometry")
    svg = downloads["geometry.svg"].decode()
    assert all(v in svg for v in VALID)


# ---------------------------------------------------------------------------------------------
# In a real browser
# ---------------------------------------------------------------------------------------------

#: Per trace of the projection chart: its customdata ([panel, run row]; typed arrays as lists,
#: or still Plotly's {dtype, bdata, shape}) and selectedpoints.
_TRACES_JS = """() => {
  const gd = document.querySelector('.js-plotly-plot');
  const plain = v => (v && ArrayBuffer.isView(v)) ? Array.from(v)
    : (Array.isArray(v) ? v.map(plain) : v);
  return gd.data.map(t => ({custom: plain(t.customdata), selected: plain(t.selectedpoints)}));
}"""


@pytest.mark.browser
def test_a_box_in_one_panel_marks_the_same_faces_in_chromium(browser, server, runs_root):  # noqa: F811
    from test_browser import APP_IDLE, PAGE_TIMEOUT_MS, _assert_clean, _open

    page = browser.new_page(viewport={"width": 1400, "height": 2000})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    _open(page, f"{server}/projection")
    # A box over the left half of the first subplot (the chart's drag mode is box select).
    area = page.locator(".js-plotly-plot .nsewdrag").first.bounding_box()
    x0, y0 = area["x"] + 2, area["y"] + 2
    x1, y1 = area["x"] + area["width"] / 2, area["y"] + area["height"] - 2
    page.mouse.move(x0, y0)
    page.mouse.down()
    page.mouse.move(x1, y1, steps=8)
    page.mouse.up()
    page.wait_for_function(
        "() => document.body.innerText.includes('marked in every panel')",
        timeout=PAGE_TIMEOUT_MS,
    )
    page.wait_for_function(APP_IDLE, timeout=PAGE_TIMEOUT_MS)
    page.wait_for_timeout(800)
    _assert_clean(page, errors, "linked selection")
    # The app's default selection: softmax first, then its group (test_pages checks it).
    runs = [load_run(runs_root / n) for n in ("softmax", "arcface", "supcon")]
    marked = _browser_marks(page.evaluate(_TRACES_JS), runs)
    assert marked[0] and len(marked) == len(runs)
    for panel, got in marked.items():
        assert got == marked[0] & set(runs[panel].samples["sample_id"].astype(str)), panel
    # Colour by correctness: the chart is drawn anew, the same faces stay marked.
    page.get_by_label("Colour by").click()
    page.get_by_role("option", name="Correctness").click()
    page.wait_for_function(
        "() => document.querySelector('.js-plotly-plot').data.some(t => t.name === 'wrong')",
        timeout=PAGE_TIMEOUT_MS,
    )
    page.wait_for_function(APP_IDLE, timeout=PAGE_TIMEOUT_MS)
    page.wait_for_timeout(800)
    _assert_clean(page, errors, "linked selection, new colouring")
    assert _browser_marks(page.evaluate(_TRACES_JS), runs) == marked
    page.close()


def _browser_marks(traces: list[dict], runs) -> dict[int, set[str]]:
    marked: dict[int, set[str]] = {}
    for t in traces:
        assert t["selected"] is not None, "a trace without selectedpoints"
        custom = np.asarray(_decode(t["custom"]), dtype=np.int64).reshape(-1, 2)
        ids = runs[int(custom[0, 0])].samples["sample_id"].astype(str).to_numpy()[custom[:, 1]]
        marked.setdefault(int(custom[0, 0]), set()).update(ids[np.asarray(t["selected"], int)])
    return marked


def test_a_figure_of_a_run_without_metrics_is_a_one_line_error(app, tmp_path, downloads):
    from ferembed.runs import make_samples, write_run

    rng = np.random.default_rng(0)
    y = np.arange(60) % 3
    x = (rng.normal(size=(3, 8))[y] * 3 + rng.normal(size=(60, 8))).astype(np.float32)
    write_run(
        tmp_path / "fresh",
        embeddings=x,
        samples=make_samples(y, ["angry", "happy", "sad"]),
        class_names=["angry", "happy", "sad"],
    )

    def setup(at):
        pca(at)
        at.session_state["proj_figure"] = True

    at = app("projection", setup=setup, root=tmp_path)
    assert not at.exception
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and errors[0].startswith("projection figure: ")
    assert "metrics" in errors[0] and "\n" not in errors[0]
    assert not at.download_button and not [name for name in downloads if name]
    assert not (tmp_path / "fresh" / "metrics.json").exists()  # nothing evaluated behind one's back


def test_the_selection_is_listed_in_3d_too(selected):
    at, runs, ids = selected
    at.session_state["proj_dim"] = 3
    at.run()
    assert not at.exception
    assert chart(at, "proj_chart3d")
    table = tables_with(at, "sample_id", "noise")
    assert len(table) == 1 and set(table[0]["sample_id"]) == ids
    assert tables_with(at, "class", *VALID)[0].set_index("class").loc["total", VALID[0]] == len(ids)


def test_the_selected_faces_come_24_per_page(app, runs_root):
    at = app("projection", setup=pca)
    fig = chart(at, "proj_chart")
    wanted = [
        (c, i)
        for c, t in enumerate(fig["data"])
        if t["customdata"][0][0] == 0
        for i in range(len(t["customdata"]))
    ][:30]
    _select(at, fig, wanted)
    at.run()
    assert not at.exception

    def faces() -> int:
        return sum(len(i.value) for i in at.main.get("image"))

    assert faces() == 24
    pager = next(n for n in at.number_input if n.key.startswith("proj_page_0"))
    assert pager.label == "Page (of 2)"
    pager.set_value(2).run()
    assert not at.exception
    assert faces() == 30 - 24
    assert "faces 25-30 shown" in "\n".join(str(m.value) for m in at.markdown)
