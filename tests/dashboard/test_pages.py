"""AppTest of every dashboard page, asserting on what the page shows.

Expected values come from the runs' files (metrics.json, logits, embeddings) or are recomputed
here with numpy, never from the dashboard's own helpers.
"""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest
from conftest import APP, BROKEN, REPO, VALID, N

from ferembed.runs import load_run


def metrics_of(root, name) -> dict:
    return json.loads((root / name / "metrics.json").read_text())


def _decode(obj):
    """Plotly's JSON with its typed arrays (``{"dtype", "bdata", "shape"}``) decoded to lists."""
    if isinstance(obj, dict):
        if "bdata" in obj and "dtype" in obj:
            a = np.frombuffer(base64.b64decode(obj["bdata"]), dtype=np.dtype(obj["dtype"]))
            if "shape" in obj:
                a = a.reshape([int(v) for v in str(obj["shape"]).split(",")])
            return a.tolist()
        return {k: _decode(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_decode(v) for v in obj]
    return obj


def chart(at, key) -> dict:
    """The Plotly figure (as plain JSON) of the chart with this key."""
    for el in at.main.get("plotly_chart"):
        if el.key == key:
            return _decode(json.loads(el.proto.spec))
    raise AssertionError(f"no chart {key!r}; have {[e.key for e in at.main.get('plotly_chart')]}")


def texts(at) -> str:
    return "\n".join(str(m.value) for m in at.markdown)


def tables_with(at, *columns: str) -> list[pd.DataFrame]:
    """The page's tables (in page order) that have all these columns."""
    frames = [d.value for d in at.dataframe]
    found = [f for f in frames if set(columns) <= set(f.columns)]
    assert found, f"no table with {columns}; have {[list(f.columns) for f in frames]}"
    return found


# ---------------------------------------------------------------------------------------------
# App shell and Runs page
# ---------------------------------------------------------------------------------------------


def test_sidebar_selects_valid_runs_and_flags_malformed(app):
    from conftest import DEFAULT

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


def _pca(at):
    at.session_state["proj_method"] = "pca"


def test_projection_colours_by_label_and_aligns(app, runs_root):
    at = app("projection", setup=_pca)
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
        _pca(at)
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
    at = app("projection", setup=_pca)
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
        _pca(at)
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


# ---------------------------------------------------------------------------------------------
# Compare
# ---------------------------------------------------------------------------------------------


def test_compare_shows_metrics_and_flipped_samples(app, runs_root):
    at = app("compare")
    # The softmax run is the default baseline A; the first other run (arcface) is a B.
    assert at.selectbox(key="cmp_a").value == 1  # arcface, softmax, supcon
    a, b = load_run(runs_root / "softmax"), load_run(runs_root / "arcface")
    ok_a = np.asarray(a.logits).argmax(1) == a.labels
    ok_b = np.asarray(b.logits).argmax(1) == b.labels
    to_correct, to_wrong = int((~ok_a & ok_b).sum()), int((ok_a & ~ok_b).sum())
    md = texts(at)
    assert f"**{to_correct} wrong in softmax → correct in arcface**" in md
    assert f"**{to_wrong} correct in softmax → wrong in arcface**" in md
    table = tables_with(at, "metric", "B - A")[0]
    acc = table.set_index("metric").loc["accuracy"]
    assert acc["A"] == pytest.approx(ok_a.mean()) and acc["B"] == pytest.approx(ok_b.mean())
    assert acc["B - A"] == pytest.approx(ok_b.mean() - ok_a.mean())
    ids = a.samples["sample_id"].to_numpy()
    expected = [ids[m][:40].tolist() for m in (~ok_a & ok_b, ok_a & ~ok_b) if m.any()]
    assert expected, "the synthetic runs should differ on some samples"
    flips = tables_with(at, "face", "pred A")
    assert [f["sample_id"].tolist() for f in flips] == expected
    assert all(f["face"].str.startswith("data:image/png;base64,").all() for f in flips)
    headline = tables_with(at, "metric", "softmax")[0].set_index("metric")
    m = metrics_of(runs_root, "softmax")
    assert headline.loc["P@1", "softmax"].startswith(f"{m['precision_at_1']:.4f} [")


def test_compare_of_large_runs_waits_for_a_click(app, tmp_path, monkeypatch):
    from dashboard_synth import make_runs

    from dashboard import _data

    make_runs(tmp_path, 120, runs=(("a", "softmax", 0.3, True), ("b", "arcface", 0.2, True)))
    monkeypatch.setattr(_data, "COMPARE_CONFIRM_N", 100)  # "large" = more than 100 samples
    at = app("compare", root=tmp_path)
    assert "several minutes" in at.info[-1].value
    assert not list((tmp_path / "a" / "cache").glob("compare-*.json"))
    at.button(key="cmp_go_1").click().run()
    assert not at.exception
    assert "**120 paired samples**" in texts(at)
    assert len(list((tmp_path / "a" / "cache").glob("compare-*.json"))) == 1
    at.run()  # cached now: shown without asking again
    assert "**120 paired samples**" in texts(at)
    assert not [b for b in at.button if b.key == "cmp_go_1"]


def test_compare_needs_two_runs(app):
    def setup(at):
        at.sidebar.multiselect[0].set_value(["arcface"])

    at = app("compare", setup=setup)
    assert "at least 2 runs" in at.info[0].value


# ---------------------------------------------------------------------------------------------
# Export
# ---------------------------------------------------------------------------------------------


def test_export_downloads_hold_the_metrics(app, runs_root, monkeypatch):
    from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage

    files: dict[str, bytes] = {}
    original = MemoryMediaFileStorage.load_and_get_id

    def spy(self, path_or_data, mimetype, kind, filename=None):
        files[filename] = path_or_data
        return original(self, path_or_data, mimetype, kind, filename)

    monkeypatch.setattr(MemoryMediaFileStorage, "load_and_get_id", spy)
    at = app("export")
    assert [d.label for d in at.download_button] == [
        "Metrics (CSV, long table)",
        "Metrics (JSON)",
        "Metrics (Parquet, long table)",
        "HTML report",
    ]
    long_csv = pd.read_csv(io.BytesIO(files["ferembed-metrics.csv"]))
    long_csv["class"] = long_csv["class"].fillna("")
    assert sorted(set(long_csv["run"])) == list(VALID)
    p1 = long_csv[(long_csv["metric"] == "precision_at_1") & (long_csv["class"] == "")]
    for _, row in p1.iterrows():
        assert row["value"] == pytest.approx(metrics_of(runs_root, row["run"])["precision_at_1"])
    doc = json.loads(files["ferembed-metrics.json"])
    assert sorted(doc["metrics"]) == list(VALID)
    assert len(pd.read_parquet(io.BytesIO(files["ferembed-metrics.parquet"]))) == len(long_csv)
    html = files["report.html"].decode()
    assert "<html" in html.lower() and all(v in html for v in VALID)
    wide = tables_with(at, "run", "path", "precision_at_1")[0]
    assert sorted(wide["run"]) == list(VALID)


# ---------------------------------------------------------------------------------------------
# Every page, and no torch
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "page", ["runs", "geometry", "confusion", "projection", "neighbours", "compare", "export"]
)
def test_every_page_renders_with_malformed_runs_present(app, page):
    at = app(page, setup=_pca)
    assert not at.exception
    assert at.title[0].value == page.capitalize()
    assert not at.error


