"""AppTest of the Compare and Export pages, and of what every page does with malformed runs.

Expected values come from the runs' files or are recomputed here, never from the dashboard's own
helpers (split from test_pages.py).
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest
from conftest import APP, REPO, VALID
from page_views import chart, metrics_of, pca, tables_with, texts

from ferembed.runs import load_run

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
    at = app(page, setup=pca)
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
        pca(at)
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
