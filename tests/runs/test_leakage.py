"""`ferembed leakage`: near-duplicates planted into a second run (re-encoded JPEGs) are found."""

import io

import numpy as np
import pandas as pd
import pytest
from PIL import Image, ImageEnhance

from ferembed.cli import main
from ferembed.runs import leakage, load_run, make_samples, write_run

CLASSES = ["angry", "happy", "sad"]
N_A, N_B, D = 60, 90, 16
# (row in A, row in B) of the planted copies; B's other rows are unrelated images.
PLANTED = [(3, 10), (7, 0), (8, 41), (20, 89), (33, 55), (34, 56), (51, 12), (59, 70)]


def _smooth_images(rng: np.random.Generator, n: int, size: int = 48) -> np.ndarray:
    """(n, size, size) uint8 random smooth images: bicubic noise at 4, 8 and 16 cells."""
    out = np.empty((n, size, size), np.uint8)
    for k in range(n):
        acc = np.zeros((size, size), np.float64)
        for cells, weight in ((4, 1.0), (8, 0.6), (16, 0.3)):
            grid = rng.uniform(0, 255, (cells, cells)).astype(np.float32)
            img = Image.fromarray(grid, mode="F").resize((size, size), Image.BICUBIC)
            acc += weight * np.asarray(img)
        out[k] = ((acc - acc.min()) / (acc.max() - acc.min()) * 215 + 20).astype(np.uint8)
    return out


def _reencode(img: np.ndarray, quality: int, brightness: float) -> np.ndarray:
    """``img`` slightly brighter or darker, saved as JPEG at ``quality`` and decoded again."""
    im = ImageEnhance.Brightness(Image.fromarray(img)).enhance(brightness)
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=quality)
    buf.seek(0)
    return np.asarray(Image.open(buf).convert("L"))


def _run(path, thumbs, x, labels, preds, split, *, with_thumbs=True):
    n = len(labels)
    samples = make_samples(
        labels,
        CLASSES,
        sample_ids=[f"{split}{i}" for i in range(n)],
        paths=[f"{split}/{CLASSES[c]}/{i}.jpg" for i, c in enumerate(labels)],
        preds=preds,
        splits=split,
    )
    write_run(
        path,
        embeddings=x,
        samples=samples,
        class_names=CLASSES,
        thumbs=thumbs if with_thumbs else None,
    )
    return path


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A (test-like) and B (train-like) with PLANTED copies of A's images in B."""
    rng = np.random.default_rng(7)
    root = tmp_path_factory.mktemp("leakage")
    ta, tb = _smooth_images(rng, N_A), _smooth_images(rng, N_B)
    xa = rng.normal(size=(N_A, D)).astype(np.float32)
    xb = rng.normal(size=(N_B, D)).astype(np.float32)
    for i, j in PLANTED:
        tb[j] = _reencode(ta[i], int(rng.integers(70, 91)), float(rng.uniform(0.9, 1.1)))
        xb[j] = xa[i] + 0.01 * rng.normal(size=D).astype(np.float32)
    ya, yb = np.arange(N_A) % 3, np.arange(N_B) % 3
    pred_a = np.where(rng.random(N_A) < 0.6, ya, (ya + 1) % 3)
    a = _run(root / "test", ta, xa, ya, pred_a, "test")
    b = _run(root / "train", tb, xb, yb, yb, "train")
    bare = _run(root / "bare", None, xa, ya, pred_a, "test", with_thumbs=False)
    return {"a": a, "b": b, "bare": bare, "root": root, "ya": ya, "pred_a": pred_a}


@pytest.fixture(scope="module")
def pairs(runs):
    return leakage.find_near_duplicates(runs["a"], runs["b"])


def test_planted_pairs_are_found_and_nothing_else(pairs):
    found = set(zip(pairs["a_row"], pairs["b_row"], strict=True))
    assert found == set(PLANTED)  # recall 1.0, and no pair on an unplanted image
    assert list(pairs.columns) == list(leakage.PAIR_COLUMNS)
    assert (pairs["hamming"] <= leakage.DEFAULT_MAX_HAMMING).all()
    assert pairs["hamming"].is_monotonic_increasing


def test_pairs_name_both_samples_and_their_distances(pairs, runs):
    row = pairs.set_index(["a_row", "b_row"]).loc[PLANTED[2]]
    assert row["a_sample_id"] == "test8" and row["b_sample_id"] == "train41"
    assert row["a_path"] == "test/sad/8.jpg" and row["b_path"] == "train/sad/41.jpg"
    assert row["a_label"] == "sad" and row["b_label"] == "sad"
    a, b = load_run(runs["a"]), load_run(runs["b"])
    ta, tb = a.thumbs[8].astype(float) / 255, b.thumbs[41].astype(float) / 255
    assert row["pixel_distance"] == pytest.approx(np.abs(ta - tb).mean())
    ua = a.embeddings[8] / np.linalg.norm(a.embeddings[8])
    ub = b.embeddings[41] / np.linalg.norm(b.embeddings[41])
    assert row["embedding_distance"] == pytest.approx(1 - ua @ ub, abs=1e-6)
    assert (pairs["pixel_distance"] < 0.1).all() and (pairs["embedding_distance"] < 0.01).all()


