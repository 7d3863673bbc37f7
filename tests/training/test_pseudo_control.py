"""The pseudo-label loop's control (``pseudo_control``) and its k-means without FAISS."""

from __future__ import annotations

import json

import numpy as np
import pytest
from tiny_data import banded, tiny_train_config

from ferembed.data._registry import register_dataset
from ferembed.models import load_checkpoint
from ferembed.training import apply_overrides, train
from ferembed.training import pseudo_label as pl
from ferembed.training.config import TrainConfig

CLASSES = ["angry", "happy", "sad"]


@register_dataset(
    "tiny3_plc", splits=("train", "val"), layout="in memory (tests)", needs_root=False
)
def _tiny(root, split, *, n: int | None = None, seed: int = 0, **_):
    return banded(
        split, CLASSES, n=n or (60 if split == "train" else 24), seed=seed, name="tiny3_plc"
    )


pytestmark = pytest.mark.usefixtures("one_thread")


def _config(out, **changes):
    base = dict(
        dataset="tiny3_plc",
        epochs=2,
        pseudo_epochs=1,
        pseudo_rounds=2,
        hidden_label_fraction=0.5,
        pseudo_keep_fraction=0.5,
        method="pseudo_label",
    )
    return tiny_train_config(out, **{**base, **changes})


def _spy_fit(monkeypatch):
    trained_on = []  # (round, positions in the train split, labels, epochs, lr)
    real_fit = pl.fit

    def spy(config, *, train_ds, log_extra, epochs, **kw):
        row = (log_extra["round"], train_ds.indices.copy(), train_ds.labels.copy(), epochs)
        trained_on.append((*row, kw.get("lr")))
        return real_fit(config, train_ds=train_ds, log_extra=log_extra, epochs=epochs, **kw)

    monkeypatch.setattr(pl, "fit", spy)
    return trained_on


def test_control_fine_tunes_on_the_labelled_part_alone_for_the_same_epochs(tmp_path, monkeypatch):
    truth = _tiny(None, "train").labels
    labelled, _ = pl.split_labelled(truth, 0.5, seed=0)
    trained_on = _spy_fit(monkeypatch)
    train(_config(tmp_path / "pl"), progress=False)
    n_pseudo = len(trained_on)

    def no_clustering(*a, **kw):
        raise AssertionError("the control must not cluster the pool")

    monkeypatch.setattr(pl, "cluster_pool", no_clustering)
    res = train(_config(tmp_path / "ctl", pseudo_control=True), progress=False)
    pseudo, control = trained_on[:n_pseudo], trained_on[n_pseudo:]

    # Same schedule: round 0 then the same rounds, epochs and fine-tuning lr.
    assert [(r, e, lr) for r, _, _, e, lr in control] == [(r, e, lr) for r, _, _, e, lr in pseudo]
    assert [r for r, *_ in control] == [0, 1, 2]
    for r, idx, y, _, _ in control:  # every round: exactly the labelled part, true labels
        assert np.array_equal(idx, labelled) and np.array_equal(y, truth[labelled]), r
    for _, idx, _, _, _ in pseudo[1:]:  # the pseudo-label rounds add pool samples
        assert len(idx) > len(labelled)
    record = json.loads((tmp_path / "ctl" / "pseudo_labels.json").read_text())
    assert record["control"] is True and record["kmeans"] is None
    assert record["pseudo_labels"] is None
    assert [rnd["n_trained"] for rnd in record["rounds"]] == [len(labelled)] * 3
    assert "kept_acc" not in record["rounds"][1]
    assert res.pseudo_label["control"] is True
    pseudo_record = json.loads((tmp_path / "pl" / "pseudo_labels.json").read_text())
    assert pseudo_record["control"] is False and pseudo_record["kmeans"] in (
        "faiss",
        "scikit-learn",
    )
    # Round 0 is the same training in both (same seed, same labelled part): same weights.
    a, _ = load_checkpoint(tmp_path / "pl" / "round_0" / "last")
    b, _ = load_checkpoint(tmp_path / "ctl" / "round_0" / "last")
    for (name, wa), wb in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert np.array_equal(wa.numpy(), wb.numpy()), name
    # The config records the control (the card carries it).
    saved = json.loads((tmp_path / "ctl" / "config.json").read_text())
    assert saved["pseudo_control"] is True


def test_pseudo_control_is_a_config_option():
    cfg = apply_overrides(TrainConfig(), {"pseudo_control": "true"})
    assert cfg.pseudo_control is True and TrainConfig().pseudo_control is False


def _blobs():
    rng = np.random.default_rng(0)
    centers = np.array([[5.0, 0.0], [0.0, 5.0], [-5.0, -5.0]], np.float32)
    labels = np.repeat(np.arange(3), 20)
    x = centers[labels] + rng.normal(scale=0.3, size=(60, 2)).astype(np.float32)
    return x, labels, centers


def test_cluster_pool_without_faiss_matches_faiss(monkeypatch):
    x, labels, centers = _blobs()
    with_faiss = pl.cluster_pool(x, centers + 1.0, niter=10, seed=0)
    monkeypatch.setattr(pl, "_kmeans_backend", lambda: "scikit-learn")
    assign, d1, d2 = pl.cluster_pool(x, centers + 1.0, niter=10, seed=0)
    assert np.array_equal(assign, labels)  # clusters keep the names of their initial centroids
    assert np.array_equal(assign, with_faiss[0])
    assert np.allclose(d1, with_faiss[1], rtol=1e-4, atol=1e-5)
    assert np.allclose(d2, with_faiss[2], rtol=1e-4, atol=1e-5)
    assert assign.dtype == np.int64 and d1.dtype == d2.dtype == np.float32


def test_kmeans_backend_names_scikit_learn_when_faiss_is_absent(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_faiss(name, *args, **kwargs):
        if name == "faiss":
            raise ImportError("no faiss here")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_faiss)
    assert pl._kmeans_backend() == "scikit-learn"
    x, labels, centers = _blobs()
    assert np.array_equal(pl.cluster_pool(x, centers, niter=5, seed=0)[0], labels)
