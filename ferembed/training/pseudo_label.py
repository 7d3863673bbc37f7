"""Expression-guided deep clustering with pseudo-labels (after Fang et al., Sensors 2023).

The paper clusters the deep features of an unlabelled face set, turns the clusters into expression
pseudo-labels and fine-tunes on the enlarged set with a combined loss; its details are not
published, so this is our reading, run on one dataset:

1. **Hide labels.** A seeded, per-class stratified ``hidden_label_fraction`` of the train split
   becomes the unlabelled *pool* (every class keeps at least one labelled sample). The pool's
   labels are used only to *measure* pseudo-label accuracy, never for training.
2. **Round 0.** Train on the labelled part with ``config.loss`` for ``config.epochs``.
3. **Each round r = 1..R:**

   a. embed the labelled part and the pool (eval mode, no augmentation);
   b. *expression guidance*: FAISS k-means on the pool embeddings with K = number of classes,
      the centroids initialised at the labelled class means (``init_centroids``); cluster k
      keeps the name of class k, the class its centroid started from;
   c. keep the confident assignments: ``selection="margin"`` keeps the ``keep_fraction`` of the
      pool with the largest relative margin ``1 - ||x - c_1|| / ||x - c_2||`` between the nearest
      and second-nearest centroids; ``"per_cluster"`` keeps the ``keep_fraction`` of each cluster
      closest to its centroid (balanced across classes);
   d. fine-tune the current model on labelled + kept pseudo-labelled samples with
      ``config.pseudo_loss`` (CE + center by default) for ``pseudo_epochs`` at ``pseudo_lr``.

   Pseudo-labels are recomputed from scratch each round (DeepCluster-style), not accumulated.

**Control** (``pseudo_control=True``): the same loop without the pool. Round 0 is the same
training on the labelled part (same seed), and each round r fine-tunes on the labelled part
alone, with the same loss, epochs and learning rate as a pseudo-label round. Comparing a run with
its control isolates what the pseudo-labelled samples add: the control has seen the labelled
images for exactly as many epochs.

K-means runs in FAISS; where FAISS is not installed, scikit-learn's Lloyd k-means from the same
initial centroids (``tol=0``, the same iterations) stands in, and the record says which ran.

Per round ``out/pseudo_labels.json`` records the pool size, the number kept, pseudo-label
accuracy against the hidden truth (over the kept samples, over the whole pool, and per class) and
validation accuracy. Each round trains in ``out/round_<r>/`` (its own log and checkpoints);
``out/best`` is the best checkpoint over all rounds by ``config.monitor`` and ``out/last`` the
final round's last one; ``out/log.csv``/``log.json`` concatenate the rounds' logs (column
``round``). ``resume=True`` continues an interrupted run round by round.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from ferembed import _io
from ferembed._device import resolve_device
from ferembed.data.subset import SubsetDataset
from ferembed.errors import FerembedError
from ferembed.models import checkpoint_paths
from ferembed.training.config import TrainConfig, save_config
from ferembed.training.loop import TrainResult, check_fresh, fit, write_logs
from ferembed.training.setup import (
    ImageBatches,
    build_datasets,
    build_loss,
    build_model_and_loss,
    deterministic_mode,
    embed_batches,
)

FORMAT = "ferembed.pseudo_labels/1"
_HIDE_STREAM = 0x41DE


def split_labelled(
    labels: np.ndarray, hidden_fraction: float, *, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Hide the labels of a stratified fraction of each class.

    Args:
        labels: (N,) int labels.
        hidden_fraction: fraction in (0, 1) of each class to hide (rounded; every class with
            samples keeps at least one labelled sample).
        seed: seeds the choice.

    Returns:
        ``(labelled_idx, hidden_idx)``: sorted int64 positions, disjoint, covering [0, N).
    """
    if not 0 < hidden_fraction < 1:
        raise ValueError(f"hidden_fraction must be in (0, 1), got {hidden_fraction}")
    labels = np.asarray(labels, dtype=np.int64)
    rng = np.random.default_rng([int(seed), _HIDE_STREAM])
    hidden = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        n_hide = min(int(round(hidden_fraction * len(members))), len(members) - 1)
        hidden.append(rng.permutation(members)[:n_hide])
    hidden_idx = np.sort(np.concatenate(hidden)) if hidden else np.zeros(0, np.int64)
    labelled_idx = np.setdiff1d(np.arange(len(labels)), hidden_idx)
    return labelled_idx.astype(np.int64), hidden_idx.astype(np.int64)


