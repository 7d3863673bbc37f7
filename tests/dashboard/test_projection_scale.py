"""Projection page at scale (issue #15): every point of a 30k run drawn with WebGL, and the
projection that `ferembed project` cached is the one the page reads."""

from __future__ import annotations

import numpy as np
import pytest
from page_views import chart, pca

from dashboard import _projection_fig
from ferembed import projection as P
from ferembed.cli import main
from ferembed.runs import load_run, make_samples, write_run
from ferembed.runs import projection as RP

N = 30_000
CLASSES = ["angry", "happy", "neutral", "sad"]


@pytest.fixture(scope="module")
def big_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("big")
    rng = np.random.default_rng(0)
    labels = rng.integers(0, len(CLASSES), N)
    x = (rng.normal(size=(len(CLASSES), 16))[labels] * 3 + rng.normal(size=(N, 16))).astype(
        np.float32
    )
    samples = make_samples(labels, CLASSES, sample_ids=[f"f{i:06d}" for i in range(N)])
    write_run(root / "big", embeddings=x, samples=samples, class_names=CLASSES)
    return root


def test_every_point_of_a_30k_run_is_drawn_with_webgl(app, big_root, monkeypatch):
    run = load_run(big_root / "big")
    assert main(["project", str(run.path), "--method", "pca", "--quiet"]) == 0

    def boom(*args, **kwargs):
        raise AssertionError("the page recomputed the projection ferembed project cached")

    monkeypatch.setattr(P, "reduce_embeddings", boom)
    at = app("projection", setup=pca, root=big_root)
    assert not at.exception, [e.message for e in at.exception]
    fig = chart(at, "proj_chart")
    assert {t["type"] for t in fig["data"]} == {"scattergl"}
    rows = np.concatenate([np.asarray(t["customdata"])[:, 1] for t in fig["data"]])
    assert len(rows) == N and np.array_equal(np.sort(rows), np.arange(N))
    # One trace per class, each holding exactly that class's points.
    for trace in fig["data"]:
        labels = run.labels[np.asarray(trace["customdata"])[:, 1].astype(int)]
        assert {CLASSES[c] for c in labels} == {trace["name"]}
    assert f"{N:,} points drawn" in " ".join(c.value for c in at.caption)
    assert not any("stratified sample" in i.value for i in at.info)


def test_fewer_points_drawn_are_a_sample_of_the_cached_projection(app, big_root, monkeypatch):
    run = load_run(big_root / "big")
    RP.project_run(run, method="pca", max_points=P.FULL_MAX_POINTS)  # cached by the test above

    def boom(*args, **kwargs):
        raise AssertionError("recomputed instead of sampling the cached projection")

    monkeypatch.setattr(P, "reduce_embeddings", boom)

    def setup(at):
        pca(at)
        at.session_state["proj_max"] = 3_000

    at = app("projection", setup=setup, root=big_root)
    assert not at.exception, [e.message for e in at.exception]
    fig = chart(at, "proj_chart")
    shown = sum(len(t["customdata"]) for t in fig["data"])
    assert 3_000 <= shown <= 3_000 + len(CLASSES)
    assert f"of {N:,} samples" in " ".join(i.value for i in at.info)


def test_tiles_keep_runs_apart_and_on_one_scale():
    a = np.array([[0.0, 0.0], [2.0, 1.0]], np.float32)
    b = np.array([[10.0, 10.0], [11.0, 14.0]], np.float32)
    offsets, (w, h), centres = _projection_fig.tile_offsets([a, b], columns=2)
    moved = [a + offsets[0], b + offsets[1]]
    # Each panel lands inside its own tile: x in [col * w, (col + 1) * w], y below 0.
    for col, m in enumerate(moved):
        assert (m[:, 0] > col * w).all() and (m[:, 0] < (col + 1) * w).all()
        assert (m[:, 1] < 0).all() and (m[:, 1] > -h).all()
    # One scale for all: a shift only, so distances within a panel are unchanged.
    assert np.allclose(np.diff(moved[1], axis=0), np.diff(b, axis=0))
    assert w >= 2.0 and h >= 4.0
