"""Per-sample neighbourhood scores: kNN label disagreement and the identity confound.

Both read the labels (and subject ids) of each query's k nearest references, i.e. one kNN search
(:func:`ferembed.metrics._knn.compute_knn` or :func:`ferembed.metrics.retrieval.compute_retrieval`)
shared with the other kNN-based metrics.

* **kNN label disagreement** of a sample = fraction of its k nearest neighbours whose label
  differs from its own. A sample deep inside another class's region scores near 1: a candidate
  label error (or a genuinely ambiguous face) found without any classifier logits.
* **Identity confound** (needs subject ids): FER embeddings often group faces by *who* rather than
  *which expression*. For each sample with a known subject, over its neighbours with known
  subjects: the fraction sharing its subject and the fraction sharing its expression. The summary
  compares the same-subject rate with its chance level (random neighbours) and splits neighbour
  pairs into same-subject/other-expression (identity pulls) vs other-subject/same-expression
  (what an expression embedding should produce).
"""

from __future__ import annotations

import warnings

import numpy as np

__all__ = [
    "identity_confound",
    "identity_samples",
    "label_disagreement",
    "label_disagreement_samples",
]


def _check_knn_labels(neighbor_labels: np.ndarray, labels: np.ndarray):
    nl, y = np.asarray(neighbor_labels), np.asarray(labels)
    if nl.ndim != 2 or y.ndim != 1 or nl.shape[0] != y.shape[0]:
        raise ValueError(
            f"neighbor_labels must be (Q, k) and labels (Q,), got {nl.shape} and {y.shape}"
        )
    if nl.shape[1] == 0:
        raise ValueError("neighbor_labels has k = 0 columns")
    return nl, y