def class_means(embeddings: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
    """(C, D) float32 mean embedding of each class.

    Raises:
        ValueError: a class has no sample (its centroid would be undefined).
    """
    empty = [c for c in range(num_classes) if not np.any(labels == c)]
    if empty:
        raise ValueError(f"classes {empty} have no labelled sample to initialise a centroid")
    return np.stack([embeddings[labels == c].mean(0) for c in range(num_classes)]).astype(
        np.float32
    )


def cluster_pool(
    embeddings: np.ndarray, init_centroids: np.ndarray, *, niter: int = 20, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """FAISS k-means of the pool from the given initial centroids.

    Args:
        embeddings: (P, D) pool embeddings.
        init_centroids: (K, D) starting centroids; cluster k is named after centroid k.
        niter: k-means iterations.
        seed: FAISS seed (empty-cluster splitting).

    Returns:
        ``(assign (P,) int64, d1 (P,) float32, d2 (P,) float32)``: nearest final centroid and the
        squared L2 distances to the nearest and second-nearest centroids.
    """
    x = np.ascontiguousarray(embeddings, dtype=np.float32)
    init = np.ascontiguousarray(init_centroids, dtype=np.float32)
    k, d = init.shape
    if x.shape[0] < k:
        raise ValueError(f"the pool has {x.shape[0]} samples, fewer than the {k} clusters")
    if _kmeans_backend() != "faiss":
        return _cluster_pool_sklearn(x, init, niter=niter, seed=seed)
    import faiss

    km = faiss.Kmeans(
        d,
        k,
        niter=int(niter),
        seed=int(seed),
        verbose=False,
        min_points_per_centroid=1,
        max_points_per_centroid=1 << 30,
    )
    km.train(x, init_centroids=init)
    dist, idx = km.index.search(x, min(2, k))
    d2 = dist[:, 1] if k > 1 else np.full(len(x), np.inf, np.float32)
    return idx[:, 0].astype(np.int64), dist[:, 0].astype(np.float32), d2.astype(np.float32)


def _kmeans_backend() -> str:
    """``"faiss"`` when FAISS imports, else ``"scikit-learn"``."""
    try:
        import faiss  # noqa: F401
    except ImportError:
        return "scikit-learn"
    return "faiss"


def _cluster_pool_sklearn(
    x: np.ndarray, init: np.ndarray, *, niter: int, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`cluster_pool` without FAISS: scikit-learn's Lloyd iterations from ``init``."""
    from sklearn.cluster import KMeans

    k = init.shape[0]
    km = KMeans(k, init=init, n_init=1, max_iter=int(niter), tol=0.0, random_state=int(seed))
    dist = km.fit(x).transform(x).astype(np.float32) ** 2
    order = np.argsort(dist, axis=1, kind="stable")
    rows = np.arange(len(x))
    d1 = dist[rows, order[:, 0]]
    d2 = dist[rows, order[:, 1]] if k > 1 else np.full(len(x), np.inf, np.float32)
    return order[:, 0].astype(np.int64), d1, d2.astype(np.float32)


def select_confident(
    assign: np.ndarray,
    d1: np.ndarray,
    d2: np.ndarray,
    *,
    keep_fraction: float,
    selection: str = "margin",
) -> np.ndarray:
    """Which pool samples to keep as pseudo-labelled.

    Args:
        assign: (P,) cluster (= class) of each sample.
        d1, d2: (P,) squared distances to the nearest and second-nearest centroid.
        keep_fraction: in (0, 1].
        selection: "margin": the ``ceil(keep_fraction * P)`` samples with the largest relative
            margin ``1 - sqrt(d1 / d2)``; "per_cluster": in each cluster, the
            ``ceil(keep_fraction * n_k)`` samples closest to the centroid.

    Returns:
        (P,) bool mask. Ties are broken by position (stable sort).
    """
    if not 0 < keep_fraction <= 1:
        raise ValueError(f"keep_fraction must be in (0, 1], got {keep_fraction}")
    n = len(assign)
    keep = np.zeros(n, dtype=bool)
    if selection == "margin":
        with np.errstate(divide="ignore", invalid="ignore"):
            margin = 1.0 - np.sqrt(np.where(d2 > 0, d1 / d2, 1.0))
        order = np.argsort(-margin, kind="stable")
        keep[order[: math.ceil(keep_fraction * n)]] = True
    elif selection == "per_cluster":
        for k in np.unique(assign):
            members = np.flatnonzero(assign == k)
            order = members[np.argsort(d1[members], kind="stable")]
            keep[order[: math.ceil(keep_fraction * len(members))]] = True
    else:
        raise ValueError(f"selection must be 'margin' or 'per_cluster', got {selection!r}")
    return keep


def pseudo_label_stats(
    assign: np.ndarray, keep: np.ndarray, truth: np.ndarray, class_names: list[str]
) -> dict:
    """Pseudo-label accuracy against the hidden truth.

    Args:
        assign: (P,) pseudo-label of every pool sample.
        keep: (P,) bool, the samples kept.
        truth: (P,) hidden true labels.
        class_names: the C names.

    Returns:
        ``{"pool_size", "n_kept", "kept_acc" (accuracy over kept samples), "pool_acc" (over all
        assignments), "per_class": {name: {"kept", "correct", "precision", "recall"}}}`` where
        per class c, ``kept`` counts kept samples pseudo-labelled c, ``precision`` is the share
        of them truly c, and ``recall`` the share of the pool's true-c samples kept with label c.
        Undefined ratios are None.
    """
    correct = assign == truth
    per_class = {}
    for c, name in enumerate(class_names):
        labelled_c = keep & (assign == c)
        true_c = truth == c
        n, m = int(labelled_c.sum()), int((labelled_c & correct).sum())
        per_class[name] = {
            "kept": n,
            "correct": m,
            "precision": m / n if n else None,
            "recall": m / int(true_c.sum()) if true_c.any() else None,
        }
    return {
        "pool_size": int(len(assign)),
        "n_kept": int(keep.sum()),
        "kept_acc": float(correct[keep].mean()) if keep.any() else None,
        "pool_acc": float(correct.mean()) if len(assign) else None,
        "per_class": per_class,
    }


def train_pseudo_label(
    config: TrainConfig,
    *,
    rounds: int | None = None,
    keep_fraction: float | None = None,
    selection: str | None = None,
    hidden_fraction: float | None = None,
    progress: bool = True,
    resume: bool = False,
    overwrite: bool = False,
    command: str | None = None,
    callback: Callable[[dict], None] | None = None,
) -> TrainResult:
    """Run the pseudo-label loop (module docstring); arguments override the config's fields.

    Args:
        config: the run's config (``pseudo_*`` fields and ``hidden_label_fraction``).
        rounds: ``pseudo_rounds``.
        keep_fraction: ``pseudo_keep_fraction``.
        selection: ``pseudo_selection``.
        hidden_fraction: ``hidden_label_fraction``.
        progress, overwrite, command, callback: as for :func:`ferembed.training.train`.
        resume: continue an interrupted run: finished rounds are reloaded from their
            ``round_<r>/train_state.pt`` (the pseudo-labels are recomputed, deterministically),
            the interrupted round resumes from its last finished epoch.

    Returns:
        A :class:`TrainResult` over all rounds, with ``pseudo_label`` the pseudo_labels.json dict.
    """
    changes = {
        "pseudo_rounds": rounds,
        "pseudo_keep_fraction": keep_fraction,
        "pseudo_selection": selection,
        "hidden_label_fraction": hidden_fraction,
    }
    config = dataclasses.replace(
        config, method="pseudo_label", **{k: v for k, v in changes.items() if v is not None}
    ).validate()
    out = Path(config.out)
    # The same output checks as a standard run (never an input, a run, or a finished training).
    roots = [("--root", config.root)] if config.root else []
    check_fresh(out, resume=resume, overwrite=overwrite, inputs=roots, state="pseudo_labels.json")
    out.mkdir(parents=True, exist_ok=True)
    save_config(config, out / "config.json")
    device = resolve_device(config.device)
    with deterministic_mode(config.deterministic, device):
        torch.manual_seed(config.seed)
        train_ds, val_ds = build_datasets(config)
        class_names = list(train_ds.class_names)
        num_classes = len(class_names)
        all_labels = train_ds.labels
        labelled_idx, hidden_idx = split_labelled(
            all_labels, config.hidden_label_fraction, seed=config.seed
        )
        if len(hidden_idx) < num_classes:
            raise FerembedError(
                f"the unlabelled pool has {len(hidden_idx)} samples, fewer than {num_classes} "
                f"classes; raise hidden_label_fraction or use more data"
            )
        hidden_truth = all_labels[hidden_idx]  # for measuring pseudo-labels only
        labelled_labels = all_labels[labelled_idx]
        labelled_ds = SubsetDataset(train_ds, labelled_idx)
        # The pool view carries no labels at all (-1), so nothing downstream can train on them.
        pool_ds = SubsetDataset(train_ds, hidden_idx, labels=np.full(len(hidden_idx), -1))
        pool_data = ImageBatches(pool_ds, preload=config.preload, num_workers=config.num_workers)
        pool_ids = [s.sample_id for s in pool_ds.samples]

        model, loss = build_model_and_loss(
            config, train_ds, class_counts=labelled_ds.class_counts(), progress=progress
        )
        common = dict(
            device=device,
            progress=progress,
            overwrite=overwrite,
            command=command,
            resume=resume,
            callback=callback,
        )  # the fit options every round shares
        record: dict = {
            "format": FORMAT,
            "dataset": config.dataset,
            "split": config.split,
            "class_names": class_names,
            "hidden_label_fraction": config.hidden_label_fraction,
            "keep_fraction": config.pseudo_keep_fraction,
            "selection": config.pseudo_selection,
            "control": config.pseudo_control,
            "kmeans": None if config.pseudo_control else _kmeans_backend(),
            "n_train": len(train_ds),
            "n_labelled": int(len(labelled_idx)),
            "n_pool": int(len(hidden_idx)),
            "rounds": [],
            "pool_sample_ids": pool_ids,
            "pseudo_labels": None,
        }
        results: list[TrainResult] = []
        res = fit(
            config,
            model=model,
            loss=loss,
            train_ds=labelled_ds,
            val_ds=val_ds,
            out=out / "round_0",
            epochs=config.epochs,
            log_extra={"round": 0},
            **common,
        )
        results.append(res)
        record["rounds"].append({"round": 0, "n_trained": len(labelled_ds), **_val_summary(res)})
        _save_record(out, record, results)

        ft_loss = None
        epochs = config.pseudo_epochs or config.epochs
        lr = config.pseudo_lr if config.pseudo_lr is not None else config.lr / 10
        labelled_data = ImageBatches(
            labelled_ds, preload=config.preload, num_workers=config.num_workers
        )
        for r in range(1, config.pseudo_rounds + 1):
            if config.pseudo_control:  # the labelled part alone: no pool, no pseudo-labels
                view, stats, keep = labelled_ds, {}, None
            else:
                emb_l, _ = embed_batches(model, labelled_data, device, config.eval_batch_size)
                emb_p, _ = embed_batches(model, pool_data, device, config.eval_batch_size)
                centroids = class_means(emb_l, labelled_labels, num_classes)
                assign, d1, d2 = cluster_pool(
                    emb_p, centroids, niter=config.pseudo_kmeans_iters, seed=config.seed + r
                )
                keep = select_confident(
                    assign,
                    d1,
                    d2,
                    keep_fraction=config.pseudo_keep_fraction,
                    selection=config.pseudo_selection,
                )
                stats = pseudo_label_stats(assign, keep, hidden_truth, class_names)
                view = SubsetDataset(
                    train_ds,
                    np.concatenate([labelled_idx, hidden_idx[keep]]),
                    labels=np.concatenate([labelled_labels, assign[keep]]),
                )
            if ft_loss is None:
                ft_loss = build_loss(
                    config.pseudo_loss,
                    config.pseudo_loss_params,
                    num_classes,
                    model.embedding_dim,
                    view.class_counts(),
                )
            res = fit(
                config,
                model=model,
                loss=ft_loss,
                train_ds=view,
                val_ds=val_ds,
                out=out / f"round_{r}",
                epochs=epochs,
                lr=lr,
                log_extra={"round": r},
                **common,
            )
            results.append(res)
            record["rounds"].append(
                {"round": r, "n_trained": len(view), **stats, **_val_summary(res)}
            )
            if keep is not None:
                record["pseudo_labels"] = np.where(keep, assign, -1).tolist()
            _save_record(out, record, results)

    best = _pick_best(results)
    for name, src in (("best", results[best].out / "best"), ("last", results[-1].out / "last")):
        for path, dst in zip(checkpoint_paths(src), checkpoint_paths(out / name), strict=True):
            _io.write_bytes(dst, path.read_bytes())
    history = [row for res in results for row in res.history]
    return TrainResult(
        out=out,
        best_checkpoint=out / "best.json",
        last_checkpoint=out / "last.json",
        best_epoch=results[best].best_epoch,
        best_score=results[best].best_score,
        epochs_run=sum(res.epochs_run for res in results),
        stopped_early=any(res.stopped_early for res in results),
        history=history,
        wall_time_s=sum(res.wall_time_s for res in results),
        device=str(device),
        pseudo_label=record,
    )


def _val_summary(res: TrainResult) -> dict:
    last = res.history[-1]
    return {
        "epochs": res.epochs_run,
        "val_acc": last.get("val_acc"),
        "val_mean_class_acc": last.get("val_mean_class_acc"),
        "best_epoch": res.best_epoch,
        "best_score": res.best_score,
    }


def _pick_best(results: list[TrainResult]) -> int:
    return best_round([r.best_score for r in results])


def best_round(scores: list[float | None]) -> int:
    """Index of the round the loop ships: the first with the highest validation score, the
    final round when a round has no score (no validation). Cards and reports use it to name it."""
    if any(s is None for s in scores):
        return len(scores) - 1
    return int(np.argmax(scores))


def _save_record(out: Path, record: dict, results: list[TrainResult]) -> None:
    _io.write_json(out / "pseudo_labels.json", record)
    write_logs(out, [row for res in results for row in res.history])