def test_unplanted_images_are_far_in_hash_space(runs):
    """The margin behind 'nothing else': unrelated images sit well outside the default radius."""
    a, b = load_run(runs["a"]), load_run(runs["b"])
    wide = leakage.find_near_duplicates(a, b, max_hamming=12)
    assert set(zip(wide["a_row"], wide["b_row"], strict=True)) == set(PLANTED)


def test_max_distance_drops_pairs_far_in_embedding(runs, tmp_path):
    b = load_run(runs["b"])
    xb = np.array(b.embeddings)
    xb[PLANTED[0][1]] = -xb[PLANTED[0][1]]  # same picture, opposite embedding: cosine distance ~2
    moved = write_run(
        tmp_path / "moved",
        embeddings=xb,
        samples=b.samples,
        class_names=CLASSES,
        thumbs=np.asarray(b.thumbs),
    )
    kept = leakage.find_near_duplicates(runs["a"], moved, max_distance=0.5)
    assert set(zip(kept["a_row"], kept["b_row"], strict=True)) == set(PLANTED[1:])


def test_summary_counts_duplicated_samples_per_class(pairs, runs):
    table = leakage.leakage_summary(pairs, runs["a"])
    rows = [i for i, _ in PLANTED]
    expected = np.bincount(runs["ya"][rows], minlength=3)
    assert table["class"].tolist() == [*CLASSES, "all"]
    assert table["duplicated"].tolist() == [*expected.tolist(), len(rows)]
    assert table["n"].tolist() == [20, 20, 20, 60]
    assert table["fraction"].iloc[-1] == pytest.approx(len(rows) / 60)


def test_accuracy_without_duplicates(pairs, runs):
    acc = leakage.accuracy_without_duplicates(pairs, runs["a"])
    y, p = runs["ya"], runs["pred_a"]
    dup = np.isin(np.arange(N_A), [i for i, _ in PLANTED])
    assert acc["n"] == 60 and acc["n_duplicated"] == 8 and acc["n_clean"] == 52
    assert acc["accuracy"] == pytest.approx(np.mean(y == p))
    assert acc["accuracy_clean"] == pytest.approx(np.mean(y[~dup] == p[~dup]))
    assert acc["accuracy_duplicated"] == pytest.approx(np.mean(y[dup] == p[dup]))
    assert leakage.accuracy_without_duplicates(pairs, runs["b"])["n_duplicated"] == 8


def test_hashes_are_imagehash_phash():
    imagehash = pytest.importorskip("imagehash")
    thumbs = _smooth_images(np.random.default_rng(1), 5)
    got = leakage.thumbnail_hashes(thumbs)
    for thumb, h in zip(thumbs, got, strict=True):
        assert int(h) == int(str(imagehash.phash(Image.fromarray(thumb))), 16)


@pytest.mark.parametrize("upper_only", [False, True])
def test_hamming_pairs_is_exact_across_blocks(monkeypatch, upper_only):
    rng = np.random.default_rng(3)
    ha = rng.integers(0, 2**63, size=37, dtype=np.uint64) | np.uint64(1 << 63)
    hb = ha.copy() if upper_only else rng.integers(0, 2**64 - 1, size=53, dtype=np.uint64)
    hb[:10] ^= np.uint64(0b1011)  # a few close pairs, three bits apart
    monkeypatch.setattr(leakage, "_BLOCK_PAIRS", 100)  # two rows of A per block
    ia, ib, d = leakage.hamming_pairs(ha, hb, 30, upper_only=upper_only)
    expected = [
        (i, j, bin(int(x) ^ int(y)).count("1"))
        for i, x in enumerate(ha)
        for j, y in enumerate(hb)
        if bin(int(x) ^ int(y)).count("1") <= 30 and (j > i or not upper_only)
    ]
    assert list(zip(ia.tolist(), ib.tolist(), d.tolist(), strict=True)) == expected
    assert len(expected) > 10


def test_one_run_against_itself_lists_each_pair_once(tmp_path):
    rng = np.random.default_rng(5)
    thumbs = _smooth_images(rng, 12)
    thumbs[9] = _reencode(thumbs[2], 80, 1.05)
    y = np.arange(12) % 3
    run = _run(tmp_path / "r", thumbs, rng.normal(size=(12, 4)), y, y, "train")
    found = leakage.find_near_duplicates(run, run)
    assert list(zip(found["a_row"], found["b_row"], strict=True)) == [(2, 9)]


