"""Click an aggregate, see its faces (issue #13), in AppTest: a click on a confusion cell or a
per-class bar is set as the chart's selection event the way the browser reports it; the faces
listed are those the runs' files say (labels, logits, per_sample.parquet), counted here with
numpy. The real clicks in Chromium are in test_browser_faces.py.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import VALID
from page_views import chart, metrics_of
from test_confined import hostile  # noqa: F401 (the runs with Markdown in their names)

from ferembed.runs import load_run


def _click(at, key: str, custom: list[int], curve: int = 1, index: int = 0) -> None:
    """The selection event of a click on the point with this customdata."""
    point = {"curve_number": curve, "point_index": index, "customdata": custom}
    at.session_state[key] = {
        "selection": {"points": [point], "point_indices": [index], "box": [], "lasso": []}
    }


def _head_counts(run) -> np.ndarray:
    k = len(run.class_names)
    counts = np.zeros((k, k), np.int64)
    np.add.at(counts, (run.labels, np.asarray(run.logits).argmax(axis=1)), 1)
    return counts


def _grids(at) -> list[list[str]]:
    """Captions of each face grid on the page, in page order (Markdown escapes removed)."""
    return [[img.caption.replace("\\", "") for img in el.proto.imgs] for el in at.main.get("image")]


def _ids(run) -> np.ndarray:
    return run.samples["sample_id"].astype(str).to_numpy()


def _softmax_true(run, c: int) -> np.ndarray:
    z = np.asarray(run.logits, np.float64)
    p = np.exp(z - z.max(axis=1, keepdims=True))
    return (p / p.sum(axis=1, keepdims=True))[:, c]


def test_a_clicked_cell_lists_its_faces_in_every_run(app, runs_root):
    at = app("confusion")  # run A: arcface (the selection is alphabetical here)
    runs = [load_run(runs_root / v) for v in VALID]
    counts = _head_counts(runs[0])
    off = counts - np.diag(np.diag(counts))
    row, col = np.unravel_index(int(np.argmax(off)), off.shape)
    _click(at, "conf_main", [int(row), int(col)], index=int(row * len(counts) + col))
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    classes = runs[0].class_names
    assert at.session_state["conf_pick"] == {
        "kind": "cell", "true": classes[row], "pred": classes[col]
    }  # fmt: skip
    grids = _grids(at)
    shown = 0
    for run in runs[:2]:  # the runs with a head; supcon has none
        pred = np.asarray(run.logits).argmax(axis=1)
        want = _ids(run)[(run.labels == row) & (pred == col)]
        if len(want):
            assert grids[shown] == list(want[:24])
            assert len(grids[shown + 1]) == 8  # the nearest neighbours of the first face
            shown += 2
    assert len(grids) == shown
    assert "supcon has no Classifier head predictions." in [c.value for c in at.caption]
    # The picked cell is outlined on the matrix; the click targets cover every cell.
    fig = chart(at, "conf_main")
    (shape,) = fig["layout"]["shapes"]
    assert (shape["x0"], shape["y0"]) == (col - 0.5, row - 0.5)
    assert sorted(map(tuple, fig["data"][1]["customdata"])) == [
        (i, j) for i in range(len(classes)) for j in range(len(classes))
    ]


def test_cell_faces_are_the_cells_counted_in_metrics(runs_root):
    from dashboard._faces import SOURCES, cell_rows

    for name in VALID:
        run = load_run(runs_root / name)
        confusion = metrics_of(runs_root, name)["confusion"]
        for source in SOURCES:
            if source not in confusion:
                continue
            k = len(run.class_names)
            got = [
                [len(cell_rows(run, source, run.class_names[i], run.class_names[j]))
                 for j in range(k)]
                for i in range(k)
            ]  # fmt: skip
            assert got == confusion[source]["counts"], (name, source)


def test_a_clicked_recall_bar_lists_the_hardest_faces(app, runs_root):
    at = app("confusion")
    softmax = load_run(runs_root / "softmax")
    c = 3
    # The bars of run A (arcface) come first, then softmax's (supcon has no head).
    _click(at, "conf_recall", [1, c], curve=1, index=c)
    at.run()
    assert at.session_state["conf_pick"]["run"].endswith("softmax")
    rows = np.flatnonzero(softmax.labels == c)
    prob = _softmax_true(softmax, c)[rows]
    order = rows[np.argsort(prob, kind="stable")]
    (grid, neighbours) = _grids(at)
    pred = np.asarray(softmax.logits).argmax(axis=1)
    names = softmax.class_names
    assert grid == [f"→ {names[pred[r]]} ({prob_r:.2f})" for r, prob_r in
                    zip(order[:24], np.sort(prob)[:24], strict=True)]  # fmt: skip
    assert len(neighbours) == 8
    captions = " ".join(c.value for c in at.caption)
    assert "lowest probability of the true class" in captions and "faces 1-24" in captions
    bars = chart(at, "conf_recall")["data"]  # the picked bar is outlined, no other
    assert bars[1]["marker"]["line"]["width"] == [3 if k == c else 0 for k in range(len(names))]
    assert "line" not in bars[0]["marker"] or not any(bars[0]["marker"]["line"].get("width", []))


def test_the_pick_survives_reruns_and_clears(app, runs_root):
    at = app("confusion")
    _click(at, "conf_main", [0, 0], index=0)
    at.run()
    pick = at.session_state["conf_pick"]
    assert pick["kind"] == "cell"
    # The outlined matrix is a new chart: its selection comes back empty; the pick stays.
    at.session_state["conf_main"] = {
        "selection": {"points": [], "point_indices": [], "box": [], "lasso": []}
    }
    at.toggle(key="conf_norm").set_value(False).run()
    assert at.session_state["conf_pick"] == pick and _grids(at)
    at.switch_page("views/geometry.py").run()
    at.switch_page("views/confusion.py").run()  # another page and back
    assert at.session_state["conf_pick"] == pick and _grids(at)
    at.button(key="conf_pick_clear").click().run()
    assert not at.session_state["conf_pick"] and not _grids(at)
    at.run()  # the old event, seen before, does not come back
    assert not at.session_state["conf_pick"]
    # A cell of the difference matrix is a pick too, outlined on both matrices.
    _click(at, "conf_diff", [1, 0], index=7)
    at.run()
    classes = load_run(runs_root / "arcface").class_names
    assert at.session_state["conf_pick"] == {
        "kind": "cell", "true": classes[1], "pred": classes[0]
    }  # fmt: skip
    for key in ("conf_main", "conf_diff"):
        (shape,) = chart(at, key)["layout"]["shapes"]
        assert (shape["x0"], shape["y0"]) == (-0.5, 0.5)


def test_a_clicked_geometry_bar_lists_the_faces_farthest_from_the_centroid(app, runs_root):
    at = app("geometry")
    supcon = load_run(runs_root / "supcon")  # third run, no head
    c = 2
    _click(at, "geom_margin", [2, c], curve=2, index=c)
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    dist = supcon.load_per_sample()["distance_to_centroid"].to_numpy(float)
    rows = np.flatnonzero(supcon.labels == c)
    order = rows[np.argsort(-dist[rows], kind="stable")]
    grid = _grids(at)[0]
    assert [float(g.rsplit("(", 1)[1].rstrip(")")) for g in grid] == pytest.approx(
        np.round(dist[order[:24]], 2)
    )
    assert "farthest from the class centroid" in " ".join(c.value for c in at.caption)


def test_click_points_and_overlay():
    import plotly.graph_objects as go

    from dashboard._charts import heatmap
    from dashboard._faces import point_custom

    assert point_custom({"customdata": {"1": 3, "0": 5}}) == [5, 3]
    assert point_custom({"customdata": [1, 2]}) == [1, 2]
    fig = go.Figure(go.Bar(x=["a", "b"], y=[1, 2], customdata=[[0, 0], [0, 1]]))
    assert point_custom({"curve_number": 0, "point_index": 1}, fig) == [0, 1]
    assert point_custom({"curve_number": 3, "point_index": 1}, fig) is None
    assert point_custom({"customdata": "x"}) is None
    from dashboard._faces_view import bar_pick, cell_pick

    assert cell_pick([{"customdata": {"0": 1, "1": 0}}], ["a", "b"]) == {
        "kind": "cell", "true": "b", "pred": "a"
    }  # fmt: skip
    assert cell_pick([{"customdata": [2, 0]}], ["a", "b"]) is None  # outside the matrix
    assert cell_pick([], ["a"]) is None
    assert bar_pick([{"customdata": [1, 0]}], [], ["a"]) is None  # no such run
    fig = heatmap(np.eye(3), ["1", "2", "3"], clickable=True, counts=np.eye(3) * 5)
    hm, cells = fig.data
    assert hm.type == "heatmap" and hm.hoverinfo == "skip" and cells.type == "scatter"
    assert "n = 5" in cells.hovertext[0] and cells.marker.color == "rgba(0,0,0,0)"
    assert fig.layout.xaxis.type == "category" and tuple(fig.layout.xaxis.range) == (-0.5, 2.5)
    assert tuple(fig.layout.yaxis.range) == (2.5, -0.5)
    assert len(heatmap(np.eye(3), ["a", "b", "c"]).data) == 1


@pytest.mark.parametrize(
    "page, key, custom", [("confusion", "conf_main", [0, 0]), ("geometry", "geom_margin", [0, 2])]
)
def test_faces_of_hostile_runs_show_user_text_as_text(app, hostile, page, key, custom):  # noqa: F811
    from test_confined import _markdown_values, _open, _unescaped

    at = _open(app, hostile / "runs", page)  # run A: the run whose class names are Markdown
    _click(at, key, custom)
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    assert at.session_state["conf_pick" if page == "confusion" else "geom_pick"]
    assert _grids(at)
    for value in _markdown_values(at):
        assert _unescaped(value) == [], (page, value)
