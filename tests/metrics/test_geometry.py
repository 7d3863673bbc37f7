"""Geometry metrics against brute force (numpy/scipy) and scikit-learn."""

import numpy as np
import pytest
from scipy.spatial.distance import cdist, pdist, squareform
from sklearn import metrics as skm

from ferembed.metrics.geometry import (
    alignment,
    calinski_harabasz,
    class_centroids,
    compactness,
    davies_bouldin,
    distance_histograms,
    distance_to_centroid,
    fisher_ratio,
    geometry_bootstrap,
    paired_geometry_bootstrap,
    resampled_geometry,
    separation,
    uniformity,
)


def _unit(x):
    x = np.asarray(x, dtype=np.float64)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _brute_centroid_dist(x, y, k, distance):
    """Per-sample distance to own centroid, computed independently with scipy."""
    x = np.asarray(x, np.float64)
    out = np.empty(len(y))
    for c in range(k):
        m = y == c
        if not m.any():
            continue
        if distance == "cosine":
            u = _unit(x[m])
            out[m] = cdist(u, u.mean(0, keepdims=True), "cosine")[:, 0]
        else:
            out[m] = cdist(x[m], x[m].mean(0, keepdims=True))[:, 0]
    return out


def _brute_intra_pairwise(x, y, k, distance):
    out = np.full(k, np.nan)
    for c in range(k):
        m = y == c
        if m.sum() > 1:
            out[c] = pdist(np.asarray(x[m], np.float64), distance).mean()
    return out


def test_class_centroids_match_group_means_and_absent_class_is_nan(blobs_small):
    x, y = blobs_small.x, blobs_small.y
    cent = class_centroids(x, y, 6)  # class 5 has no samples
    for c in range(5):
        np.testing.assert_allclose(cent[c], x[y == c].astype(np.float64).mean(0), atol=1e-6)
    assert np.isnan(cent[5]).all()


@pytest.mark.parametrize("distance", ["cosine", "euclidean"])
@pytest.mark.parametrize("fixture", ["blobs_small", "blobs_imbalanced", "blobs_ties"])
def test_compactness_matches_brute_force(fixture, distance, request):
    b = request.getfixturevalue(fixture)
    k = int(b.y.max()) + 1
    res = compactness(b.x, b.y, distance=distance)
    d = _brute_centroid_dist(b.x, b.y, k, distance)
    np.testing.assert_allclose(distance_to_centroid(b.x, b.y, distance=distance), d, atol=1e-5)
    for c in range(k):
        dc = d[b.y == c]
        assert res["n"][c] == dc.size
        np.testing.assert_allclose(res["mean"][c], dc.mean(), atol=1e-5)
        np.testing.assert_allclose(res["median"][c], np.median(dc), atol=1e-5)
        np.testing.assert_allclose(res["p90"][c], np.percentile(dc, 90), atol=1e-5)
    brute = _brute_intra_pairwise(b.x, b.y, k, distance)
    np.testing.assert_allclose(res["intra_pairwise_mean"], brute, rtol=1e-5, atol=1e-6)
    assert res["intra_pairwise_exact"].all()


def test_compactness_singleton_and_absent_classes(blobs_ties):
    res = compactness(blobs_ties.x, blobs_ties.y, num_classes=6)
    # class 4 is a single sample: it is its own centroid, no pairs
    assert res["n"][4] == 1 and res["mean"][4] == pytest.approx(0, abs=1e-6)
    assert np.isnan(res["intra_pairwise_mean"][4])
    # class 5 never occurs
    assert res["n"][5] == 0 and np.isnan(res["mean"][5]) and np.isnan(res["p90"][5])


def test_compactness_euclidean_subsamples_big_classes(blobs_large):
    x, y = blobs_large.x, blobs_large.y
    res = compactness(x, y, distance="euclidean", max_class_size=500, seed=1)
    sizes = np.bincount(y)
    np.testing.assert_array_equal(res["intra_pairwise_exact"], sizes <= 500)
    brute = _brute_intra_pairwise(x, y, 7, "euclidean")
    # a U-statistic on 500 members: unbiased, and close for Gaussian blobs
    np.testing.assert_allclose(res["intra_pairwise_mean"], brute, rtol=0.02)
    np.testing.assert_allclose(
        res["intra_pairwise_mean"][sizes <= 500], brute[sizes <= 500], rtol=1e-5
    )


