"""Epoch-seeded batch samplers."""

from __future__ import annotations

import numpy as np
import pytest

from ferembed.training import BalancedBatchSampler, RandomBatchSampler

# Imbalanced labels: class 3 has only 2 samples, class 4 none.
LABELS = np.array([0] * 30 + [1] * 12 + [2] * 6 + [3] * 2)


def test_balanced_batches_have_p_classes_times_k_samples():
    s = BalancedBatchSampler(LABELS, classes_per_batch=3, samples_per_class=4, seed=0)
    assert len(s) == len(LABELS) // 12
    seen_classes = set()
    for batch in s.batches(0):
        assert batch.shape == (12,)
        labels = LABELS[batch]
        classes, counts = np.unique(labels, return_counts=True)
        assert len(classes) == 3 and np.all(counts == 4)
        seen_classes |= set(classes.tolist())
        # Within a class, samples are distinct unless the class is too small (class 3).
        for c in classes:
            members = batch[labels == c]
            if (LABELS == c).sum() >= 4:
                assert len(set(members.tolist())) == 4
    assert 4 not in seen_classes


def test_balanced_sampler_oversamples_rare_classes():
    s = BalancedBatchSampler(LABELS, 4, 3, num_batches=50, seed=1)
    counts = np.bincount(LABELS[np.concatenate(s.batches(0))], minlength=4)
    assert np.all(counts == counts[0])  # every class with samples in every batch


def test_balanced_sampler_is_a_function_of_seed_and_epoch():
    a = BalancedBatchSampler(LABELS, 2, 3, seed=5)
    b = BalancedBatchSampler(LABELS, 2, 3, seed=5)
    assert all(np.array_equal(x, y) for x, y in zip(a.batches(2), b.batches(2), strict=True))
    assert not all(np.array_equal(x, y) for x, y in zip(a.batches(2), a.batches(3), strict=True))
    a.set_epoch(2)
    assert [list(x) for x in a.batches(2)] == list(a)


def test_balanced_sampler_errors():
    with pytest.raises(ValueError, match="only 4 classes"):
        BalancedBatchSampler(LABELS, 5, 2)
    with pytest.raises(ValueError, match=">= 1"):
        BalancedBatchSampler(LABELS, 2, 0)


def test_random_sampler_permutes_and_drops_the_short_batch():
    s = RandomBatchSampler(50, 16, seed=0)
    batches = s.batches(0)
    assert len(s) == len(batches) == 3
    flat = np.concatenate(batches)
    assert len(set(flat.tolist())) == 48
    assert not np.array_equal(flat, np.sort(flat))
    assert not np.array_equal(flat, np.concatenate(s.batches(1)))
    keep_all = RandomBatchSampler(50, 16, seed=0, drop_last=False)
    assert len(keep_all) == 4 and sorted(np.concatenate(keep_all.batches(0))) == list(range(50))


def test_random_sampler_small_dataset_is_one_batch():
    s = RandomBatchSampler(5, 16)
    assert len(s) == 1 and sorted(s.batches(0)[0]) == list(range(5))
