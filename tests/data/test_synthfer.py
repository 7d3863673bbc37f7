"""SynthFER: determinism, shapes, class and identity structure, the registered splits, and that the
expressions are learnable at difficulty 0 but not trivial at the default difficulty."""

from __future__ import annotations

import numpy as np
import pytest

from ferembed.data._registry import create_dataset, get_dataset_info
from ferembed.data.synthfer import (
    CLASS_NAMES,
    SynthFERBatch,
    SynthFERDataset,
    create_synthfer,
    generate_synthfer,
)
from ferembed.data.vocab import FER2013_ORDER
from ferembed.errors import DataError


@pytest.fixture(scope="module")
def test_split() -> SynthFERDataset:
    return create_dataset("synthfer", split="test")


def _nearest_class_mean_accuracy(train: SynthFERBatch, test: SynthFERBatch) -> float:
    """Accuracy of the nearest class mean on per-image standardised pixels."""

    def standardise(images: np.ndarray) -> np.ndarray:
        x = images.reshape(len(images), -1).astype(np.float64)
        return (x - x.mean(1, keepdims=True)) / x.std(1, keepdims=True)

    x_tr, x_te = standardise(train.images), standardise(test.images)
    means = np.stack([x_tr[train.labels == c].mean(0) for c in range(len(CLASS_NAMES))])
    # argmin ||x - m||^2 == argmax (x.m - |m|^2 / 2)
    pred = (x_te @ means.T - 0.5 * (means**2).sum(1)).argmax(1)
    return float((pred == test.labels).mean())


def test_class_names_follow_fer2013():
    assert CLASS_NAMES == list(FER2013_ORDER)


def test_shapes_and_dtypes():
    b = generate_synthfer(30, seed=1, image_size=40)
    assert b.images.shape == (30, 40, 40) and b.images.dtype == np.uint8
    assert b.labels.shape == (30,) and b.labels.dtype == np.int64
    assert b.identities.shape == (30,) and b.identities.dtype == np.int64
    assert b.labels.min() >= 0 and b.labels.max() < 7
    assert all(v.shape == (30,) for v in b.params.values())
    # Faces, not flat frames: every image uses a real range of gray levels.
    spread = b.images.reshape(30, -1).std(1)
    assert spread.min() > 10


def test_same_seed_same_bytes_other_seed_differs():
    # 300 images span two render chunks.
    a = generate_synthfer(300, seed=7)
    b = generate_synthfer(300, seed=7)
    c = generate_synthfer(300, seed=8)
    assert a.images.tobytes() == b.images.tobytes()
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_array_equal(a.identities, b.identities)
    assert a.images.tobytes() != c.images.tobytes()
    assert len(np.unique(a.images.reshape(300, -1), axis=0)) == 300


def test_balanced_classes():
    b = generate_synthfer(353, seed=0)
    counts = np.bincount(b.labels, minlength=7)
    assert counts.sum() == 353
    assert set(counts.tolist()) <= {50, 51}


def test_class_weights_give_exact_counts():
    b = generate_synthfer(90, seed=0, class_weights=[3, 1, 1, 1, 1, 1, 1])
    np.testing.assert_array_equal(np.bincount(b.labels, minlength=7), [30, 10, 10, 10, 10, 10, 10])
    b = generate_synthfer(20, seed=0, class_weights=[1, 0, 1, 0, 0, 0, 0])
    np.testing.assert_array_equal(np.bincount(b.labels, minlength=7), [10, 0, 10, 0, 0, 0, 0])


def test_identities_show_several_expressions_and_keep_their_face():
    b = generate_synthfer(60, seed=2, num_identities=6, identity_offset=100)
    assert set(b.identities.tolist()) == set(range(100, 106))
    assert np.all(np.bincount(b.identities - 100) == 10)
    for i in range(100, 106):
        assert len(set(b.labels[b.identities == i].tolist())) >= 3
        # One face per identity: shape parameters are constant within it.
        assert np.ptp(b.params["head_a"][b.identities == i]) == 0
    # An identity's face depends on (seed, id) only, not on n or the other identities.
    other = generate_synthfer(20, seed=2, num_identities=2, identity_offset=104)
    for i in (104, 105):
        assert (
            other.params["eye_dx"][other.identities == i][0]
            == b.params["eye_dx"][b.identities == i][0]
        )


