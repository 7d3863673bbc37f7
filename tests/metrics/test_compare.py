"""compare_runs on runs written to disk; McNemar against hand values and scipy."""

import numpy as np
import pytest
from scipy import stats
from sklearn import metrics as skm
from sklearn.neighbors import NearestNeighbors

from ferembed.metrics.bootstrap import bootstrap_statistic
from ferembed.metrics.compare import _paired_class_metric_cis, mcnemar_test
from ferembed.runs import make_samples, write_run
from ferembed.runs.compare import compare_runs, format_comparison

CLASSES = ["angry", "happy", "sad"]


def _write(path, x, y, ids, *, preds=None, perm=None, classes=CLASSES, distance="cosine"):
    """Write a run, optionally with head predictions and rows stored in a permuted order."""
    n = len(y)
    perm = np.arange(n) if perm is None else perm
    logits = None
    if preds is not None:
        logits = np.full((n, len(classes)), -1.0, np.float32)
        logits[np.arange(n), preds] = 1.0
        logits = logits[perm]
    samples = make_samples(np.asarray(y)[perm], classes, sample_ids=[ids[i] for i in perm])
    return write_run(
        path,
        embeddings=np.asarray(x)[perm],
        samples=samples,
        class_names=classes,
        logits=logits,
        distance=distance,
    )


@pytest.fixture
def pair(tmp_path):
    rng = np.random.default_rng(0)
    n = 90
    y = np.repeat(np.arange(3), 30)
    means = rng.normal(0, 1, (3, 8))
    xa = (means[y] + rng.normal(0, 0.9, (n, 8))).astype(np.float32)
    xb = (means[y] + rng.normal(0, 0.6, (n, 8))).astype(np.float32)
    ids = [f"img{i:03d}" for i in range(n)]
    pa = y.copy()
    pa[:20] = (y[:20] + 1) % 3  # A wrong on 0..19
    pb = y.copy()
    pb[15:20] = (y[15:20] + 2) % 3  # B wrong on 15..19 and 60..67
    pb[60:68] = (y[60:68] + 1) % 3
    perm = rng.permutation(n)
    ra = _write(tmp_path / "a", xa, y, ids, preds=pa)
    rb = _write(tmp_path / "b", xb, y, ids, preds=pb, perm=perm)
    return ra, rb, dict(y=y, xa=xa, xb=xb, ids=ids, pa=pa, pb=pb)


def test_mcnemar_hand_values():
    # exact: b=10, c=2 -> p = 2 P[Bin(12, .5) <= 2] = 2 (1 + 12 + 66) / 4096
    r = mcnemar_test(10, 2)
    assert r["method"] == "exact" and r["statistic"] == 2
    assert r["pvalue"] == pytest.approx(2 * 79 / 4096)
    assert r["pvalue"] == pytest.approx(stats.binomtest(2, 12, 0.5).pvalue)
    # chi-square with continuity: b=30, c=15 -> (15 - 1)^2 / 45
    r = mcnemar_test(30, 15)
    assert r["method"] == "chi2-cc" and r["statistic"] == pytest.approx(196 / 45)
    assert r["pvalue"] == pytest.approx(stats.chi2.sf(196 / 45, 1))
    assert r["pvalue"] == pytest.approx(0.036888, abs=1e-5)  # hand/table value
    assert mcnemar_test(0, 0)["pvalue"] == 1.0
    assert mcnemar_test(5, 5)["pvalue"] == 1.0  # capped at 1
    assert mcnemar_test(30, 15, exact=True)["pvalue"] == pytest.approx(
        stats.binomtest(15, 45, 0.5).pvalue
    )


def test_mcnemar_matches_statsmodels_when_available():
    sm = pytest.importorskip("statsmodels.stats.contingency_tables")
    for b, c in [(10, 2), (3, 9), (40, 22), (100, 130)]:
        table = [[50, b], [c, 50]]
        ref = sm.mcnemar(table, exact=b + c < 25, correction=True)
        assert mcnemar_test(b, c)["pvalue"] == pytest.approx(ref.pvalue)


def test_compare_head_runs_pairs_by_sample_id(pair):
    ra, rb, d = pair
    res = compare_runs(ra, rb, n_boot=300)
    y, pa, pb, ids = d["y"], d["pa"], d["pb"], d["ids"]
    assert res["correctness"] == "head" and res["n"] == 90
    acc = res["metrics"]["accuracy"]
    assert acc["a"] == pytest.approx(70 / 90) and acc["b"] == pytest.approx(77 / 90)
    assert acc["diff"] == pytest.approx(7 / 90)
    assert acc["ci_low"] <= acc["diff"] <= acc["ci_high"]
    for key, fn in (
        ("mean_class_accuracy", skm.balanced_accuracy_score),
        ("macro_f1", lambda t, p: skm.f1_score(t, p, average="macro")),
    ):
        m = res["metrics"][key]
        assert m["a"] == pytest.approx(fn(y, pa)) and m["b"] == pytest.approx(fn(y, pb))
        assert m["ci_low"] <= m["diff"] <= m["ci_high"]
    # A wrong & B right: 0..14; A right & B wrong: 60..67
    assert res["flips"]["to_correct"] == ids[:15]
    assert res["flips"]["to_wrong"] == ids[60:68]
    mc = res["mcnemar"]
    assert (mc["b"], mc["c"]) == (8, 15) and mc["method"] == "exact"
    assert mc["pvalue"] == pytest.approx(stats.binomtest(8, 23, 0.5).pvalue)
    pc = res["per_class"]["angry"]
    assert pc["recall_a"] == pytest.approx(10 / 30) and pc["recall_b"] == pytest.approx(25 / 30)
    assert pc["recall_delta"] == pytest.approx(15 / 30)
    assert pc["n"] == 30


