"""Neural-collapse diagnostics NC1-NC3 (Papyan, Han & Donoho, PNAS 2020).

Notation (K = number of classes present, only those take part):

* ``mu_c`` class means, ``mu_G`` the global mean over all N samples;
* ``M~`` the (K, D) matrix of centred class means ``mu_c - mu_G`` (rows by class);
* ``S_W = (1/N) sum_i (x_i - mu_{y_i})(x_i - mu_{y_i})^T`` (within-class covariance);
* ``S_B = (1/K) sum_c (mu_c - mu_G)(mu_c - mu_G)^T = M~^T M~ / K`` (between-class covariance).

The embeddings are used as given (the paper studies the raw penultimate features).
"""

from __future__ import annotations

import numpy as np

from ferembed.metrics._kernels import centroids_from_sums, class_sums, row_chunks
from ferembed.metrics._validation import check_labelled, require_classes

__all__ = ["nc1", "nc2", "nc3"]


def _centred_means(x, y, what: str):
    """``(x, y, counts, present, cent, mt)``: class means (K_all, D) and M~ (K, D) of present."""
    x, y, k, counts = check_labelled(x, y)
    require_classes(counts, what)
    present = counts > 0
    sums = class_sums(x, y, k)
    cent = centroids_from_sums(sums, counts)
    mu_g = sums.sum(axis=0) / counts.sum()
    return x, y, counts, present, cent, cent[present] - mu_g


def nc1(x: np.ndarray, y: np.ndarray) -> float:
    """NC1, within-class variability collapse: ``tr(S_W S_B^+) / K`` (-> 0 under collapse).

    ``S_B^+`` is the Moore-Penrose pseudo-inverse, with singular values below
    ``D * eps * sigma_max`` treated as zero (``numpy.linalg.pinv``'s default). Computed without
    any (D, D) matrix: with ``M~ / sqrt(K) = U Sigma V^T``, ``tr(S_W S_B^+) = sum_r
    (v_r^T S_W v_r) / sigma_r^2`` and ``v_r^T S_W v_r`` is the mean squared projection of the
    within-class residuals on ``v_r``.

    Args:
        x: (N, D) embeddings.
        y: (N,) int labels.

    Raises:
        ValueError: fewer than 2 classes present.
    """
    x, y, counts, present, cent, mt = _centred_means(x, y, "nc1")
    kp = int(present.sum())
    _, sig, vt = np.linalg.svd(mt / np.sqrt(kp), full_matrices=False)
    sig2 = sig**2
    if sig2.size == 0 or sig2[0] == 0:
        return float("nan")
    keep = sig2 > x.shape[1] * np.finfo(np.float64).eps * sig2[0]
    v = vt[keep].T
    proj = np.zeros(v.shape[1])
    for sl in row_chunks(x.shape[0]):
        resid = x[sl].astype(np.float64) - cent[y[sl]]
        proj += ((resid @ v) ** 2).sum(axis=0)
    proj /= x.shape[0]
    return float((proj / sig2[keep]).sum() / kp)


def nc2(x: np.ndarray, y: np.ndarray) -> dict:
    """NC2, convergence of the centred class means to a simplex equiangular tight frame.

    Returns:
        dict with

        * ``equinorm``: coefficient of variation of the norms ``||mu_c - mu_G||``,
          ``std_c / mean_c`` (population std; -> 0 under collapse);
        * ``equiangularity``: population std over class pairs c < c' of
          ``cos(mu_c - mu_G, mu_c' - mu_G)`` (-> 0; Papyan et al. Fig. 4);
        * ``max_angle``: mean over pairs c != c' of ``|cos(...) + 1/(K - 1)|`` (-> 0 when the
          angles are the simplex's maximal ones; Fig. 5);
        * ``norms``: (K_all,) the centred-mean norms (NaN for absent classes);
        * ``cosines``: (K_all, K_all) their pairwise cosines (NaN for absent classes).

    Raises:
        ValueError: fewer than 2 classes present.
    """
    _, _, counts, present, _, mt = _centred_means(x, y, "nc2")
    kp = int(present.sum())
    norms = np.linalg.norm(mt, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        u = mt / norms[:, None]
    cos = np.clip(u @ u.T, -1.0, 1.0)
    iu = np.triu_indices(kp, 1)
    off = cos[iu]
    k = counts.size
    all_norms = np.full(k, np.nan)
    all_norms[present] = norms
    all_cos = np.full((k, k), np.nan)
    all_cos[np.ix_(present, present)] = cos
    return {
        "equinorm": float(norms.std() / norms.mean()) if norms.mean() > 0 else float("nan"),
        "equiangularity": float(off.std()),
        "max_angle": float(np.abs(off + 1.0 / (kp - 1)).mean()),
        "norms": all_norms,
        "cosines": all_cos,
    }


def nc3(x: np.ndarray, y: np.ndarray, head_weight: np.ndarray) -> float:
    """NC3, self-duality of the classifier and the class means.

    ``|| W / ||W||_F - M~ / ||M~||_F ||_F`` over the classes present (rows of ``W`` of absent
    classes are dropped too); 0 when the head's weight rows are proportional to the centred
    class means. (Papyan et al. plot the square of this quantity.)

    Args:
        x: (N, D) embeddings.
        y: (N,) int labels in ``0..C-1``.
        head_weight: (C, D) linear-head weight, ``logits = x @ W.T + b``.

    Raises:
        ValueError: shape mismatch, a zero weight or fewer than 2 classes present.
    """
    w = np.asarray(head_weight, dtype=np.float64)
    xa = np.asarray(x)
    if w.ndim != 2 or xa.ndim != 2 or w.shape[1] != xa.shape[1]:
        raise ValueError(f"head_weight must have shape (C, {xa.shape[-1]}), got {w.shape}")
    if not np.isfinite(w).all():
        raise ValueError("head_weight has NaN/Inf")
    _, y, counts, present, _, mt = _centred_means(x, y, "nc3")
    if counts.size > w.shape[0]:
        raise ValueError(f"labels reach {counts.size - 1} but head_weight has {w.shape[0]} rows")
    wp = w[: counts.size][present]
    nw, nm = np.linalg.norm(wp), np.linalg.norm(mt)
    if nw == 0 or nm == 0:
        raise ValueError("nc3 is undefined for a zero head weight or coinciding class means")
    return float(np.linalg.norm(wp / nw - mt / nm))