def test_cosine_intra_pairwise_hand_example():
    # class 0: unit vectors at 0 and 90 degrees -> cosine distance 1; class 1: two equal -> 0
    x = np.array([[1, 0], [0, 1], [2, 2], [3, 3]], np.float32)
    res = compactness(x, np.array([0, 0, 1, 1]))
    np.testing.assert_allclose(res["intra_pairwise_mean"], [1.0, 0.0], atol=1e-7)
    # centroid of class 0 points at 45 degrees: distance 1 - cos(45) for both
    np.testing.assert_allclose(res["mean"][0], 1 - np.sqrt(0.5), atol=1e-7)


@pytest.mark.parametrize("distance", ["cosine", "euclidean"])
def test_separation_matches_brute_force(blobs_imbalanced, distance):
    x, y = blobs_imbalanced.x, blobs_imbalanced.y
    k = 8  # one absent class (7)
    res = separation(x, y, distance=distance, num_classes=k)
    xs = _unit(x) if distance == "cosine" else np.asarray(x, np.float64)
    cent = np.stack([xs[y == c].mean(0) for c in range(7)])
    dm = cdist(cent, cent, "cosine" if distance == "cosine" else "euclidean")
    np.testing.assert_allclose(res["centroid_distances"][:7, :7], dm, atol=1e-6)
    assert np.isnan(res["centroid_distances"][7]).all()
    off = dm + np.diag(np.full(7, np.inf))
    np.testing.assert_array_equal(res["nearest_class"][:7], off.argmin(1))
    np.testing.assert_allclose(res["nearest_distance"][:7], off.min(1), atol=1e-6)
    radius = np.array([_brute_centroid_dist(x, y, 7, distance)[y == c].mean() for c in range(7)])
    np.testing.assert_allclose(res["margin"][:7], off.min(1) - radius, atol=1e-5)
    np.testing.assert_allclose(
        res["gap"][:7], off.min(1) - radius - radius[off.argmin(1)], atol=1e-5
    )
    assert res["nearest_class"][7] == -1 and np.isnan(res["margin"][7])


def _scatter(x, y):
    x = np.asarray(x, np.float64)
    mu = x.mean(0)
    sw = sum(((x[y == c] - x[y == c].mean(0)) ** 2).sum() for c in np.unique(y))
    sb = sum((y == c).sum() * ((x[y == c].mean(0) - mu) ** 2).sum() for c in np.unique(y))
    return sw, sb


@pytest.mark.parametrize("fixture", ["blobs_small", "blobs_imbalanced", "blobs_ties"])
def test_fisher_db_ch_match_references(fixture, request):
    b = request.getfixturevalue(fixture)
    x64 = np.asarray(b.x, np.float64)
    sw, sb = _scatter(b.x, b.y)
    assert fisher_ratio(b.x, b.y) == pytest.approx(sb / sw, rel=1e-6)
    assert davies_bouldin(b.x, b.y) == pytest.approx(skm.davies_bouldin_score(x64, b.y), abs=1e-4)
    ch = skm.calinski_harabasz_score(x64, b.y)
    assert calinski_harabasz(b.x, b.y) == pytest.approx(ch, rel=1e-5)
    # the documented identity fisher = CH (K - 1) / (N - K)
    k, n = len(np.unique(b.y)), len(b.y)
    assert fisher_ratio(b.x, b.y) == pytest.approx(ch * (k - 1) / (n - k), rel=1e-5)


def test_db_ch_with_labels_that_skip_values_match_sklearn(blobs_small):
    y = blobs_small.y * 2  # classes 0, 2, 4, 6, 8: odd labels absent
    x64 = np.asarray(blobs_small.x, np.float64)
    assert davies_bouldin(blobs_small.x, y) == pytest.approx(
        skm.davies_bouldin_score(x64, y), abs=1e-4
    )
    assert calinski_harabasz(blobs_small.x, y) == pytest.approx(
        skm.calinski_harabasz_score(x64, y), rel=1e-5
    )


def test_degenerate_scatter_follows_sklearn():
    x = np.array([[0, 0], [0, 0], [1, 1], [1, 1]], np.float32)
    y = np.array([0, 0, 1, 1])
    assert calinski_harabasz(x, y) == skm.calinski_harabasz_score(x, y) == 1.0
    assert davies_bouldin(x, y) == skm.davies_bouldin_score(x, y) == 0.0
    assert fisher_ratio(x, y) == np.inf


@pytest.mark.parametrize("fn", [davies_bouldin, calinski_harabasz, fisher_ratio])
def test_single_class_raises(fn, blobs_single_class):
    with pytest.raises(ValueError, match="2"):
        fn(blobs_single_class.x, blobs_single_class.y)


