"""Classification metrics, and the two embedding-only classifiers (kNN vote, nearest centroid)."""

from __future__ import annotations

import numpy as np

from ferembed.metrics._kernels import as64, class_sums, row_chunks
from ferembed.metrics._validation import (
    check_embeddings,
    check_int,
    check_label_array,
    check_labelled,
)

__all__ = ["classification_metrics", "knn_vote", "nearest_centroid_predict"]


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> dict:
    """Accuracy, UAR, macro-F1, per-class scores and confusion matrices.

    Matches scikit-learn: ``accuracy_score``; ``balanced_accuracy_score`` (UAR: mean recall over
    the classes present in ``y_true``); ``f1_score(average="macro")`` (over the classes present in
    ``y_true`` or ``y_pred``); ``precision_recall_fscore_support(labels=range(K),
    zero_division=0)`` for the per-class lists (an undefined ratio is 0); ``confusion_matrix``.

    Args:
        y_true: (N,) int true labels in ``0..K-1``.
        y_pred: (N,) int predicted labels in ``0..K-1``.
        num_classes: K.

    Returns:
        dict with ``accuracy``, ``mean_class_accuracy``, ``macro_f1`` (floats), ``per_class``
        (``{precision, recall, f1, support}``, lists of length K), ``confusion`` ((K, K) int64,
        rows = true class, columns = predicted) and ``confusion_normalized`` ((K, K) float64,
        rows divided by their sums; rows of classes absent from ``y_true`` are zeros).
    """
    k = check_int(num_classes, "num_classes", 1)
    t = check_label_array(y_true, "y_true", k)
    if t.size == 0:
        raise ValueError("y_true is empty")
    p = check_label_array(y_pred, "y_pred", k, t.size)
    cm = confusion_matrix(t, p, k)
    s = confusion_scores(cm)
    support = cm.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        norm = np.where(support[:, None] > 0, cm / support[:, None], 0.0)
    return {
        "accuracy": float(s["accuracy"]),
        "mean_class_accuracy": float(s["mean_class_accuracy"]),
        "macro_f1": float(s["macro_f1"]),
        "per_class": {
            "precision": s["precision"].tolist(),
            "recall": s["recall"].tolist(),
            "f1": s["f1"].tolist(),
            "support": support.tolist(),
        },
        "confusion": cm,
        "confusion_normalized": norm,
    }


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """(K, K) int64 counts, rows = true class, columns = predicted (labels already checked)."""
    k = int(num_classes)
    t = np.asarray(y_true, dtype=np.int64)
    p = np.asarray(y_pred, dtype=np.int64)
    return np.bincount(t * k + p, minlength=k * k).reshape(k, k).astype(np.int64)


def confusion_scores(cm: np.ndarray) -> dict[str, np.ndarray]:
    """The scores of one or many confusion matrices: the one confusion-to-scores function.

    Every accuracy, mean class accuracy (UAR) and macro-F1 in ferembed (evaluate, its bootstrap,
    compare's paired bootstrap, the trainer's validation) comes from here. Conventions follow
    scikit-learn: UAR is the mean recall over the classes present in the true labels; macro-F1
    the mean F1 over the classes present in the true or the predicted labels; an undefined
    per-class ratio is 0.

    Args:
        cm: (..., K, K) counts, rows = true class, columns = predicted; leading axes are batches
            (e.g. bootstrap resamples).

    Returns:
        dict of float64 arrays: ``accuracy``, ``mean_class_accuracy``, ``macro_f1`` of shape
        (...); ``precision``, ``recall``, ``f1`` of shape (..., K). Batches with no sample give NaN.
    """
    cm = np.asarray(cm, dtype=np.float64)
    if cm.ndim < 2 or cm.shape[-1] != cm.shape[-2]:
        raise ValueError(f"cm must be (..., K, K), got shape {cm.shape}")
    tp = np.diagonal(cm, axis1=-2, axis2=-1)
    support = cm.sum(axis=-1)
    predicted = cm.sum(axis=-2)
    denom = support + predicted  # 2tp + fp + fn
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(predicted > 0, tp / predicted, 0.0)
        recall = np.where(support > 0, tp / support, 0.0)
        f1 = np.where(denom > 0, 2 * tp / denom, 0.0)
        in_true = support > 0
        in_either = denom > 0
        return {
            "accuracy": tp.sum(axis=-1) / support.sum(axis=-1),
            "mean_class_accuracy": np.where(in_true, recall, 0.0).sum(axis=-1)
            / in_true.sum(axis=-1),
            "macro_f1": np.where(in_either, f1, 0.0).sum(axis=-1) / in_either.sum(axis=-1),
            "precision": precision,
            "recall": recall,
            "f1": f1,
        }


