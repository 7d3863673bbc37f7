"""The Dynamics page: a series logged with ``ferembed.log_run`` plotted against step, in AppTest
and in a real browser. Expected values are read from each step's metrics.json."""

from __future__ import annotations

import json

import numpy as np
import pytest
from dashboard_synth import make_split
from test_browser import (  # noqa: F401  (fixtures: pytest finds them by name here)
    _assert_clean,
    _open,
    browser,
    server,
    shots,
    sync_api,
)
from test_pages import chart

import ferembed
from ferembed.data.synthfer import CLASS_NAMES

N = 140
STEPS = (0, 5, 10)


@pytest.fixture(scope="module")
def runs_root(tmp_path_factory):
    """A runs root with two series: ``center`` (evaluated) and ``sub/plain`` (not yet)."""
    from ferembed.runs import evaluate_run

    root = tmp_path_factory.mktemp("dyn") / "runs"
    split = make_split(N)
    y = split["labels"]
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(len(CLASS_NAMES), 16))
    for name, evaluate in (("center", True), ("sub/plain", False)):
        for i, step in enumerate(STEPS):
            x = centres[y] + rng.normal(scale=2.0 / (i + 1), size=(N, 16))
            path = ferembed.log_run(
                root / name, x.astype(np.float32), y, class_names=CLASS_NAMES,
                sample_ids=split["ids"].tolist(), logits=x[:, : len(CLASS_NAMES)],
                images=split["thumbs"], step=step, name=name.split("/")[-1],
            )  # fmt: skip
            if evaluate:
                evaluate_run(path)
    return root


def _series_values(fig: dict, series: str) -> dict[str, list[float]]:
    """The plotted values of one series per subplot (x axis name -> y values)."""
    return {t.get("xaxis", "x"): t["y"] for t in fig["data"] if t["name"] == series}


def test_dynamics_plots_the_step_metrics(app, runs_root):
    at = app("dynamics")
    assert at.title[0].value == "Dynamics"
    assert at.multiselect(key="dyn_series").value == ["center", "sub/plain"]
    fig = chart(at, "dyn_metrics")
    titles = [a["text"] for a in fig["layout"]["annotations"]]
    assert titles == ["Compactness ↓", "Separation ↑", "Fisher ↑", "P@1 ↑", "MAP@R ↑", "Acc ↑"]
    metrics = [
        json.loads((runs_root / "center" / f"step-{s:06d}" / "metrics.json").read_text())
        for s in STEPS
    ]
    got = _series_values(fig, "center")
    keys = ("compactness", "class_separation", "fisher_ratio", "precision_at_1", "map_at_r")
    for axis, key in zip(("x", "x2", "x3", "x4", "x5", "x6"), (*keys, "accuracy"), strict=True):
        np.testing.assert_allclose(got[axis], [m[key] for m in metrics])
    p1 = next(t for t in fig["data"] if t["name"] == "center" and t.get("xaxis") == "x4")
    assert p1["x"] == list(STEPS)
    upper = [m["ci"]["precision_at_1"][1] - m["precision_at_1"] for m in metrics]
    np.testing.assert_allclose(p1["error_y"]["array"], upper)
    # Less noise at later steps: P@1 rises over the series.
    assert got["x4"][0] < got["x4"][-1]


def test_unevaluated_steps_are_computed_on_request(app, runs_root):
    at = app("dynamics")
    assert any("No metrics yet" in i.value for i in at.info)
    at.button(key="dyn_compute").click().run()
    assert not at.exception
    for s in STEPS:
        assert (runs_root / "sub" / "plain" / f"step-{s:06d}" / "metrics.json").is_file()
    fig = chart(at, "dyn_metrics")
    assert len(_series_values(fig, "plain")["x4"]) == len(STEPS)


def test_projection_follows_the_chosen_step(app):
    at = app("dynamics")
    fig = chart(at, "dyn_projection")
    assert [a["text"] for a in fig["layout"]["annotations"]] == [
        "center: step 10",
        "plain: step 10",
    ]
    at.select_slider(key="dyn_step").set_value(5).run()
    fig = chart(at, "dyn_projection")
    assert [a["text"] for a in fig["layout"]["annotations"]] == ["center: step 5", "plain: step 5"]
    assert sum(len(t["x"]) for t in fig["data"]) == 2 * N  # every sample of both series


def test_no_series_says_how_to_log_one(app, tmp_path):
    (tmp_path / "empty").mkdir()
    at = app("dynamics", root=tmp_path / "empty")
    assert "ferembed.log_run" in at.info[0].value


@pytest.mark.browser
def test_dynamics_page_in_chromium(browser, server, shots):  # noqa: F811
    page = browser.new_page(viewport={"width": 1400, "height": 2000})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    _open(page, f"{server}/dynamics")
    _assert_clean(page, errors, "dynamics")
    assert page.locator("h1").first.inner_text().strip() == "Dynamics"
    assert page.locator(".js-plotly-plot").count() >= 2
    body = page.locator('[data-testid="stMain"]').inner_text()
    assert "Projection at a step" in body
    page.screenshot(path=str(shots / "9-dynamics.png"), full_page=True)
    page.close()