def label_disagreement_samples(neighbor_labels: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Fraction of each sample's k nearest neighbours with a different label.

    Args:
        neighbor_labels: (Q, k) labels of the neighbours (``reference_labels[knn.indices]``);
            entries < 0 are ignored: pass -1 where an approximate index found no neighbour
            (``knn.indices == -1``).
        labels: (Q,) the queries' own labels.

    Returns:
        (Q,) float64 in [0, 1]; NaN for a row without any valid neighbour.
    """
    nl, y = _check_knn_labels(neighbor_labels, labels)
    valid = nl >= 0
    n_valid = valid.sum(axis=1)
    differ = ((nl != y[:, None]) & valid).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n_valid > 0, differ / n_valid, np.nan)


def label_disagreement(neighbor_labels: np.ndarray, labels: np.ndarray) -> float:
    """Mean kNN label disagreement (1 - mean precision@k when every query has a neighbour)."""
    v = label_disagreement_samples(neighbor_labels, labels)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(np.nanmean(v))


def _known(subjects: np.ndarray) -> np.ndarray:
    s = np.asarray(subjects, dtype=object)
    return np.array([v is not None and v == v and str(v) != "" for v in s], dtype=bool)


def _neighbor_codes(knn_indices, labels, subjects, reference_labels, reference_subjects):
    """Validate and encode: query/neighbour subject codes (-1 = unknown) and neighbour labels."""
    idx = np.asarray(knn_indices)
    y = np.asarray(labels)
    subj = np.asarray(subjects, dtype=object)
    if idx.ndim != 2 or y.shape != (idx.shape[0],) or subj.shape != (idx.shape[0],):
        raise ValueError(
            f"knn_indices must be (Q, k) with labels and subjects (Q,), got {idx.shape}, "
            f"{y.shape}, {subj.shape}"
        )
    ref_y = y if reference_labels is None else np.asarray(reference_labels)
    ref_s = subj if reference_subjects is None else np.asarray(reference_subjects, dtype=object)
    if ref_y.shape != ref_s.shape:
        raise ValueError(
            f"reference_labels {ref_y.shape} and reference_subjects {ref_s.shape} differ in length"
        )
    if idx.size and idx.max() >= ref_y.shape[0]:
        raise ValueError(f"knn_indices refer to row {idx.max()}, reference has {ref_y.shape[0]}")
    # Subjects as integer codes shared by queries and references; unknown = -1.
    both = np.concatenate([subj, ref_s])
    known = _known(both)
    codes = np.full(both.size, -1, dtype=np.int64)
    uniq, inv = np.unique(both[known].astype(str), return_inverse=True)
    codes[known] = inv
    q_code, r_code = codes[: subj.size], codes[subj.size :]
    safe = np.where(idx >= 0, idx, 0)
    nb_code = np.where(idx >= 0, r_code[safe], -1)
    valid = (nb_code >= 0) & (q_code[:, None] >= 0)
    return {
        "y": y,
        "ref_y": ref_y,
        "q_code": q_code,
        "r_code": r_code,
        "nb_code": nb_code,
        "nb_y": ref_y[safe],
        "valid": valid,
        "n_subjects": int(uniq.size),
    }


def _agreement(c: dict) -> tuple[np.ndarray, np.ndarray]:
    """(Q, k) masks of the valid neighbours that share the query's subject / expression."""
    valid = c["valid"]
    return (c["nb_code"] == c["q_code"][:, None]) & valid, (c["nb_y"] == c["y"][:, None]) & valid


def identity_samples(
    knn_indices: np.ndarray,
    labels: np.ndarray,
    subjects: np.ndarray,
    *,
    reference_labels: np.ndarray | None = None,
    reference_subjects: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Per-sample same-subject and same-expression neighbour rates.

    Args:
        knn_indices: (Q, k) reference rows of each query's neighbours (``-1`` = none).
        labels: (Q,) query labels.
        subjects: (Q,) query subject ids; ``""`` or None = unknown.
        reference_labels: (M,) labels of the searched rows (None: ``labels``, leave-one-out).
        reference_subjects: (M,) subject ids of the searched rows (None: ``subjects``).

    Returns:
        ``{"same_subject": (Q,), "same_expression": (Q,), "n_known": (Q,)}``: rates over the
        neighbours whose subject is known, NaN for queries with an unknown subject or no such
        neighbour; ``n_known`` counts those neighbours.
    """
    c = _neighbor_codes(knn_indices, labels, subjects, reference_labels, reference_subjects)
    n_known = c["valid"].sum(axis=1)
    same_s, same_e = (m.sum(axis=1) for m in _agreement(c))
    with np.errstate(invalid="ignore", divide="ignore"):
        return {
            "same_subject": np.where(n_known > 0, same_s / n_known, np.nan),
            "same_expression": np.where(n_known > 0, same_e / n_known, np.nan),
            "n_known": n_known,
        }


def identity_confound(
    knn_indices: np.ndarray,
    labels: np.ndarray,
    subjects: np.ndarray,
    *,
    reference_labels: np.ndarray | None = None,
    reference_subjects: np.ndarray | None = None,
    leave_one_out: bool | None = None,
) -> dict[str, float | int | None]:
    """How often neighbours share the subject vs the expression, against chance.

    Arguments as in :func:`identity_samples`, plus ``leave_one_out``: whether the queries are
    rows of the reference set searched without themselves (None: when ``reference_labels`` is
    None). It only changes the chance rates (a query is not its own candidate neighbour). Pair
    rates are over all (query, neighbour) pairs where both subjects are known; chance rates are
    those of a uniformly random other reference with a known subject.

    Returns:
        ``{same_subject_rate, same_expression_rate, same_subject_other_expression_rate,
        other_subject_same_expression_rate, chance_same_subject, chance_same_expression,
        subject_lift, n_queries, n_subjects}``; ``subject_lift`` = same_subject_rate /
        chance_same_subject (> 1: neighbours share the subject more than chance, i.e. the
        embedding groups by identity). Rates are None when no pair has two known subjects.
    """
    c = _neighbor_codes(knn_indices, labels, subjects, reference_labels, reference_subjects)
    valid = c["valid"]
    n_pairs = int(valid.sum())
    out: dict[str, float | int | None] = {
        "n_queries": int(valid.any(axis=1).sum()),
        "n_subjects": c["n_subjects"],
    }
    if n_pairs == 0:
        keys = (
            "same_subject_rate",
            "same_expression_rate",
            "same_subject_other_expression_rate",
            "other_subject_same_expression_rate",
            "chance_same_subject",
            "chance_same_expression",
            "subject_lift",
        )
        return out | dict.fromkeys(keys)
    same_s, same_e = _agreement(c)
    loo = reference_labels is None if leave_one_out is None else bool(leave_one_out)
    chance_s, chance_e = _chance_rates(c["q_code"], c["y"], c["r_code"], c["ref_y"], loo)
    rate_s = float(same_s.sum() / n_pairs)
    out.update(
        same_subject_rate=rate_s,
        same_expression_rate=float(same_e.sum() / n_pairs),
        same_subject_other_expression_rate=float((same_s & ~same_e).sum() / n_pairs),
        other_subject_same_expression_rate=float((~same_s & same_e).sum() / n_pairs),
        chance_same_subject=chance_s,
        chance_same_expression=chance_e,
        subject_lift=rate_s / chance_s if chance_s > 0 else None,
    )
    return out


def _chance_rates(q_code, q_y, r_code, r_y, loo: bool) -> tuple[float, float]:
    """P(random other reference shares the subject / the expression), over known subjects."""
    qk, rk = q_code >= 0, r_code >= 0
    n_ref = int(rk.sum())
    if n_ref - int(loo) <= 0 or not qk.any():
        return float("nan"), float("nan")
    size = max(int(q_code.max(initial=-1)), int(r_code.max(initial=-1))) + 1
    ref_subj = np.bincount(r_code[rk], minlength=size)
    ny = max(int(q_y.max()), int(r_y.max())) + 1
    ref_lab = np.bincount(r_y[rk], minlength=ny)
    # In leave-one-out a query's own row is not a candidate neighbour.
    same_s = ref_subj[q_code[qk]] - int(loo)
    same_e = ref_lab[q_y[qk]] - int(loo)
    denom = n_ref - int(loo)
    return float(same_s.mean() / denom), float(same_e.mean() / denom)