def test_thumbnails_of_another_size_are_compared_at_the_smaller(runs, tmp_path):
    b = load_run(runs["b"])
    big = np.stack([np.asarray(Image.fromarray(t).resize((64, 64))) for t in b.thumbs])
    run = write_run(
        tmp_path / "big",
        embeddings=b.embeddings,
        samples=b.samples,
        class_names=CLASSES,
        thumbs=big,
    )
    found = leakage.find_near_duplicates(runs["a"], run)
    assert set(zip(found["a_row"], found["b_row"], strict=True)) == set(PLANTED)
    assert (found["pixel_distance"] < 0.1).all()


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"max_hamming": -1}, "max_hamming"),
        ({"max_hamming": 65}, "max_hamming"),
        ({"max_hamming": 2.5}, "max_hamming"),
        ({"max_distance": -0.1}, "max_distance"),
        ({"max_distance": float("nan")}, "max_distance"),
    ],
)
def test_bad_options_raise(runs, kw, match):
    with pytest.raises(ValueError, match=match):
        leakage.find_near_duplicates(runs["a"], runs["b"], **kw)


# ------------------------------------------------------------------------------------------- CLI
def test_cli_prints_the_summary_and_writes_the_pairs(runs, tmp_path, capsys):
    out = tmp_path / "pairs.csv"
    assert main(["leakage", str(runs["a"]), str(runs["b"]), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "8 near-duplicate pairs" in text and "8 of 60 samples of test" in text
    assert "without duplicates" in text
    table = pd.read_csv(out)
    assert list(table.columns) == list(leakage.PAIR_COLUMNS)
    assert set(zip(table["a_sample_id"], table["b_sample_id"], strict=True)) == {
        (f"test{i}", f"train{j}") for i, j in PLANTED
    }
    # An existing file is kept unless --overwrite.
    out.write_text("keep")
    assert main(["leakage", str(runs["a"]), str(runs["b"]), "--out", str(out)]) == 2
    assert out.read_text() == "keep"
    assert "--overwrite" in capsys.readouterr().err
    assert main(["leakage", str(runs["a"]), str(runs["b"]), "--out", str(out), "--overwrite"]) == 0
    assert len(pd.read_csv(out)) == len(PLANTED)


def _one_line_error(capsys, argv) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("ferembed: error: ") and err.count("\n") == 1
    return err


def test_cli_refuses_to_write_inside_a_run(runs, capsys):
    target = runs["b"] / "pairs.csv"
    err = _one_line_error(capsys, ["leakage", str(runs["a"]), str(runs["b"]), "--out", str(target)])
    assert "inside the run" in err and not target.exists()


def test_cli_run_without_thumbnails(runs, capsys):
    err = _one_line_error(capsys, ["leakage", str(runs["bare"]), str(runs["b"])])
    assert "no thumbnails" in err


def test_cli_missing_run(runs, capsys):
    err = _one_line_error(capsys, ["leakage", str(runs["a"]), str(runs["root"] / "nope")])
    assert "not a run directory" in err


def test_cli_bad_radius(runs, capsys):
    err = _one_line_error(
        capsys, ["leakage", str(runs["a"]), str(runs["b"]), "--max-hamming", "65"]
    )
    assert "max_hamming" in err


def test_cli_help_states_the_library_default(capsys):
    with pytest.raises(SystemExit):
        main(["leakage", "--help"])
    assert f"(default: {leakage.DEFAULT_MAX_HAMMING})" in capsys.readouterr().out


def test_euclidean_runs_get_euclidean_distances(runs, tmp_path):
    a, b = load_run(runs["a"]), load_run(runs["b"])
    common = {"class_names": CLASSES, "distance": "euclidean"}
    ea = write_run(
        tmp_path / "a", embeddings=a.embeddings, samples=a.samples, thumbs=a.thumbs, **common
    )
    eb = write_run(
        tmp_path / "b", embeddings=b.embeddings, samples=b.samples, thumbs=b.thumbs, **common
    )
    found = leakage.find_near_duplicates(ea, eb)
    i, j = found["a_row"].to_numpy(), found["b_row"].to_numpy()
    expected = np.linalg.norm(a.embeddings[i].astype(float) - b.embeddings[j], axis=1)
    np.testing.assert_allclose(found["embedding_distance"], expected, rtol=1e-6)


def test_small_blocks_give_the_same_pairs(pairs, runs, monkeypatch):
    monkeypatch.setattr(leakage, "_PAIR_BLOCK", 3)
    monkeypatch.setattr(leakage, "_BLOCK_PAIRS", 2 * N_B)
    pd.testing.assert_frame_equal(leakage.find_near_duplicates(runs["a"], runs["b"]), pairs)
