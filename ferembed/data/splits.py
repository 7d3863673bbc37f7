"""Subject-independent k-fold splits (the CK+/Oulu/MMI protocol).

No subject may appear in both the train and the test part of a fold, so folds are made of whole
subjects. The fold lists are data: a run saves them (``folds.json``) because the assignment alone
moves CK+ accuracy by about a point.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np


def subject_kfold(subjects: Sequence[str], num_folds: int, seed: int = 0) -> list[list[str]]:
    """Split subjects into ``num_folds`` disjoint groups holding near-equal numbers of samples.

    Greedy longest-first assignment: subjects are taken by number of samples, largest first, and
    each goes to the fold with the fewest samples so far (ties: the lowest fold index). Among
    subjects of equal size the order is by id when ``seed == 0``, else a shuffle seeded by
    ``seed``; so the result is a deterministic function of ``(subjects, num_folds, seed)``.

    Args:
        subjects: the subject id of every sample, ``(N,)``; a subject's size is its number of
            occurrences.
        num_folds: number of folds, ``2 <= num_folds <= number of distinct subjects``.
        seed: tie-breaking seed, ``>= 0``.

    Returns:
        ``num_folds`` lists of subject ids (each sorted); together they hold every subject once.

    Raises:
        ValueError: ``num_folds`` out of range, a negative seed, or an empty subject id.
    """
    counts = Counter(str(s) for s in subjects)
    if "" in counts:
        raise ValueError("subject_kfold: subject ids must be non-empty")
    if not 2 <= num_folds <= len(counts):
        raise ValueError(
            f"subject_kfold: num_folds must be in [2, {len(counts)}] (the number of distinct "
            f"subjects), got {num_folds}"
        )
    if seed < 0:
        raise ValueError(f"subject_kfold: seed must be >= 0, got {seed}")
    order = sorted(counts)
    if seed:
        order = [order[i] for i in np.random.default_rng(seed).permutation(len(order))]
    order.sort(key=lambda s: -counts[s])  # stable: equal sizes keep the id / shuffled order
    loads = [0] * num_folds
    folds: list[list[str]] = [[] for _ in range(num_folds)]
    for subject in order:
        lightest = min(range(num_folds), key=lambda f: (loads[f], f))
        folds[lightest].append(subject)
        loads[lightest] += counts[subject]
    return [sorted(fold) for fold in folds]


def sample_folds(subjects: Sequence[str], folds: Sequence[Sequence[str]]) -> np.ndarray:
    """The fold index of every sample, ``(N,)`` int64.

    Raises:
        ValueError: a subject in no fold, or in more than one.
    """
    fold_of: dict[str, int] = {}
    for f, members in enumerate(folds):
        for subject in members:
            if subject in fold_of:
                raise ValueError(f"subject {subject!r} is in folds {fold_of[subject]} and {f}")
            fold_of[subject] = f
    try:
        return np.fromiter((fold_of[str(s)] for s in subjects), dtype=np.int64, count=len(subjects))
    except KeyError as exc:
        raise ValueError(f"subject {exc.args[0]!r} is in no fold") from None


def fold_indices(
    subjects: Sequence[str], folds: Sequence[Sequence[str]], fold: int
) -> tuple[np.ndarray, np.ndarray]:
    """Sample indices of the train and test parts of fold ``fold``.

    Args:
        subjects: the subject id of every sample, ``(N,)``.
        folds: subject lists per fold, as returned by :func:`subject_kfold`.
        fold: the held-out fold, ``0 <= fold < len(folds)``.

    Returns:
        ``(train, test)``: sorted int64 index arrays; test holds the samples whose subject is in
        ``folds[fold]``, train all the others.
    """
    if not 0 <= fold < len(folds):
        raise ValueError(f"fold must be in [0, {len(folds) - 1}], got {fold}")
    which = sample_folds(subjects, folds)
    return np.flatnonzero(which != fold), np.flatnonzero(which == fold)
