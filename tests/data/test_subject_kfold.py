"""subject_kfold / fold_indices / sample_folds: pure functions, expected values by hand."""

from __future__ import annotations

import numpy as np
import pytest

from ferembed.data.splits import fold_indices, sample_folds, subject_kfold


def expand(sizes: dict[str, int]) -> list[str]:
    return [s for s, n in sizes.items() for _ in range(n)]


def test_greedy_assignment_by_hand():
    # a5 -> f0, b4 -> f1, c3 -> f1 (4<5), d2 -> f0 (5<7), e1 -> f0 (7=7, lowest index).
    subjects = expand({"e": 1, "c": 3, "a": 5, "d": 2, "b": 4})
    assert subject_kfold(subjects, 2) == [["a", "d", "e"], ["b", "c"]]


def test_equal_sizes_tie_by_id_round_robin():
    subjects = expand({s: 2 for s in "fedcba"})
    assert subject_kfold(subjects, 3) == [["a", "d"], ["b", "e"], ["c", "f"]]


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_folds_disjoint_cover_and_balanced(seed):
    rng = np.random.default_rng(123)
    sizes = {f"S{i:03d}": int(n) for i, n in enumerate(rng.integers(1, 10, size=60))}
    subjects = expand(sizes)
    folds = subject_kfold(subjects, 10, seed=seed)
    flat = [s for fold in folds for s in fold]
    assert len(flat) == len(set(flat)) == len(sizes)
    assert set(flat) == set(sizes)
    loads = [sum(sizes[s] for s in fold) for fold in folds]
    # Greedy longest-first: the heaviest and lightest folds differ by at most one subject's size.
    assert max(loads) - min(loads) <= max(sizes.values())
    assert subject_kfold(subjects, 10, seed=seed) == folds  # deterministic


def test_seed_only_reorders_ties():
    subjects = expand({s: 1 for s in "abcdefgh"})
    by_id = subject_kfold(subjects, 4, seed=0)
    shuffled = [subject_kfold(subjects, 4, seed=s) for s in range(1, 6)]
    assert any(f != by_id for f in shuffled)
    assert all(sorted(len(f) for f in folds) == [2, 2, 2, 2] for folds in shuffled)


def test_sample_order_does_not_matter():
    subjects = expand({"a": 3, "b": 2, "c": 2, "d": 1})
    assert subject_kfold(subjects, 2) == subject_kfold(subjects[::-1], 2)


@pytest.mark.parametrize("num_folds", [1, 5])
def test_num_folds_out_of_range(num_folds):
    with pytest.raises(ValueError, match=r"num_folds must be in \[2, 4\]"):
        subject_kfold(list("abcd"), num_folds)


def test_empty_subject_id():
    with pytest.raises(ValueError, match="non-empty"):
        subject_kfold(["a", "", "b"], 2)


def test_negative_seed():
    with pytest.raises(ValueError, match="seed must be >= 0"):
        subject_kfold(list("abc"), 2, seed=-1)


def test_fold_indices_by_hand():
    subjects = ["a", "b", "a", "c", "b", "d"]
    folds = [["a", "d"], ["b", "c"]]
    train, test = fold_indices(subjects, folds, 0)
    assert test.tolist() == [0, 2, 5] and train.tolist() == [1, 3, 4]
    assert sample_folds(subjects, folds).tolist() == [0, 1, 0, 1, 1, 0]


def test_fold_indices_fold_out_of_range():
    with pytest.raises(ValueError, match=r"fold must be in \[0, 1\]"):
        fold_indices(["a", "b"], [["a"], ["b"]], 2)


def test_subject_in_no_fold():
    with pytest.raises(ValueError, match="'z' is in no fold"):
        sample_folds(["a", "z"], [["a"], ["b"]])


def test_subject_in_two_folds():
    with pytest.raises(ValueError, match="'a' is in folds 0 and 1"):
        sample_folds(["a"], [["a"], ["a"]])