def knn_vote(
    knn_indices: np.ndarray,
    ref_labels: np.ndarray,
    num_classes: int,
    *,
    knn_distances: np.ndarray | None = None,
    k: int | None = None,
) -> np.ndarray:
    """Majority vote of each query's k nearest reference samples.

    Tie-break: among the classes with the most votes, the one of the nearest neighbour (the
    earliest in the row) wins. Rows are taken as sorted by increasing distance; with
    ``knn_distances`` they are first sorted by it (stable, so equal distances keep column order).
    Index -1 (a missing neighbour, as FAISS returns) casts no vote.

    Args:
        knn_indices: (N, k') int indices into ``ref_labels``, -1 for none.
        ref_labels: (M,) int labels of the reference samples, in ``0..num_classes-1``.
        num_classes: K.
        knn_distances: optional (N, k') distances matching ``knn_indices``.
        k: use the first k neighbours (1 <= k <= k'); default all k'.

    Returns:
        (N,) int64 predicted classes; -1 for a row without any valid neighbour.
    """
    nk = check_int(num_classes, "num_classes", 1)
    idx = np.asarray(knn_indices)
    if idx.ndim != 2 or not np.issubdtype(idx.dtype, np.integer):
        raise ValueError(f"knn_indices must be a 2-D int array (N, k), got {idx.shape} {idx.dtype}")
    ref = check_label_array(ref_labels, "ref_labels", nk)
    if idx.size and (idx.min() < -1 or idx.max() >= ref.size):
        raise ValueError(f"knn_indices must lie in -1..{ref.size - 1}")
    if knn_distances is not None:
        dist = np.asarray(knn_distances)
        if dist.shape != idx.shape:
            raise ValueError(f"knn_distances shape {dist.shape} != knn_indices shape {idx.shape}")
        idx = np.take_along_axis(idx, np.argsort(dist, axis=1, kind="stable"), axis=1)
    if k is not None:
        if (
            isinstance(k, bool)
            or not isinstance(k, (int, np.integer))
            or not 1 <= k <= idx.shape[1]
        ):
            raise ValueError(f"k must be an int in 1..{idx.shape[1]}, got {k!r}")
        idx = idx[:, :k]
    n = idx.shape[0]
    out = np.full(n, -1, dtype=np.int64)
    step = max(1, (1 << 22) // max(nk, idx.shape[1] if idx.ndim == 2 else 1))
    for s in range(0, n, step):
        block = idx[s : s + step]
        b = block.shape[0]
        valid = block >= 0
        lab = np.where(valid, ref[np.maximum(block, 0)], 0)
        rows = np.broadcast_to(np.arange(b)[:, None], lab.shape)
        votes = np.bincount((rows * nk + lab)[valid], minlength=b * nk).reshape(b, nk)
        top = votes.max(axis=1)
        tied = votes == top[:, None]
        # first neighbour (in distance order) whose class is among the tied winners
        first = np.argmax(tied[rows, lab] & valid, axis=1)
        pred = lab[np.arange(b), first]
        out[s : s + b] = np.where(top > 0, pred, -1)
    return out


def nearest_centroid_predict(
    x: np.ndarray,
    y: np.ndarray,
    *,
    distance: str = "cosine",
    query: np.ndarray | None = None,
    leave_one_out: bool = True,
    num_classes: int | None = None,
) -> np.ndarray:
    """Predict the class whose centroid is nearest.

    Centroids are those of :mod:`ferembed.metrics.geometry` (cosine: direction of the mean unit
    vector; euclidean: the mean). Ties go to the lower class index.

    With ``query=None`` the samples of ``x`` themselves are classified and, with
    ``leave_one_out``, each sample's own class centroid is recomputed without it, in closed form:
    cosine uses ``S_c - u_i`` (``S_c`` the class's sum of unit vectors); euclidean uses
    ``||x_i - mu_c^{-i}|| = n_c / (n_c - 1) * ||x_i - mu_c||``. A sample alone in its class has
    no leave-one-out centroid, so its own class cannot be predicted for it.

    Args:
        x: (N, D) reference embeddings.
        y: (N,) int labels in ``0..K-1``.
        distance: ``"cosine"`` or ``"euclidean"``.
        query: optional (Q, D) embeddings to classify against the centroids of ``(x, y)``
            (``leave_one_out`` does not apply).
        leave_one_out: see above.
        num_classes: K (default ``max(y) + 1``); classes without samples are never predicted.

    Returns:
        (Q,) or (N,) int64 predicted classes (-1 only when no class is a candidate: a single
        class present, with one sample, under leave-one-out).
    """
    x, y, k, counts = check_labelled(x, y, distance, num_classes)
    cos = distance == "cosine"
    if query is not None:
        q, _ = check_embeddings(query, name="query")
        if q.shape[1] != x.shape[1]:
            raise ValueError(f"query has dimension {q.shape[1]}, embeddings {x.shape[1]}")
        loo = False
    else:
        q, loo = x, bool(leave_one_out)
    sums = class_sums(x, y, k, unit=cos)
    cf = counts.astype(np.float64)
    absent = counts == 0
    sq_s = np.einsum("ij,ij->i", sums, sums)  # |S_c|^2
    out = np.empty(q.shape[0], dtype=np.int64)
    for sl in row_chunks(q.shape[0]):
        qc = as64(q[sl], cos)
        dot = qc @ sums.T  # (B, K): q.S_c
        qq = np.einsum("ij,ij->i", qc, qc)
        rows = np.arange(qc.shape[0])
        if cos:
            # score = cos(q, S_c) = q.S_c / |S_c|; leave-one-out replaces S_c by S_c - u_i.
            snorm2 = np.broadcast_to(sq_s, dot.shape).copy()
            if loo:
                yc = y[sl]
                dot[rows, yc] -= qq
                snorm2[rows, yc] = sq_s[yc] - 2 * (dot[rows, yc] + qq) + qq
            with np.errstate(invalid="ignore", divide="ignore"):
                d = 1.0 - np.where(snorm2 > 1e-24, dot / np.sqrt(np.maximum(snorm2, 1e-300)), 0.0)
        else:
            with np.errstate(invalid="ignore", divide="ignore"):
                cent = sums / cf[:, None]
                sq_c = np.einsum("ij,ij->i", cent, cent)
                d = np.maximum(qq[:, None] - 2 * (qc @ np.nan_to_num(cent).T) + sq_c, 0.0)
                if loo:
                    yc = y[sl]
                    nc = cf[yc]
                    d[rows, yc] *= (nc / (nc - 1.0)) ** 2
        d[:, absent] = np.inf
        if loo:
            single = counts[y[sl]] == 1
            d[rows[single], y[sl][single]] = np.inf
        pred = np.argmin(d, axis=1)
        pred[~np.isfinite(d[rows, pred])] = -1  # no candidate class at all
        out[sl] = pred
    return out
