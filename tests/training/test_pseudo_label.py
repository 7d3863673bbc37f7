"""The pseudo-label loop: its pure pieces and its bookkeeping end to end."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from tiny_data import banded, tiny_train_config

from ferembed.data._registry import register_dataset
from ferembed.training import pseudo_label as pl
from ferembed.training import train

CLASSES = ["angry", "happy", "sad"]


@register_dataset("tiny3_pl", splits=("train", "val"), layout="in memory (tests)", needs_root=False)
def _tiny(root, split, *, n: int | None = None, seed: int = 0, **_):
    return banded(
        split, CLASSES, n=n or (60 if split == "train" else 24), seed=seed, name="tiny3_pl"
    )


pytestmark = pytest.mark.usefixtures("one_thread")


def _config(tmp_path, **changes):
    base = dict(
        dataset="tiny3_pl",
        epochs=1,
        pseudo_epochs=1,
        pseudo_rounds=2,
        hidden_label_fraction=0.5,
        pseudo_keep_fraction=0.5,
        method="pseudo_label",
    )
    out = changes.pop("out", tmp_path / "pl")
    return tiny_train_config(out, **{**base, **changes})


# ------------------------------------------------------------------------------------------------
# Pure pieces


def test_split_labelled_is_stratified_disjoint_and_seeded():
    labels = np.array([0] * 10 + [1] * 6 + [2] * 1)
    lab, hid = pl.split_labelled(labels, 0.5, seed=3)
    assert np.intersect1d(lab, hid).size == 0
    assert np.array_equal(np.sort(np.concatenate([lab, hid])), np.arange(17))
    assert np.bincount(labels[hid], minlength=3).tolist() == [5, 3, 0]  # class 2 keeps its one
    lab2, hid2 = pl.split_labelled(labels, 0.5, seed=3)
    assert np.array_equal(hid, hid2)
    assert not np.array_equal(hid, pl.split_labelled(labels, 0.5, seed=4)[1])


def test_select_confident_margin_keeps_the_largest_relative_margins():
    assign = np.array([0, 1, 0, 1])
    d1 = np.array([1.0, 1.0, 4.0, 0.0])
    d2 = np.array([4.0, 1.0, 16.0, 9.0])
    # margins 1 - sqrt(d1/d2): 0.5, 0.0, 0.5, 1.0 -> keep ceil(0.5 * 4) = 2: samples 3, then 0.
    keep = pl.select_confident(assign, d1, d2, keep_fraction=0.5, selection="margin")
    assert keep.tolist() == [True, False, False, True]


def test_select_confident_per_cluster_keeps_the_closest_of_each_cluster():
    assign = np.array([0, 0, 0, 1, 1])
    d1 = np.array([3.0, 1.0, 2.0, 5.0, 4.0])
    d2 = np.full(5, 10.0)
    # cluster 0: ceil(0.5 * 3) = 2 closest (1, 2); cluster 1: ceil(0.5 * 2) = 1 closest (4).
    keep = pl.select_confident(assign, d1, d2, keep_fraction=0.5, selection="per_cluster")
    assert keep.tolist() == [False, True, True, False, True]
    with pytest.raises(ValueError, match="selection"):
        pl.select_confident(assign, d1, d2, keep_fraction=0.5, selection="best")


def test_pseudo_label_stats_against_the_hidden_truth():
    assign = np.array([0, 0, 1, 1, 2, 2])
    keep = np.array([True, True, True, False, True, False])
    truth = np.array([0, 1, 1, 1, 0, 2])
    s = pl.pseudo_label_stats(assign, keep, truth, CLASSES)
    assert s["pool_size"] == 6 and s["n_kept"] == 4
    assert s["kept_acc"] == pytest.approx(2 / 4)  # kept: (0,0) ok, (0,1) no, (1,1) ok, (2,0) no
    assert s["pool_acc"] == pytest.approx(4 / 6)
    assert s["per_class"]["angry"] == {"kept": 2, "correct": 1, "precision": 0.5, "recall": 0.5}
    assert s["per_class"]["happy"] == {
        "kept": 1,
        "correct": 1,
        "precision": 1.0,
        "recall": pytest.approx(1 / 3),
    }
    assert s["per_class"]["sad"] == {"kept": 1, "correct": 0, "precision": 0.0, "recall": 0.0}


def test_cluster_pool_names_clusters_after_their_initial_centroids():
    rng = np.random.default_rng(0)
    centers = np.array([[5.0, 0.0], [0.0, 5.0], [-5.0, -5.0]], np.float32)
    labels = np.repeat(np.arange(3), 20)
    x = centers[labels] + rng.normal(scale=0.3, size=(60, 2)).astype(np.float32)
    # Initial centroids roughly at the class means, deliberately offset.
    assign, d1, d2 = pl.cluster_pool(x, centers + 1.0, niter=10, seed=0)
    assert np.array_equal(assign, labels)
    assert np.all(d1 <= d2)


def test_class_means_needs_every_class():
    with pytest.raises(ValueError, match=r"classes \[2\]"):
        pl.class_means(np.zeros((4, 2)), np.array([0, 1, 0, 1]), 3)


# ------------------------------------------------------------------------------------------------
# Bookkeeping end to end


def test_hidden_labels_reach_training_only_as_pseudo_labels(tmp_path, monkeypatch):
    truth = _tiny(None, "train").labels
    trained_on = []  # (round, positions in the train split, labels trained on)
    assigned = []  # the pool assignment of each round
    real_fit, real_cluster = pl.fit, pl.cluster_pool

    def spy_fit(config, *, train_ds, log_extra, **kw):
        trained_on.append((log_extra["round"], train_ds.indices.copy(), train_ds.labels.copy()))
        return real_fit(config, train_ds=train_ds, log_extra=log_extra, **kw)

    def wrong_clusters(emb, init, **kw):
        # Deliberately wrong pseudo-labels: any true label reaching training would show.
        assign, d1, d2 = real_cluster(emb, init, **kw)
        assign = (hidden_truth + 1) % 3
        assigned.append(assign)
        return assign, d1, d2

    labelled, hidden = pl.split_labelled(truth, 0.5, seed=0)
    hidden_truth = truth[hidden]
    monkeypatch.setattr(pl, "fit", spy_fit)
    monkeypatch.setattr(pl, "cluster_pool", wrong_clusters)
    res = train(_config(tmp_path), progress=False)

    assert [r for r, _, _ in trained_on] == [0, 1, 2]
    # Round 0: exactly the labelled part, with its true labels.
    _, idx0, y0 = trained_on[0]
    assert np.array_equal(idx0, labelled) and np.array_equal(y0, truth[labelled])
    record = json.loads((tmp_path / "pl" / "pseudo_labels.json").read_text())
    assert record["n_labelled"] == len(labelled) == 30 and record["n_pool"] == len(hidden) == 30
    for (r, idx, y), assign in zip(trained_on[1:], assigned, strict=True):
        is_hidden = np.isin(idx, hidden)
        # Labelled samples keep their true labels ...
        assert np.array_equal(y[~is_hidden], truth[idx[~is_hidden]])
        # ... hidden ones carry their (wrong) pseudo-label, never the truth.
        pos = np.searchsorted(hidden, idx[is_hidden])
        assert np.array_equal(y[is_hidden], assign[pos])
        assert not np.any(y[is_hidden] == truth[idx[is_hidden]])
        n_kept = math.ceil(0.5 * 30)
        rnd = record["rounds"][r]
        assert is_hidden.sum() == rnd["n_kept"] == n_kept and rnd["pool_size"] == 30
        assert rnd["n_trained"] == 30 + n_kept
        assert rnd["kept_acc"] == 0.0 and rnd["pool_acc"] == 0.0
        assert set(rnd["per_class"]) == set(CLASSES)
        assert "val_acc" in rnd
    # The final pseudo-labels: -1 for samples not kept, else the assignment.
    final = np.array(record["pseudo_labels"])
    assert np.all((final == -1) | (final == assigned[-1]))
    assert (final != -1).sum() == n_kept
    assert record["pool_sample_ids"] == [f"train_{i}" for i in hidden]
    assert res.pseudo_label["rounds"][0]["round"] == 0


def test_pseudo_label_run_outputs(tmp_path):
    res = train(_config(tmp_path, pseudo_rounds=1, method="pseudo_label"), progress=False)
    out = tmp_path / "pl"
    for name in ("pseudo_labels.json", "log.csv", "log.json", "best.json", "last.json"):
        assert (out / name).is_file()
    assert (out / "round_0" / "last.json").is_file() and (out / "round_1" / "last.json").is_file()
    log = json.loads((out / "log.json").read_text())
    assert [row["round"] for row in log] == [0, 1]
    rnd = res.pseudo_label["rounds"][1]
    # Accuracy is measured against the hidden truth: recompute it from the record.
    truth = _tiny(None, "train").labels
    _, hidden = pl.split_labelled(truth, 0.5, seed=0)
    final = np.array(res.pseudo_label["pseudo_labels"])
    kept = final != -1
    assert rnd["kept_acc"] == pytest.approx(float(np.mean(final[kept] == truth[hidden][kept])))
    from ferembed.models import load_checkpoint

    _, sidecar = load_checkpoint(out / "last")
    assert sidecar["loss"]["name"] == "center"  # the fine-tuning loss (CE + center)


class _Interrupt(Exception):
    pass


def test_resume_continues_round_by_round(tmp_path):
    from ferembed.models import load_checkpoint

    full = train(_config(tmp_path, out=str(tmp_path / "full"), epochs=2), progress=False)
    cfg = _config(tmp_path, out=str(tmp_path / "cut"), epochs=2)

    def stop_in_round_one(row):
        if row["round"] == 1 and row["epoch"] == 1:
            raise _Interrupt

    with pytest.raises(_Interrupt):
        train(cfg, progress=False, callback=stop_in_round_one)
    resumed = train(cfg, progress=False, resume=True)
    a, _ = load_checkpoint(full.last_checkpoint)
    b, _ = load_checkpoint(resumed.last_checkpoint)
    wa, wb = a.state_dict(), b.state_dict()
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    rounds = [(r["round"], r.get("n_kept"), r["val_acc"]) for r in resumed.pseudo_label["rounds"]]
    assert rounds == [
        (r["round"], r.get("n_kept"), r["val_acc"]) for r in full.pseudo_label["rounds"]
    ]
    assert resumed.pseudo_label["pseudo_labels"] == full.pseudo_label["pseudo_labels"]


def test_library_pseudo_label_run_gets_the_output_checks(tmp_path):
    """``train`` of a pseudo-label config from Python refuses what the CLI refuses: a finished
    pseudo-label run, and a run directory as OUT."""
    from ferembed.errors import FerembedError
    from ferembed.runs import make_samples, write_run
    from ferembed.training import ConfigError

    out = tmp_path / "pl"
    out.mkdir()
    (out / "pseudo_labels.json").write_text("{}")
    with pytest.raises(ConfigError, match="already holds"):
        train(_config(tmp_path), progress=False)
    run = write_run(
        tmp_path / "a_run",
        embeddings=np.ones((2, 3), np.float32),
        samples=make_samples(np.array([0, 1]), ["happy", "sad"]),
        class_names=["happy", "sad"],
    )
    with pytest.raises(FerembedError, match="run"):
        train(_config(tmp_path, out=run), progress=False)
    assert sorted(p.name for p in run.iterdir()) == sorted(
        ["embeddings.npy", "samples.parquet", "run.json"]
    )