@pytest.mark.parametrize("fn", [davies_bouldin, calinski_harabasz])
def test_one_sample_per_class_raises_like_sklearn(fn):
    x = np.eye(4, dtype=np.float32)
    with pytest.raises(ValueError, match="n_samples - 1"):
        fn(x, np.arange(4))
    with pytest.raises(ValueError):
        skm.davies_bouldin_score(x, np.arange(4))


def test_separation_single_class_raises(blobs_single_class):
    with pytest.raises(ValueError, match="at least 2 classes"):
        separation(blobs_single_class.x, blobs_single_class.y)


@pytest.mark.parametrize("distance", ["cosine", "euclidean"])
def test_distance_histograms_exact_match_brute_force(blobs_ties, distance):
    x, y = blobs_ties.x, blobs_ties.y
    res = distance_histograms(x, y, distance=distance, bins=20)
    xs = _unit(x) if distance == "cosine" else np.asarray(x, np.float64)
    d = squareform(pdist(xs, distance))
    iu = np.triu_indices(len(y), 1)
    same = (y[:, None] == y[None, :])[iu]
    dd = d[iu]
    hi = 2.0 if distance == "cosine" else dd.max()
    np.testing.assert_allclose(res["bin_edges"], np.linspace(0, hi, 21), rtol=1e-6)
    hin = np.histogram(dd[same], bins=res["bin_edges"])[0] / same.sum()
    hout = np.histogram(dd[~same], bins=res["bin_edges"])[0] / (~same).sum()
    # float32 rounding may move a pair lying on a bin edge: allow one pair per bin
    np.testing.assert_allclose(res["intra"], hin, atol=1.01 / same.sum())
    np.testing.assert_allclose(res["inter"], hout, atol=1.01 / (~same).sum())
    assert res["overlap"] == pytest.approx(np.minimum(hin, hout).sum())
    assert res["mode"] == "exact" and res["n_intra"] == same.sum()


def test_distance_histograms_overlap_hand_example():
    # 1-D points: class 0 at 0 and 1, class 1 at 10 -> intra {1}, inter {9, 10}
    x = np.array([[0.0], [1.0], [10.0]], np.float32)
    res = distance_histograms(x, np.array([0, 0, 1]), distance="euclidean", bins=10)
    assert res["overlap"] == 0.0
    # edges 0, 1, ..., 10: distance 1 opens bin 1; 9 and 10 share the last bin [9, 10]
    assert res["intra"][1] == 1.0 and res["inter"][-1] == 1.0
    # identical distributions overlap fully
    x = np.array([[0.0], [1.0], [0.0], [1.0]], np.float32)
    res = distance_histograms(x, np.array([0, 0, 1, 1]), distance="euclidean", bins=4)
    # intra pairs: (0,1),(0,1) -> distance 1, 1; inter: 0,1,1,0 -> half 0, half 1
    assert res["overlap"] == pytest.approx(0.5)


def test_distance_histograms_sampled_close_to_exact(blobs_large):
    x, y = blobs_large.x, blobs_large.y
    res = distance_histograms(x, y, bins=20, max_pairs=100_000, seed=3)
    # a 447-row subset: 447 * 446 / 2 = 99681 <= 100000 < 448 * 447 / 2
    assert res["mode"] == "sampled(n=447, seed=3)"
    assert res["n_intra"] + res["n_inter"] == 99_681
    sub = np.random.default_rng(0).choice(len(y), 2500, replace=False)
    ref = distance_histograms(x[sub], y[sub], bins=20, max_pairs=10**7)
    assert ref["mode"] == "exact"
    assert np.abs(res["intra"] - ref["intra"]).sum() < 0.05
    assert np.abs(res["inter"] - ref["inter"]).sum() < 0.05
    again = distance_histograms(x, y, bins=20, max_pairs=100_000, seed=3)
    np.testing.assert_array_equal(res["intra"], again["intra"])


def _brute_alignment(x, y, alpha):
    u = _unit(x)
    vals = []
    for c in np.unique(y):
        if (y == c).sum() > 1:
            vals.append(pdist(u[y == c]) ** alpha)
    return np.concatenate(vals).mean()


@pytest.mark.parametrize("alpha", [2, 1, 0.5])
def test_alignment_matches_brute_force(blobs_ties, alpha):
    assert alignment(blobs_ties.x, blobs_ties.y, alpha=alpha) == pytest.approx(
        _brute_alignment(blobs_ties.x, blobs_ties.y, alpha), rel=1e-6, abs=1e-9
    )


