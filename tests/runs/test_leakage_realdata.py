"""`ferembed leakage` on the real FER2013 images: every exact test/train copy is found."""

from collections import defaultdict

import numpy as np
import pytest

from ferembed.data import create_dataset
from ferembed.runs import leakage, make_samples, write_run

pytestmark = [pytest.mark.realdata, pytest.mark.slow]


def _image_run(path, root, split):
    """A run of the split's images as thumbnails (embeddings are irrelevant here: random)."""
    ds = create_dataset("fer2013", root, split=split)
    thumbs = ds.load_all()
    samples = make_samples(
        ds.labels, ds.class_names, paths=[s.path for s in ds.samples], splits=split
    )
    emb = np.random.default_rng(0).normal(size=(len(ds), 4)).astype(np.float32)
    write_run(path, embeddings=emb, samples=samples, class_names=ds.class_names, thumbs=thumbs)
    return path, thumbs


def test_pixel_identical_copies_are_all_found(fer2013_root, tmp_path):
    test, t_test = _image_run(tmp_path / "test", fer2013_root, "test")
    train, t_train = _image_run(tmp_path / "train", fer2013_root, "train")
    # Independent reference: byte-identical images, matched through a dict of their raw bytes.
    by_bytes = defaultdict(list)
    for j, img in enumerate(t_train):
        by_bytes[img.tobytes()].append(j)
    identical = {(i, j) for i, img in enumerate(t_test) for j in by_bytes.get(img.tobytes(), ())}
    assert len(identical) > 100  # FER2013 is known to hold hundreds of cross-split copies

    pairs = leakage.find_near_duplicates(test, train)
    exact = pairs[pairs["pixel_distance"] == 0]
    assert set(zip(exact["a_row"], exact["b_row"], strict=True)) == identical
    assert (exact["hamming"] == 0).all()
    # The near (not identical) copies are the larger part of the leak at the default radius.
    assert len(pairs) > len(identical)
