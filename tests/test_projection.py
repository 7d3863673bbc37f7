"""ferembed.projection (arrays) and ferembed.runs.projection (runs): sampling, alignment, cache."""

from __future__ import annotations

import numpy as np
import pytest

from ferembed import projection as P
from ferembed.runs import load_run, make_samples, write_run
from ferembed.runs import projection as RP

CLASSES = ["a", "b", "c", "d"]


def _run(path, n=400, *, seed=0, order=None, dim=16):
    """A clustered run; ``order`` permutes the rows (same samples, other row order)."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(4), [n // 2, n // 4, n // 8, n - n // 2 - n // 4 - n // 8])
    ids = np.array([f"s{i:05d}" for i in range(n)])
    centres = rng.normal(size=(4, dim)) * 3
    x = (centres[labels] + rng.normal(size=(n, dim))).astype(np.float32)
    if order is not None:
        labels, ids, x = labels[order], ids[order], x[order]
    samples = make_samples(labels, CLASSES, sample_ids=ids.tolist())
    return load_run(write_run(path, embeddings=x, samples=samples, class_names=CLASSES))


# ---- sampling -------------------------------------------------------------------------------


def test_sample_rows_is_stratified_and_covers_every_class():
    labels = np.repeat(np.arange(4), [700, 200, 95, 5])
    ids = [f"id{i}" for i in range(labels.size)]
    rows = P.sample_rows(ids, labels, 100, seed=0)
    assert np.all(np.diff(rows) > 0)
    counts = np.bincount(labels[rows], minlength=4)
    # Proportional by largest remainder (70, 20, 9.5, 0.5 -> 70, 20, 10, 0), then >= 1 per class.
    assert counts.tolist() == [70, 20, 10, 1]


def test_sample_rows_follows_ids_not_row_order():
    labels = np.repeat(np.arange(3), 300)
    ids = np.array([f"x{i}" for i in range(labels.size)])
    perm = np.random.default_rng(1).permutation(labels.size)
    a = set(ids[P.sample_rows(ids.tolist(), labels, 90, seed=3)])
    b = set(ids[perm][P.sample_rows(ids[perm].tolist(), labels[perm], 90, seed=3)])
    assert a == b and len(a) == 90
    c = set(ids[P.sample_rows(ids.tolist(), labels, 90, seed=4)])
    assert c != a


def test_sample_rows_keeps_everything_when_small():
    np.testing.assert_array_equal(P.sample_rows(["a", "b"], np.array([0, 1]), 10), [0, 1])


@pytest.mark.parametrize("bad", [0, -5])
def test_sample_rows_rejects_bad_size(bad):
    with pytest.raises(ValueError, match="max_points"):
        P.sample_rows(["a"], np.array([0]), bad)


def test_sample_rows_rejects_length_mismatch():
    with pytest.raises(ValueError, match="sample_ids"):
        P.sample_rows(["a", "b"], np.array([0]), 1)


# ---- alignment --------------------------------------------------------------------------------


def test_procrustes_recovers_a_similarity_transform():
    rng = np.random.default_rng(0)
    src = rng.normal(size=(50, 2))
    theta = 0.7
    rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    refl = np.diag([1.0, -1.0])
    target = 2.5 * src @ rot @ refl + np.array([3.0, -1.0])
    s, r, t = P.procrustes(src, target)
    assert s == pytest.approx(2.5)
    np.testing.assert_allclose(r, rot @ refl, atol=1e-10)
    np.testing.assert_allclose(s * src @ r + t, target, atol=1e-10)


def test_procrustes_spread_scale_keeps_a_poor_match_at_the_target_size():
    rng = np.random.default_rng(1)
    target = rng.normal(size=(400, 2))
    source = 3.0 * (0.3 * target + rng.normal(size=(400, 2)))  # weakly related, 3x larger
    s_ls, r, t_ls = P.procrustes(source, target)
    s_sp, r_sp, t_sp = P.procrustes(source, target, scale="spread")
    np.testing.assert_allclose(r_sp, r)

    def rms(x):
        return np.sqrt(((x - x.mean(axis=0)) ** 2).sum(axis=1).mean())

    # by hand: the spread scale is the ratio of RMS radii; least squares shrinks below it
    assert s_sp == pytest.approx(rms(target) / rms(source))
    assert rms(s_sp * source @ r_sp + t_sp) == pytest.approx(rms(target))
    assert rms(s_ls * source @ r + t_ls) < 0.5 * rms(target)
    with pytest.raises(ValueError, match="scale must be"):
        P.procrustes(source, target, scale="lsq")


def test_procrustes_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="must be equal"):
        P.procrustes(np.zeros((3, 2)), np.zeros((4, 2)))


def test_align_projections_pairs_points_by_sample_id():
    rng = np.random.default_rng(0)
    ref = rng.normal(size=(30, 2)).astype(np.float32)
    ids = np.array([f"i{k}" for k in range(30)])
    perm = rng.permutation(30)[:20]  # B holds 20 of the samples, in another order
    moved = (ref[perm] @ np.array([[0.0, 1.0], [-1.0, 0.0]]) * 4 + 7).astype(np.float32)
    pa = P.Projection("A", np.arange(30), ref, 30)
    pb = P.Projection("B", np.arange(20), moved, 20)
    out = P.align_projections([pa, pb], [ids, ids[perm]])
    assert out[0] is pa and out[1].aligned_to == "A" and out[1].n_common == 20
    np.testing.assert_allclose(out[1].coords, ref[perm], atol=1e-5)


def test_align_leaves_unpaired_runs_alone():
    pa = P.Projection("A", np.arange(3), np.zeros((3, 2), np.float32), 3)
    pb = P.Projection("B", np.arange(3), np.ones((3, 2), np.float32), 3)
    out = P.align_projections([pa, pb], [["a", "b", "c"], ["x", "y", "z"]])
    assert out[1] is pb and out[1].aligned_to is None


# ---- projecting runs ----------------------------------------------------------------------------


def test_project_run_pca_is_cached_on_disk(tmp_path, monkeypatch):
    run = _run(tmp_path / "r")
    p = RP.project_run(run, method="pca", max_points=100)
    assert p.coords.shape == (p.n_shown, 2) and p.sampled and p.n_total == 400
    assert 100 <= p.n_shown <= 104
    path = RP.projection_cache_path(run, method="pca", max_points=100)
    assert path.is_file() and path.parent == run.cache_dir
    assert not list(run.cache_dir.glob("*.tmp"))

    def boom(*args, **kwargs):
        raise AssertionError("recomputed despite the cache")

    monkeypatch.setattr(P, "reduce_embeddings", boom)
    again = RP.project_run(run, method="pca", max_points=100)
    np.testing.assert_array_equal(again.indices, p.indices)
    np.testing.assert_array_equal(again.coords, p.coords)
    with pytest.raises(AssertionError, match="recomputed"):
        RP.project_run(run, method="pca", max_points=101)  # other parameters: other cache entry


def test_corrupt_cache_is_recomputed(tmp_path):
    run = _run(tmp_path / "r", n=60)
    p = RP.project_run(run, method="pca", dim=3)
    RP.projection_cache_path(run, method="pca", dim=3).write_bytes(b"garbage")
    q = RP.project_run(run, method="pca", dim=3)
    np.testing.assert_allclose(q.coords, p.coords)


def test_pca_projection_matches_numpy(tmp_path):
    run = _run(tmp_path / "r", n=80)
    p = RP.project_run(run, method="pca", cache=False)
    x = np.asarray(run.embeddings, float)
    x /= np.linalg.norm(x, axis=1, keepdims=True)  # cosine run: unit rows
    xc = x - x.mean(0)
    _, _, vt = np.linalg.svd(xc, full_matrices=False)
    expected = xc @ vt[:2].T
    # Components are defined up to sign.
    for j in range(2):
        sign = np.sign(expected[:, j] @ p.coords[:, j])
        np.testing.assert_allclose(p.coords[:, j], sign * expected[:, j], atol=1e-4)


def test_project_runs_aligns_the_same_samples_across_row_orders(tmp_path):
    a = _run(tmp_path / "a", n=200)
    b = _run(tmp_path / "b", n=200, order=np.random.default_rng(5).permutation(200))
    pa, pb = RP.project_runs([a, b], method="pca", max_points=80)
    ids_a = a.samples["sample_id"].to_numpy()[pa.indices]
    ids_b = b.samples["sample_id"].to_numpy()[pb.indices]
    assert set(ids_a) == set(ids_b)
    assert pb.aligned_to == "a" and pb.n_common == len(ids_a)
    # Same embeddings in another order: after alignment every face sits where it sat in A.
    pos_b = {sid: c for sid, c in zip(ids_b, pb.coords, strict=True)}
    np.testing.assert_allclose(np.stack([pos_b[s] for s in ids_a]), pa.coords, atol=1e-3)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"dim": 4}, "dim"),
        ({"method": "tsne"}, "method"),
        ({"max_points": 0}, "max_points"),
        ({"n_neighbors": 1}, "n_neighbors"),
        ({"min_dist": 2.0}, "min_dist"),
    ],
)
def test_project_run_rejects_bad_parameters(tmp_path, kwargs, match):
    run = _run(tmp_path / "r", n=20)
    with pytest.raises(ValueError, match=match):
        RP.project_run(run, **kwargs)


@pytest.mark.slow  # numba compiles UMAP on first use: ~15-40 s on two shared cores
def test_umap_projection_separates_classes(tmp_path):
    run = _run(tmp_path / "r", n=240)
    p = RP.project_run(run, method="umap", dim=2, max_points=1000)
    assert p.coords.shape == (240, 2) and np.isfinite(p.coords).all()
    labels = run.labels[p.indices]
    # Clusters this well separated stay separated: each point's nearest 2-D neighbour shares
    # its class almost always.
    d = ((p.coords[:, None] - p.coords[None]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    assert (labels[d.argmin(1)] == labels).mean() > 0.95
    assert RP.projection_cache_path(run, method="umap", dim=2, max_points=1000).is_file()
