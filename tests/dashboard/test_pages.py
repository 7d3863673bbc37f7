"""AppTest of every dashboard page, asserting on what the page shows.

Expected values come from the runs' files (metrics.json, logits, embeddings) or are recomputed
here with numpy, never from the dashboard's own helpers.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import BROKEN, DEFAULT, VALID, N
from page_views import chart, metrics_of, pca, tables_with, texts

from ferembed.runs import load_run

# ---------------------------------------------------------------------------------------------
# App shell and Runs page
# ---------------------------------------------------------------------------------------------


def test_sidebar_selects_valid_runs_and_flags_malformed(app):
    at = app(selected=DEFAULT)
    # The softmax run is the reference (first), then its group's other runs (issue #13).
    assert at.sidebar.multiselect[0].value == ["softmax", "arcface", "supcon"]
    assert at.sidebar.multiselect[0].options == list(VALID)
    warning = " ".join(w.value for w in at.sidebar.warning)
    for bad in BROKEN:
        assert bad in warning


def test_runs_table_shows_every_run_with_its_metrics(app, runs_root):
    at = app("runs")
    table = at.dataframe[0].value
    assert sorted(table["run"]) == list(VALID)
    assert set(table["loss"]) == {"softmax", "arcface", "supcon"}
    assert (table["N"] == N).all() and (table["D"] == 32).all()
    for _, row in table.iterrows():
        m = metrics_of(runs_root, row["run"])
        assert row["P@1"] == pytest.approx(m["precision_at_1"])
        assert row["MAP@R"] == pytest.approx(m["map_at_r"])
        assert row["Silhouette"] == pytest.approx(m["silhouette"])
        lo, hi = m["ci"]["precision_at_1"]
        assert row["P@1 CI"] == f"[{lo:.3f}, {hi:.3f}]"


def test_malformed_runs_are_named_with_the_reason(app):
    at = app("runs")
    warnings = [w.value for w in at.main.warning]
    assert len(warnings) == len(BROKEN)
    by_run = {bad: next(w for w in warnings if f"`{bad}`" in w) for bad in BROKEN}
    assert "invalid JSON" in by_run["bad_json"]
    assert "embeddings.npy" in by_run["bad_shape"] and "shape" in by_run["bad_shape"]
    assert "embeddings.npy" in by_run["missing_array"] and "missing" in by_run["missing_array"]


@pytest.mark.parametrize(
    "typed",
    ["../outside/run", "../../outside/run", "arcface/../../outside/run", "{outside}", "link"],
)
def test_typed_path_outside_the_root_is_refused(app, runs_tree, runs_root, typed):
    link = runs_root / "link"
    if not link.exists():
        link.symlink_to(runs_tree / "outside" / "run", target_is_directory=True)
    at = app("runs")
    at.text_input(key="open_path").input(typed.format(outside=runs_tree / "outside" / "run"))
    at.button(key="open_btn").click().run()
    assert not at.exception
    errors = [e.value for e in at.error]
    assert errors and "outside the runs root" in errors[0]
    assert at.session_state["selected_runs"] == list(VALID)


def test_typed_path_inside_the_root_is_added(app):
    at = app("runs")
    at.text_input(key="open_path").input(".hidden/extra")
    at.button(key="open_btn").click().run()
    assert not at.exception
    assert [s.value for s in at.success] == ["Added `.hidden/extra` to the selection."]
    assert at.session_state["selected_runs"] == [*VALID, ".hidden/extra"]
    at.run()  # the sidebar keeps it on the next rerun
    assert ".hidden/extra" in at.sidebar.multiselect[0].value


def test_typed_malformed_run_is_reported(app):
    at = app("runs")
    at.text_input(key="open_path").input("bad_json")
    at.button(key="open_btn").click().run()
    assert "invalid JSON" in at.error[0].value


def test_missing_metrics_are_computed_on_demand(app, tmp_path):
    from dashboard_synth import make_run, make_split

    make_run(tmp_path / "fresh", make_split(80), loss="center", spread=0.2)
    at = app("runs", root=tmp_path)
    assert tables_with(at, "run", "P@1")[0]["metrics"].tolist() == ["missing"]
    at.button(key="compute_missing").click().run()
    assert not at.exception
    assert (tmp_path / "fresh" / "metrics.json").is_file()
    assert (tmp_path / "fresh" / "per_sample.parquet").is_file()
    at.run()
    table = tables_with(at, "run", "P@1")[0]
    m = metrics_of(tmp_path, "fresh")
    assert table["metrics"].tolist() == ["yes"]
    assert table["P@1"].iloc[0] == pytest.approx(m["precision_at_1"])


def test_tabs_keep_their_own_selection(app):
    """Two sessions (browser tabs) do not share the run selection."""
    one, two = app("runs"), app("runs")
    one.sidebar.multiselect[0].set_value(["softmax"]).run()
    two.run()
    assert one.sidebar.multiselect[0].value == ["softmax"]
    assert two.sidebar.multiselect[0].value == list(VALID)


# ---------------------------------------------------------------------------------------------
# Geometry and Confusion: the numbers drawn are those of metrics.json
# ---------------------------------------------------------------------------------------------


def test_geometry_charts_show_the_metrics(app, runs_root):
    at = app("geometry")
    classes = load_run(runs_root / "softmax").class_names
    for key, field in (
        ("geom_compactness_mean", "compactness_mean"),
        ("geom_nearest_class_distance", "nearest_class_distance"),
        ("geom_margin", "margin"),
        ("geom_silhouette", "silhouette"),
    ):
        fig = chart(at, key)
        assert [t["name"] for t in fig["data"]] == list(VALID)
        for trace in fig["data"]:
            pc = metrics_of(runs_root, trace["name"])["per_class"]
            assert trace["x"] == classes
            np.testing.assert_allclose(trace["y"], [pc[c][field] for c in classes])
    # The other tabs are lazy: open each in turn.
    at.session_state["geom_tab"] = "Centroid distances"
    at.run()
    assert not at.main.get("plotly_chart")[0].key.startswith("geom_compactness")
    fig = chart(at, "geom_centroids_0")
    np.testing.assert_allclose(
        fig["data"][0]["z"], metrics_of(runs_root, "arcface")["separation"]["centroid_distances"]
    )
    at.session_state["geom_tab"] = "Distance histograms"
    hist = chart(at.run(), "geom_hist")
    assert len(hist["data"]) == 2 * len(VALID)
    at.session_state["geom_tab"] = "Neural collapse"
    nc = chart(at.run(), "geom_nc")
    for trace in nc["data"]:
        m = metrics_of(runs_root, trace["name"])
        for key, shown in zip(trace["x"], trace["y"], strict=True):
            assert shown is None if m[key] is None else shown == pytest.approx(m[key])


def test_confusion_matrix_matches_the_head(app, runs_root):
    at = app("confusion")
    run = load_run(runs_root / "arcface")
    k = len(run.class_names)
    pred = np.asarray(run.logits).argmax(axis=1)
    counts = np.zeros((k, k))
    np.add.at(counts, (run.labels, pred), 1)
    fig = chart(at, "conf_main")
    np.testing.assert_allclose(fig["data"][0]["z"], counts / counts.sum(axis=1, keepdims=True))
    table = tables_with(at, "class", "precision", "recall")[0]
    recall = np.diag(counts) / counts.sum(axis=1)
    np.testing.assert_allclose(table["recall"], recall)
    np.testing.assert_allclose(table["precision"], np.diag(counts) / counts.sum(axis=0))

    at.toggle(key="conf_norm").set_value(False).run()
    np.testing.assert_allclose(chart(at, "conf_main")["data"][0]["z"], counts)

    # Difference with softmax, row-normalised, B - A.
    other = load_run(runs_root / "softmax")
    pred_b = np.asarray(other.logits).argmax(axis=1)
    counts_b = np.zeros((k, k))
    np.add.at(counts_b, (other.labels, pred_b), 1)
    diff = counts_b / counts_b.sum(axis=1, keepdims=True) - counts / counts.sum(1, keepdims=True)
    np.testing.assert_allclose(chart(at, "conf_diff")["data"][0]["z"], diff, atol=1e-12)


def test_confusion_knn_source_for_headless_run(app):
    at = app("confusion")
    at.selectbox(key="conf_run").set_value(2).run()  # supcon: no head
    assert at.radio(key="conf_src").options == ["kNN vote", "Nearest centroid"]
    assert chart(at, "conf_main")["data"][0]["z"]


# ---------------------------------------------------------------------------------------------
# Projection
# ---------------------------------------------------------------------------------------------


def test_projection_colours_by_label_and_aligns(app, runs_root):
    at = app("projection", setup=pca)
    fig = chart(at, "proj_chart")
    classes = load_run(runs_root / "arcface").class_names
    runs = [load_run(runs_root / v) for v in VALID]
    shown = 0
    for trace in fig["data"]:
        assert trace["type"] == "scattergl"
        panel, rows = np.asarray(trace["customdata"]).T
        labels = runs[int(panel[0])].labels[rows.astype(int)]
        assert {classes[c] for c in labels} == {trace["name"]}
        shown += len(rows)
    assert shown == len(VALID) * N
    assert "aligned onto **arcface**" in " ".join(c.value for c in at.caption)
    assert not any("stratified sample" in i.value for i in at.info)


def test_projection_of_a_large_run_is_sampled_and_says_so(app):
    def setup(at):
        pca(at)
        at.session_state["proj_max"] = 100

    at = app("projection", setup=setup)
    notice = " ".join(i.value for i in at.info)
    assert "stratified sample" in notice and f"of {N:,} samples" in notice
    fig = chart(at, "proj_chart")
    per_panel = {}
    for trace in fig["data"]:
        for p, _ in trace["customdata"]:
            per_panel[p] = per_panel.get(p, 0) + 1
    # Every class keeps at least one point; the sample is about max_points.
    assert all(100 <= v <= 107 for v in per_panel.values())


def test_projection_selection_lists_the_faces(app, runs_root):
    at = app("projection", setup=pca)
    fig = chart(at, "proj_chart")
    # Pick points the way the browser reports them: (trace, index in the trace).
    wanted = [(0, 0), (0, 1), (len(fig["data"]) - 1, 0)]
    points = [{"curve_number": c, "point_index": i} for c, i in wanted]
    expected: dict[int, list[int]] = {}
    for c, i in wanted:
        panel, row = fig["data"][c]["customdata"][i]
        expected.setdefault(int(panel), []).append(int(row))
    at.session_state["proj_chart"] = {
        "selection": {"points": points, "point_indices": [], "box": [], "lasso": []}
    }
    at.run()
    assert not at.exception
    tables = tables_with(at, "sample_id", "noise")
    assert len(tables) == len(expected)
    for table, (panel, rows) in zip(tables, sorted(expected.items()), strict=True):
        run = load_run(runs_root / VALID[panel])
        assert f"**{VALID[panel]}**: {len(rows)} selected" in texts(at)
        ids = run.samples["sample_id"].to_numpy()[rows]
        assert sorted(table["sample_id"]) == sorted(ids)
    assert sum(len(i.value) for i in at.main.get("image")) == 3


def test_projection_3d_and_noise_colouring(app):
    def setup(at):
        pca(at)
        at.session_state["proj_dim"] = 3
        at.session_state["proj_color"] = "noise"

    at = app("projection", setup=setup)
    fig = chart(at, "proj_chart3d")
    assert {t["type"] for t in fig["data"]} == {"scatter3d"}
    assert len(fig["data"]) == len(VALID)
    colours = np.asarray(fig["data"][0]["marker"]["color"], float)
    assert np.isfinite(colours).all() and (colours >= 0).all() and (colours <= 1).all()


# ---------------------------------------------------------------------------------------------
# Neighbours
# ---------------------------------------------------------------------------------------------


def test_neighbours_are_the_exact_nearest_faces(app, runs_root):
    def setup(at):
        at.session_state["nb_mode"] = "id"
        at.session_state["nb_k"] = 5

    at = app("neighbours", setup=setup)
    at.text_input(key="nb_id").input("test/000010").run()
    assert not at.exception
    for name in VALID:
        run = load_run(runs_root / name)
        x = np.asarray(run.embeddings, float)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        d = 1.0 - x @ x[10]
        d[10] = np.inf
        expected = np.argsort(d, kind="stable")[:5]
        table = tables_with(at, "rank", "sample_id", "distance")[VALID.index(name)]
        ids = run.samples["sample_id"].to_numpy()
        assert table["sample_id"].tolist() == ids[expected].tolist()
        np.testing.assert_allclose(table["distance"], d[expected], atol=1e-5)
    assert sum(len(i.value) for i in at.main.get("image")) == 1 + 5 * len(VALID)


def test_neighbours_suspects_list_the_most_disagreeing_samples(app, runs_root):
    at = app("neighbours")
    ps = pd.read_parquet(runs_root / "arcface" / "per_sample.parquet")
    top = ps.sort_values("label_disagreement", ascending=False, kind="stable")
    options = at.selectbox(key="nb_suspect").options
    assert len(options) == 24
    worst = top["label_disagreement"].iloc[0]
    assert set(top[top["label_disagreement"] == worst]["sample_id"]) >= set(
        o.split(" · ")[0] for o in options[:1]
    )


def test_neighbours_unknown_id_is_an_error(app):
    at = app("neighbours", setup=lambda at: at.session_state.__setitem__("nb_mode", "id"))
    at.text_input(key="nb_id").input("nope").run()
    assert "No sample 'nope'" in at.error[0].value
