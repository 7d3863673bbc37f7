"""Issue #13 (part): sensible defaults, stable colours, honest scales, ranked suspects, readable
tables. AppTests on small synthetic runs; expected values recomputed here with numpy."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from conftest import REPO, VALID
from dashboard_synth import make_run, make_runs, make_split
from test_pages import chart, tables_with

from ferembed.runs import load_run

FOUR = ("arcface", "center", "softmax", "triplet")


@pytest.fixture(scope="module")
def four_root(tmp_path_factory):
    """arcface, center, softmax, triplet on one split, plus a softmax-less run of another
    dataset whose sample ids are different (a FER2013 stand-in)."""
    from ferembed.runs import evaluate_run

    root = tmp_path_factory.mktemp("four")
    runs = tuple((name, name, 0.2 + 0.02 * i, True) for i, name in enumerate(FOUR))
    for path in make_runs(root, 120, runs=runs):
        evaluate_run(path)
    other = make_split(90, seed=1)
    other["ids"] = np.array([f"fer/{i:06d}" for i in range(90)])
    path = make_run(root / "zz_other", other, loss="center", spread=0.2)
    manifest = json.loads((path / "run.json").read_text())
    manifest["dataset"]["name"] = "fer2013"
    (path / "run.json").write_text(json.dumps(manifest))
    evaluate_run(path)
    return root


# ---------------------------------------------------------------------------------------------
# Sensible defaults
# ---------------------------------------------------------------------------------------------


def test_softmax_is_the_default_reference_of_its_group(app, four_root):
    at = app(root=four_root)
    assert at.sidebar.multiselect[0].value == ["softmax", "arcface", "center", "triplet"]
    ref = next(s for s in at.sidebar.selectbox if s.key == "reference_run")
    assert ref.value == "softmax"
    # Two datasets: the runs are grouped and the other group's run is not preselected.
    group = next(s for s in at.sidebar.selectbox if s.key == "run_group")
    assert group.options == ["fer2013/test", "synthfer/test"]
    at.switch_page("views/projection.py")
    at.session_state["proj_method"] = "pca"
    at.run()
    assert "aligned onto **softmax**" in " ".join(c.value for c in at.caption)


def test_marking_a_reference_moves_it_first(app, four_root):
    at = app(root=four_root)
    next(s for s in at.sidebar.selectbox if s.key == "reference_run").set_value("center").run()
    assert at.sidebar.multiselect[0].value == ["center", "softmax", "arcface", "triplet"]
    at.switch_page("views/compare.py").run()
    assert at.selectbox(key="cmp_a").value == 0  # the marked reference is the baseline


def test_choosing_a_group_selects_its_runs(app, four_root):
    at = app(root=four_root)
    next(s for s in at.sidebar.selectbox if s.key == "run_group").set_value("fer2013/test").run()
    assert at.sidebar.multiselect[0].value == ["zz_other"]


@pytest.mark.parametrize("page", ["confusion", "compare", "projection"])
def test_pages_pairing_runs_warn_when_samples_differ(app, four_root, page):
    def setup(at):
        at.session_state["proj_method"] = "pca"

    at = app(page, root=four_root, setup=setup, selected=["softmax", "zz_other"])
    warnings = " ".join(w.value for w in at.main.warning)
    assert "share only 0% of their samples" in warnings, warnings


def test_pages_pairing_runs_of_one_split_do_not_warn(app):
    at = app("confusion")
    assert not [w for w in at.main.warning if "share only" in w.value]


def test_group_and_reference_rules():
    from dashboard._defaults import default_selection, pick_reference, shared_fraction

    def run(name, dataset="fer2013", loss=None):
        return (
            name,
            name,
            {"dataset": {"name": dataset, "split": "test"}, "model": {"loss": loss}},
        )

    runs = [run("affinity_cluster"), run("arcface"), run("softmax", "synthfer"),
            run("softmax"), run("zeta")]  # fmt: skip
    # Two softmax runs: the one of the larger group wins.
    assert pick_reference(runs) == "softmax"
    assert default_selection(runs[:2] + runs[3:], limit=3) == ["softmax", "affinity_cluster",
                                                               "arcface"]  # fmt: skip
    assert pick_reference([run("a"), run("b", loss="softmax")]) == "b"
    assert pick_reference([run("a"), run("b")]) == "a"
    assert pick_reference([run("a"), run("b")], marked="b") == "b"
    assert pick_reference([]) is None
    unknown = ("imported", "imported", {})  # no dataset named: may belong to any group
    assert default_selection([run("a", "x"), run("b", "y"), unknown], limit=5) == ["a", "imported"]
    assert shared_fraction(np.array(["a", "b"]), np.array(["b", "c", "d"])) == 0.5
    assert shared_fraction(np.array(["a"]), np.array([], str)) == 0.0


# ---------------------------------------------------------------------------------------------
# Stable colours
# ---------------------------------------------------------------------------------------------


def _bar_colours(at, key):
    return {t["name"]: t["marker"]["color"] for t in chart(at, key)["data"]}


def test_a_run_keeps_its_colour_whatever_the_selection(app):
    a = _bar_colours(app("geometry", selected=["arcface", "softmax", "supcon"]), "geom_margin")
    b = _bar_colours(app("geometry", selected=["supcon", "softmax"]), "geom_margin")
    assert len(set(a.values())) == 3
    assert b == {"supcon": a["supcon"], "softmax": a["softmax"]}
    at = app("geometry", selected=["supcon", "softmax"])
    at.session_state["geom_tab"] = "Distance histograms"
    hist = chart(at.run(), "geom_hist")
    for trace in hist["data"]:
        assert trace["line"]["color"] == a[trace["name"].split(" · ")[0]]


def test_classes_and_runs_use_separate_palettes():
    from dashboard._charts import CLASS_COLORS, RUN_COLORS

    assert not set(CLASS_COLORS[:8]) & set(RUN_COLORS[:10])


def _colorways(html: str) -> set[tuple[str, ...]]:
    found = re.findall(r'"colorway":(\[[^\]]*\])', html)
    return {tuple(c.lower() for c in json.loads(m)) for m in found}


def test_export_html_report_has_the_cli_colours(app, runs_root, tmp_path, monkeypatch):
    import os
    import subprocess
    import sys

    from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage

    files: dict[str, bytes] = {}
    original = MemoryMediaFileStorage.load_and_get_id

    def spy(self, path_or_data, mimetype, kind, filename=None):
        files[filename] = path_or_data
        return original(self, path_or_data, mimetype, kind, filename)

    monkeypatch.setattr(MemoryMediaFileStorage, "load_and_get_id", spy)
    app("export")
    html = files["report.html"].decode()
    # The CLI's report, written by a process that never imported Streamlit.
    out = tmp_path / "cli.html"
    script = (
        "import sys; from ferembed.export import export; "
        "export(sys.argv[2:], format='html', out=sys.argv[1])"
    )
    paths = [str(runs_root / v) for v in VALID]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    subprocess.run([sys.executable, "-c", script, str(out), *paths], check=True, env=env)
    (colorway,) = _colorways(html)
    assert _colorways(out.read_text()) == {colorway}
    assert len(set(colorway[: len(VALID)])) >= 3
    assert "#000001" not in html and "#000002" not in html
    import plotly.io as pio

    assert pio.templates.default == "streamlit"  # the dashboard's own charts keep its theme


# ---------------------------------------------------------------------------------------------
# Honest scales
# ---------------------------------------------------------------------------------------------


def test_difference_matrix_is_centred_and_symmetric(app):
    fig = chart(app("confusion"), "conf_diff")["data"][0]
    z = np.asarray(fig["z"], float)
    assert fig["zmid"] == 0
    assert fig["zmax"] == -fig["zmin"] == pytest.approx(max(np.abs(z).max(), 0.1))


def test_small_deltas_do_not_fill_the_scale():
    from dashboard._charts import delta_bars, heatmap

    fig = delta_bars(["a", "b"], [0.02, -0.01], title="t", yaxis="d")
    assert tuple(fig.layout.yaxis.range) == pytest.approx((-0.105, 0.105))
    assert fig.data[0].marker.cmid == 0 and fig.data[0].marker.cmax == pytest.approx(0.1)
    fig = delta_bars(["a"], [-0.3], low=[-0.5], high=[-0.1], title="t", yaxis="d")
    assert tuple(fig.layout.yaxis.range) == pytest.approx((-0.525, 0.525))
    assert heatmap(np.eye(2), ["a", "b"], zmid=0.0).data[0].zmid == 0


def test_neural_collapse_axis_turns_log_over_two_decades():
    from dashboard._charts import metric_bars, wants_log_axis

    assert wants_log_axis([248.0, 0.5, 1.2]) and not wants_log_axis([3.0, 0.5])
    assert not wants_log_axis([248.0, -0.1]) and not wants_log_axis([])
    fig = metric_bars(["nc1", "nc3"], {"arcface": [248.0, 0.4], "softmax": [2.0, 0.3]}, title="t")
    assert fig.layout.yaxis.type == "log"
    fig = metric_bars(["nc1", "nc3"], {"softmax": [2.0, 0.3]}, title="t")
    assert fig.layout.yaxis.type != "log"


def test_legends_sit_outside_the_axes(app):
    at = app("geometry")
    at.session_state["geom_tab"] = "Distance histograms"
    layout = chart(at.run(), "geom_hist")["layout"]
    assert layout["legend"]["x"] >= 1 and layout["legend"]["xanchor"] == "left"
    bars = chart(app("geometry"), "geom_margin")["layout"]["legend"]
    assert bars["y"] < 0 and bars["yanchor"] == "top"


# ---------------------------------------------------------------------------------------------
# Most likely mislabelled, flips
# ---------------------------------------------------------------------------------------------


def test_vote_margins_by_hand():
    from dashboard._suspects import vote_margins

    nl = np.array([[1, 1, 0], [2, 1, -1]])
    d = np.array([[1.0, 1.0, 0.5], [1.0, 1.0, np.inf]])
    margin, dis, voted = vote_margins(nl, d, np.array([0, 0]), 3)
    eps = 1e-3 * 1.0  # median of the positive distances
    w1, w05 = 1 / (1 + eps), 1 / (0.5 + eps)
    np.testing.assert_allclose(dis, [2 * w1 / (2 * w1 + w05), 1.0])
    np.testing.assert_allclose(margin, [(2 * w1 - w05) / (2 * w1 + w05), 0.5])
    assert voted.tolist()[0] == 1


def test_suspects_are_ranked_by_a_continuous_score(app, runs_root):
    at = app("neighbours")
    options = at.selectbox(key="nb_suspect").options
    run = load_run(runs_root / "arcface")
    x = np.asarray(run.embeddings, float)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    d = 1.0 - x @ x.T
    np.fill_diagonal(d, np.inf)
    nn = np.argsort(d, axis=1, kind="stable")[:, :10]
    dist = np.take_along_axis(d, nn, axis=1)
    w = 1.0 / (dist + 1e-3 * np.median(dist[dist > 0]))
    wrong = run.labels[nn] != run.labels[:, None]
    score = (w * wrong).sum(1) / w.sum(1)
    ids = run.samples["sample_id"].to_numpy()
    shown = [o.split(" · ")[0] for o in options]
    got = score[[int(np.flatnonzero(ids == s)[0]) for s in shown]]
    assert np.all(np.diff(got) <= 1e-9)  # best first
    assert got[0] == pytest.approx(score.max())
    assert len(set(np.round(got, 9))) > 1  # not a tie in disguise
    scores = [float(o.rsplit("score ", 1)[1]) for o in options]
    assert scores == sorted(scores, reverse=True)


def test_suspects_class_filter_and_paging(app, runs_root):
    run = load_run(runs_root / "arcface")
    cls = run.class_names[2]
    at = app("neighbours")
    at.selectbox(key="nb_class").set_value(cls).run()
    options = at.selectbox(key="nb_suspect").options
    labels = dict(zip(run.samples["sample_id"], run.labels, strict=True))
    assert options and all(labels[o.split(" · ")[0]] == 2 for o in options)
    first = app("neighbours").selectbox(key="nb_suspect").options
    at = app("neighbours")
    at.number_input(key="nb_page_None").set_value(2).run()
    second = at.selectbox(key="nb_suspect").options
    assert len(second) == 24 and not set(second) & set(first)
    scores = [float(o.rsplit("score ", 1)[1]) for o in first + second]
    assert scores == sorted(scores, reverse=True)  # page 2 continues page 1


def test_flip_lists_have_a_class_filter(app, runs_root):
    at = app("compare")
    flips = tables_with(at, "face", "pred A")
    label = flips[0]["label"].iloc[0]
    key = next(s.key for s in at.selectbox if s.key and s.key.startswith("cmp_cls_to_correct"))
    at.selectbox(key=key).set_value(label).run()
    shown = tables_with(at, "face", "pred A")[0]
    assert set(shown["label"]) == {label}
    a, b = load_run(runs_root / "softmax"), load_run(runs_root / "arcface")
    ok_a = np.asarray(a.logits).argmax(1) == a.labels
    ok_b = np.asarray(b.logits).argmax(1) == b.labels
    k = a.class_names.index(label)
    expected = a.samples["sample_id"].to_numpy()[~ok_a & ok_b & (a.labels == k)][:40]
    assert shown["sample_id"].tolist() == expected.tolist()


# ---------------------------------------------------------------------------------------------
# Runs table
# ---------------------------------------------------------------------------------------------


def test_runs_table_is_compact_with_the_name_pinned(app):
    at = app("runs")
    proto = at.dataframe[0].proto
    assert list(proto.column_order) == [
        "run", "dataset", "split", "loss", "Head acc", "P@1", "MAP@R", "Compactness",
        "Separation", "Fisher",
    ]  # fmt: skip
    config = json.loads(proto.columns)
    assert config["run"]["pinned"] is True
    assert config["P@1"]["label"] == "P@1 ↑" and config["Compactness"]["label"] == "Compactness ↓"
    at.toggle(key="runs_all_columns").set_value(True).run()
    order = list(at.dataframe[0].proto.column_order)
    assert "Silhouette" in order and "P@1 CI" in order and len(order) > 20
    assert len(at.dataframe[0].value) == len(VALID)