def _confusion(t, p):
    cm = np.zeros((3, 3))
    np.add.at(cm, (t, p), 1)
    return cm


def _uar(t, p):
    cm = _confusion(t, p)
    rows = cm.sum(1)
    return np.mean(np.diag(cm)[rows > 0] / rows[rows > 0])


def _macro_f1(t, p):
    cm = _confusion(t, p)
    denom = cm.sum(0) + cm.sum(1)
    return np.mean(2 * np.diag(cm)[denom > 0] / denom[denom > 0])


def test_paired_ci_of_uar_and_f1_agrees_with_generic_bootstrap(pair):
    _, _, d = pair
    y, pa, pb = d["y"], d["pa"], d["pb"]
    assert _uar(y, pa) == pytest.approx(skm.balanced_accuracy_score(y, pa))
    assert _macro_f1(y, pb) == pytest.approx(skm.f1_score(y, pb, average="macro"))
    uar_ci, f1_ci = _paired_class_metric_cis(y, pa, pb, 3, 2000, 0.05, 0)

    def diff(fn):
        return lambda t, a, b: fn(t, b) - fn(t, a)

    ref_uar = bootstrap_statistic(diff(_uar), y, pa, pb, n_boot=2000, seed=1, stratify=y)
    ref_f1 = bootstrap_statistic(diff(_macro_f1), y, pa, pb, n_boot=2000, seed=1, stratify=y)
    np.testing.assert_allclose(uar_ci, ref_uar, atol=0.02)
    np.testing.assert_allclose(f1_ci, ref_f1, atol=0.02)


def _brute_knn(x, k):
    u = x / np.linalg.norm(x, axis=1, keepdims=True)
    nn = NearestNeighbors(n_neighbors=k + 1, metric="cosine").fit(u)
    return nn.kneighbors(u, return_distance=False)[:, 1:]


def test_compare_knn_runs(tmp_path, pair):
    _, _, d = pair
    y, ids = d["y"], d["ids"]
    perm = np.random.default_rng(1).permutation(len(y))
    ra = _write(tmp_path / "ka", d["xa"], y, ids)
    rb = _write(tmp_path / "kb", d["xb"], y, ids, perm=perm)
    res = compare_runs(ra, rb, k=5, n_boot=200)
    assert res["correctness"] == "knn" and res["k"] == 5
    ka, kb = _brute_knn(d["xa"], 5), _brute_knn(d["xb"], 5)

    def vote(nbrs):
        out = []
        for row in nbrs:
            counts = np.bincount(y[row], minlength=3)
            win = set(np.flatnonzero(counts == counts.max()))
            out.append(next(lab for lab in y[row] if lab in win))
        return np.array(out)

    ca, cb = vote(ka) == y, vote(kb) == y
    assert res["metrics"]["accuracy"]["a"] == pytest.approx(ca.mean())
    assert res["metrics"]["accuracy"]["b"] == pytest.approx(cb.mean())
    assert res["flips"]["to_correct"] == [ids[i] for i in np.flatnonzero(~ca & cb)]
    jac = [len(set(a) & set(b)) / len(set(a) | set(b)) for a, b in zip(ka, kb, strict=True)]
    assert res["knn_overlap"]["mean_jaccard"] == pytest.approx(np.mean(jac))
    # compactness: mean cosine distance to the class-mean direction
    u = d["xa"] / np.linalg.norm(d["xa"], axis=1, keepdims=True)
    m = u[y == 1].mean(0)
    comp = np.mean(1 - u[y == 1] @ m / np.linalg.norm(m))
    assert res["per_class"]["happy"]["compactness_a"] == pytest.approx(comp, rel=1e-6)


def test_compare_a_run_with_itself(pair):
    ra, _, _ = pair
    res = compare_runs(ra, ra, n_boot=100)
    assert res["knn_overlap"]["mean_jaccard"] == 1.0
    for m in res["metrics"].values():
        assert m["diff"] == 0 and m["ci_low"] == 0 and m["ci_high"] == 0
    assert res["mcnemar"]["pvalue"] == 1.0
    assert res["flips"] == {"to_correct": [], "to_wrong": []}


def test_format_comparison(pair):
    ra, rb, _ = pair
    text = format_comparison(compare_runs(ra, rb, n_boot=100))
    assert "A = a" in text and "B = b" in text
    assert "accuracy" in text and "+0.0778" in text  # 7/90
    assert "McNemar (exact)" in text and "angry" in text


def test_mismatched_runs_raise(tmp_path, pair):
    ra, _, d = pair
    y, ids, x = d["y"], d["ids"], d["xa"]
    other = _write(tmp_path / "classes", x, y, ids, classes=["x", "y", "z"])
    with pytest.raises(ValueError, match="different class lists"):
        compare_runs(ra, other)
    fewer = _write(tmp_path / "fewer", x[:-1], y[:-1], ids[:-1])
    with pytest.raises(ValueError, match="1 sample_id\\(s\\) only in 'a'.*img089"):
        compare_runs(ra, fewer)
    renamed = _write(tmp_path / "renamed", x, y, ids[:-1] + ["zzz"])
    with pytest.raises(ValueError, match="only in 'renamed' \\(e.g. \\['zzz'\\]\\)"):
        compare_runs(ra, renamed)
    dup = _write(tmp_path / "dup", x, y, ids[:-1] + [ids[0]])
    with pytest.raises(ValueError, match="duplicate sample_id 'img000'"):
        compare_runs(dup, ra)
    relabel = _write(tmp_path / "relabel", x, (y + 1) % 3, ids)
    with pytest.raises(ValueError, match="disagree on the label of 90"):
        compare_runs(ra, relabel)
    with pytest.raises(ValueError, match="k must be"):
        compare_runs(ra, ra, k=0)