def test_uniformity_matches_brute_force(blobs_small):
    u = _unit(blobs_small.x)
    sq = pdist(u, "sqeuclidean")
    expected = np.log(np.mean(np.exp(-2 * sq)))
    assert uniformity(blobs_small.x) == pytest.approx(expected, rel=1e-7)
    assert uniformity(blobs_small.x, t=3) == pytest.approx(np.log(np.mean(np.exp(-3 * sq))))
    sampled = uniformity(blobs_small.x, max_pairs=50_000, seed=1)
    assert sampled == pytest.approx(expected, abs=0.02)


def test_alignment_needs_a_positive_pair():
    with pytest.raises(ValueError, match="at least 2 samples"):
        alignment(np.eye(3, dtype=np.float32), np.arange(3))


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda x, y: compactness(x, y, distance="manhattan"), "distance must be one of"),
        (lambda x, y: compactness(x, y, num_classes=2), r"labels must lie in 0\.\.1"),
        (lambda x, y: compactness(x, y, num_classes=0), "num_classes must be >= 1"),
        (lambda x, y: compactness(x, y, max_class_size=1), "max_class_size"),
        (lambda x, y: distance_histograms(x, y, bins=0), "bins must be"),
        (lambda x, y: distance_histograms(x, y, max_pairs=0), "max_pairs must be"),
        (lambda x, y: alignment(x, y, alpha=0), "alpha must be"),
        (lambda x, y: uniformity(x, t=-1), "t must be"),
        (lambda x, y: separation(x, y[:-1]), "labels must have shape"),
        (lambda x, y: fisher_ratio(x, y - 1), "labels must lie in"),
    ],
)
def test_bad_parameters_raise(blobs_small, call, match):
    with pytest.raises(ValueError, match=match):
        call(blobs_small.x, blobs_small.y)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
@pytest.mark.parametrize(
    "fn",
    [
        compactness,
        separation,
        fisher_ratio,
        davies_bouldin,
        calinski_harabasz,
        alignment,
        distance_histograms,
    ],
)
def test_non_finite_row_is_named(blobs_small, fn, bad):
    x = blobs_small.x.copy()
    x[17, 3] = bad
    with pytest.raises(ValueError, match="first at row 17"):
        fn(x, blobs_small.y)


def test_distance_histograms_subset_without_a_pair_kind_raises():
    x = np.array([[0.0], [1.0], [5.0], [6.0]], np.float32)
    with pytest.raises(ValueError, match="raise max_pairs"):
        distance_histograms(x, np.array([0, 0, 1, 1]), distance="euclidean", max_pairs=1)


def _brute_geometry(x, y, distance):
    """compactness / class_separation / Fisher of (x, y), computed independently with scipy."""
    x = np.asarray(x, np.float64)
    classes = np.unique(y)
    xd = _unit(x) if distance == "cosine" else x
    cents = np.stack([xd[y == c].mean(0) for c in classes])
    metric = "cosine" if distance == "cosine" else "euclidean"
    own = cdist(xd, cents, metric=metric)[np.arange(len(y)), np.searchsorted(classes, y)]
    dm = cdist(cents, cents, metric=metric)
    np.fill_diagonal(dm, np.inf)
    mu = x.mean(0)
    gm = np.stack([x[y == c].mean(0) for c in classes])
    within = sum(((x[y == c] - gm[i]) ** 2).sum() for i, c in enumerate(classes))
    between = sum((y == c).sum() * ((gm[i] - mu) ** 2).sum() for i, c in enumerate(classes))
    return own.mean(), dm.min(1).mean(), between / within


@pytest.mark.parametrize("distance", ["cosine", "euclidean"])
def test_resampled_geometry_equals_the_metrics_of_the_resample(distance):
    rng = np.random.default_rng(3)
    y = np.repeat(np.arange(4), [30, 20, 25, 5])
    x = (rng.normal(size=(80, 6)) + 3 * np.eye(6)[y]).astype(
        np.float32
    )  # what check_embeddings keeps
    idx = np.concatenate([rng.choice(np.flatnonzero(y == c), (y == c).sum()) for c in range(4)])
    w = np.stack([np.ones(80), np.bincount(idx, minlength=80)])
    got = resampled_geometry(x, y, w, distance=distance)
    for b, (xx, yy) in enumerate([(x, y), (x[idx], y[idx])]):
        want = _brute_geometry(xx, yy, distance)
        assert got["compactness"][b] == pytest.approx(want[0], abs=1e-12)
        assert got["class_separation"][b] == pytest.approx(want[1], abs=1e-12)
        assert got["fisher_ratio"][b] == pytest.approx(want[2], rel=1e-12)
    # the plain functions agree with the unweighted row
    assert got["fisher_ratio"][0] == pytest.approx(fisher_ratio(x, y), rel=1e-12)
    assert got["compactness"][0] == pytest.approx(
        distance_to_centroid(x, y, distance=distance).mean(), abs=1e-12
    )