def test_difficulty_zero_renders_one_image_per_identity_and_expression():
    b = generate_synthfer(140, seed=4, num_identities=4, difficulty=0.0)
    assert np.all(b.params["occluded"] == 0) and np.all(b.params["angle"] == 0)
    key = b.identities * 7 + b.labels
    for k in np.unique(key):
        imgs = b.images[key == k]
        assert all(np.array_equal(imgs[0], im) for im in imgs[1:])
    # Different expressions of one identity differ.
    first = {int(lab): b.images[(b.identities == 0) & (b.labels == lab)][0] for lab in range(7)}
    assert all(not np.array_equal(first[i], first[j]) for i in range(7) for j in range(i))


def test_difficulty_adds_nuisance():
    b = generate_synthfer(400, seed=5, difficulty=1.0)
    assert 0.05 < b.params["occluded"].mean() < 0.3
    assert np.std(b.params["angle"]) > 0.03
    assert np.std(b.params["intensity"]) > 0.1


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(n=0),
        dict(n=10, seed=-1),
        dict(n=10, difficulty=-0.5),
        dict(n=10, difficulty=float("nan")),
        dict(n=10, image_size=8),
        dict(n=10, num_identities=0),
        dict(n=10, identity_offset=-1),
        dict(n=10, class_weights=[1, 1, 1]),
        dict(n=10, class_weights=[1, -1, 1, 1, 1, 1, 1]),
        dict(n=10, class_weights=[0] * 7),
    ],
)
def test_bad_parameters_raise(kwargs):
    with pytest.raises(ValueError):
        generate_synthfer(**kwargs)


def test_registered_without_root():
    info = get_dataset_info("synthfer")
    assert not info.needs_root and info.splits == ("train", "val", "test")


def test_test_split_through_registry(test_split):
    ds = test_split
    assert isinstance(ds, SynthFERDataset) and ds.name == "synthfer"
    assert len(ds) == 1400 and ds.class_names == CLASS_NAMES
    np.testing.assert_array_equal(ds.class_counts(), [200] * 7)
    assert ds.samples[0].sample_id == "synthfer-test-000000"
    assert ds.samples[1399].sample_id == "synthfer-test-001399"
    assert len({s.sample_id for s in ds.samples}) == 1400
    assert all(s.split == "test" and s.path == "" for s in ds.samples)
    assert ds.samples[5].subject == f"id{int(ds.identities[5]):05d}"
    image, label = ds[5]
    assert image.shape == (48, 48) and image.dtype == np.uint8 and label == ds.samples[5].label
    assert ds.load_all().shape == (1400, 48, 48)


def test_splits_are_identity_disjoint_and_deterministic(test_split):
    train = create_synthfer(None, "train", n=350)
    val = create_synthfer(None, "val", n=140)
    subjects = [{s.subject for s in ds.samples} for ds in (train, val, test_split)]
    assert len(val) == 140
    assert not subjects[0] & subjects[1]
    assert not subjects[0] & subjects[2]
    assert not subjects[1] & subjects[2]
    again = create_dataset("synthfer", root="ignored", split="val", n=140)
    assert again.images.tobytes() == val.images.tobytes()
    other = create_synthfer(None, "val", n=140, seed=1)
    assert other.images.tobytes() != val.images.tobytes()


def test_imbalance_gives_long_tailed_train_split():
    train = create_synthfer(None, "train", n=700, imbalance=10)
    counts = train.class_counts()
    assert counts.sum() == 700
    assert CLASS_NAMES[int(counts.argmax())] == "happy"
    assert CLASS_NAMES[int(counts.argmin())] == "disgust"
    assert counts.max() / counts.min() == pytest.approx(10, rel=0.05)
    # Only the training split is long-tailed.
    val = create_synthfer(None, "val", n=140, imbalance=10)
    np.testing.assert_array_equal(val.class_counts(), [20] * 7)


def test_factory_bad_parameters_raise_data_error():
    with pytest.raises(DataError, match="imbalance"):
        create_synthfer(None, "train", n=70, imbalance=0.5)
    with pytest.raises(DataError, match="difficulty"):
        create_synthfer(None, "train", n=70, difficulty=-1)
    with pytest.raises(DataError, match="split"):
        create_synthfer(None, "holdout")


def test_expressions_learnable_when_clean_but_not_trivial_by_default():
    accs = {}
    for d in (0.0, 1.0):
        train = generate_synthfer(560, seed=10, difficulty=d)
        test = generate_synthfer(280, seed=11, difficulty=d, identity_offset=50_000)
        accs[d] = _nearest_class_mean_accuracy(train, test)
    chance = 1 / 7
    assert accs[0.0] > 2 * chance, accs
    assert accs[1.0] < 0.5, accs
    assert accs[0.0] > accs[1.0] + 0.15, accs