def test_no_run_selected_pages_say_so(app):
    at = app("geometry", setup=lambda at: at.sidebar.multiselect[0].set_value([]))
    assert "Select at least 1 run" in at.info[0].value


def test_missing_runs_root_is_an_error(monkeypatch):
    from streamlit.testing.v1 import AppTest

    monkeypatch.delenv("FEREMBED_RUNS", raising=False)
    at = AppTest.from_file(str(APP), default_timeout=60).run()
    assert "No runs root" in at.error[0].value


def test_dashboard_does_not_import_torch(runs_root):
    script = textwrap.dedent(
        f"""
        import os, sys
        os.environ["FEREMBED_RUNS"] = {str(runs_root)!r}
        from streamlit.testing.v1 import AppTest
        at = AppTest.from_file({str(APP)!r}, default_timeout=120)
        at.run()
        at.session_state["proj_method"] = "pca"
        for page in ("runs", "geometry", "confusion", "projection", "neighbours", "compare",
                     "export"):
            at.switch_page(f"views/{{page}}.py").run()
            assert not at.exception, (page, at.exception)
        import umap  # the projection's UMAP path must not pull torch in either
        print("TORCH" if "torch" in sys.modules else "NO-TORCH")
        """
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().splitlines()[-1] == "NO-TORCH"


def test_projection_colours_by_an_imported_runs_metadata_column(app, tmp_path):
    from ferembed.runs import make_samples, write_run

    rng = np.random.default_rng(0)
    y = np.arange(60) % 3
    x = (rng.normal(size=(3, 8))[y] * 3 + rng.normal(size=(60, 8))).astype(np.float32)
    source = np.where(np.arange(60) < 20, "lab", "web")
    samples = make_samples(y, ["angry", "happy", "sad"]).assign(source=source)
    write_run(
        tmp_path / "imported",
        embeddings=x,
        samples=samples,
        class_names=["angry", "happy", "sad"],
    )

    def setup(at):
        _pca(at)
        at.session_state["proj_color"] = "meta:source"

    at = app("projection", setup=setup, root=tmp_path)
    assert not at.exception
    colour_by = next(s for s in at.selectbox if s.key == "proj_color")
    assert colour_by.options[-1] == "source"  # every non-schema column is a colouring
    fig = chart(at, "proj_chart")
    assert {t["name"] for t in fig["data"]} == {"lab", "web"}
    for trace in fig["data"]:
        _, rows = np.asarray(trace["customdata"]).T
        assert set(source[rows.astype(int)]) == {trace["name"]}