def test_resampled_geometry_rejects_a_class_with_no_weight():
    x = np.eye(4)
    y = np.array([0, 0, 1, 1])
    with pytest.raises(ValueError, match="class 1"):
        resampled_geometry(x, y, np.array([[1.0, 1.0, 0.0, 0.0]]))


def test_geometry_bootstrap_brackets_the_estimate_and_narrows_with_n():
    rng = np.random.default_rng(0)

    def data(n):
        y = rng.integers(0, 3, n)
        return rng.normal(size=(n, 8)) + 2 * np.eye(8)[y], y

    x, y = data(150)
    ci = geometry_bootstrap(x, y, n_boot=400, seed=1)
    point = _brute_geometry(x, y, "cosine")
    for key, value in zip(("compactness", "class_separation", "fisher_ratio"), point, strict=True):
        lo, hi = ci[key]
        assert lo < value < hi
    assert geometry_bootstrap(x, y, n_boot=400, seed=1) == ci  # seeded
    x2, y2 = data(2400)
    ci2 = geometry_bootstrap(x2, y2, n_boot=400, seed=1)
    for key in ci:
        assert ci2[key][1] - ci2[key][0] < 0.5 * (ci[key][1] - ci[key][0])


def test_paired_geometry_bootstrap_detects_a_tighter_embedding_and_not_a_rescaled_one():
    rng = np.random.default_rng(5)
    y = rng.integers(0, 4, 400)
    centers = 3 * np.eye(8)[:4]
    noise = rng.normal(size=(400, 8))
    xa = centers[y] + noise
    xb = centers[y] + 0.5 * noise  # same classes, half the spread
    out = paired_geometry_bootstrap(xa, xb, y, n_boot=300, seed=2)
    want_a, want_b = (
        _brute_geometry(xa.astype(np.float32), y, "cosine"),
        _brute_geometry(xb.astype(np.float32), y, "cosine"),
    )
    for i, key in enumerate(("compactness", "class_separation", "fisher_ratio")):
        assert out[key]["a"] == pytest.approx(want_a[i], rel=1e-9)
        assert out[key]["b"] == pytest.approx(want_b[i], rel=1e-9)
        assert out[key]["diff"] == pytest.approx(want_b[i] - want_a[i], rel=1e-9)
    assert out["compactness"]["ci_high"] < 0  # B is significantly more compact
    assert out["fisher_ratio"]["ci_low"] > 0
    # the same embedding scaled: Fisher and cosine geometry unchanged, the paired CI is [0, 0]
    same = paired_geometry_bootstrap(xa, 2 * xa, y, n_boot=50, seed=2, distance="cosine")
    for key in same:
        assert same[key]["diff"] == pytest.approx(0, abs=1e-9)
        assert same[key]["ci_low"] == pytest.approx(0, abs=1e-9)
        assert same[key]["ci_high"] == pytest.approx(0, abs=1e-9)


@pytest.mark.parametrize("distance", ["cosine", "euclidean"])
@pytest.mark.parametrize("unit", [False, True])
def test_geometry_bootstrap_equals_resampling_the_rows(distance, unit):
    # The batched float32 products give the plain bootstrap: the same class-stratified draws
    # (rng.integers per class, the seed's stream), each resample's rows scored by scipy.
    from ferembed.metrics.bootstrap import recentred_interval

    rng = np.random.default_rng(11)
    y = np.repeat(np.arange(3), [25, 15, 20])
    x = rng.normal(size=(60, 5)) + 2 * np.eye(5)[y] + 4.0  # far from the origin: tiny spreads
    if unit:  # a cosine run's rows, as evaluate passes them
        x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    n_boot = 40
    got = geometry_bootstrap(x, y, distance=distance, n_boot=n_boot, seed=4)
    draws = np.random.default_rng(4)
    members = [np.flatnonzero(y == c) for c in range(3)]
    picks = [m[draws.integers(0, m.size, size=(n_boot, m.size))] for m in members]
    boot = np.array(
        [_brute_geometry(x[np.concatenate([p[b] for p in picks])], np.sort(y), distance)
         for b in range(n_boot)]
    )  # fmt: skip
    point = _brute_geometry(np.asarray(x, np.float32), y, distance)
    for i, key in enumerate(("compactness", "class_separation", "fisher_ratio")):
        want = recentred_interval(boot[:, i], point[i], 0.05)
        assert got[key] == pytest.approx(want, rel=1e-6, abs=1e-9)
