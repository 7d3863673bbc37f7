"""Near-duplicate faces between two runs: the train/test leakage check (docs/leakage.md).

Every thumbnail gets a 64-bit perceptual hash (pHash, from the ImageHash library); every pair
(a, b) of A x B whose hashes differ in at most ``max_hamming`` bits is a near-duplicate. The
search is exact over all pairs: the hashes are packed into one uint64 each, so a block of A
against all of B is one XOR and one popcount (``np.bitwise_count``), in row blocks of bounded
size. Each pair found also gets a pixel distance (mean absolute difference of the two thumbnails
in [0, 1]) and the embedding distance of its two rows, so a reader can check the hash's verdict
with two independent measures.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ferembed import _io
from ferembed._format import number
from ferembed.errors import FerembedError, RunFormatError
from ferembed.metrics.classification import confusion_matrix, confusion_scores
from ferembed.runs._outputs import check_output
from ferembed.runs.format import Run, load_run

HASH_BITS = 64
# Default Hamming radius: JPEG re-encodings of one face land at 0-4 bits (6 for stronger changes);
# from 8 bits on about half the FER2013 pairs are different photos (docs/leakage.md: the measured
# histogram and the choice).
DEFAULT_MAX_HAMMING = 6
# Pairs compared per block (uint64 XOR + uint8 popcount: about 9 bytes each, so ~36 MB).
_BLOCK_PAIRS = 1 << 22

PAIR_COLUMNS = (
    "a_row",
    "b_row",
    "a_sample_id",
    "b_sample_id",
    "a_path",
    "b_path",
    "a_label",
    "b_label",
    "hamming",
    "pixel_distance",
    "embedding_distance",
)


def thumbnail_hashes(thumbs: np.ndarray) -> np.ndarray:
    """64-bit pHash of each thumbnail.

    Args:
        thumbs: (N, h, w) uint8 grayscale thumbnails.

    Returns:
        (N,) uint64; bit i (most significant first) is bit i of ImageHash's row-major 8 x 8 hash.
    """
    try:
        import imagehash
    except ImportError:
        raise FerembedError(
            "the leakage check needs the ImageHash library: pip install ImageHash"
        ) from None
    from PIL import Image

    thumbs = np.asarray(thumbs)
    if thumbs.ndim != 3:
        raise ValueError(f"thumbs must be (N, h, w), got shape {thumbs.shape}")
    bits = np.empty((len(thumbs), HASH_BITS), dtype=bool)
    for i, thumb in enumerate(thumbs):
        image = Image.fromarray(np.ascontiguousarray(thumb, dtype=np.uint8))
        bits[i] = imagehash.phash(image).hash.ravel()
    return np.packbits(bits, axis=1).view(">u8").ravel().astype(np.uint64)


def hamming_pairs(
    hashes_a: np.ndarray, hashes_b: np.ndarray, max_hamming: int, *, upper_only: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every pair (i, j) with ``popcount(hashes_a[i] ^ hashes_b[j]) <= max_hamming``, exactly.

    Args:
        hashes_a: (Na,) uint64.
        hashes_b: (Nb,) uint64.
        max_hamming: radius in bits, 0..64.
        upper_only: keep only j > i (A and B are the same set: each pair once, no self-pairs).

    Returns:
        rows of A (K,) int64, rows of B (K,) int64 and their Hamming distances (K,) int64, in
        row-major order of (i, j).
    """
    ha = np.asarray(hashes_a, dtype=np.uint64)
    hb = np.asarray(hashes_b, dtype=np.uint64)
    rows = max(1, _BLOCK_PAIRS // max(1, len(hb)))
    found_i, found_j, found_d = [], [], []
    for start in range(0, len(ha), rows):
        dist = np.bitwise_count(ha[start : start + rows, None] ^ hb[None, :])
        keep = dist <= max_hamming
        if upper_only:
            i = np.arange(start, start + len(dist))[:, None]
            keep &= np.arange(len(hb))[None, :] > i
        i, j = np.nonzero(keep)
        found_i.append(i + start)
        found_j.append(j)
        found_d.append(dist[i, j])
    if not found_i:
        return (np.zeros(0, np.int64),) * 3
    return tuple(np.concatenate(part).astype(np.int64) for part in (found_i, found_j, found_d))


_PAIR_BLOCK = 4096  # pairs per block when gathering thumbnails or embedding rows


def _pixel_distances(ta: np.ndarray, tb: np.ndarray, ia: np.ndarray, ib: np.ndarray) -> np.ndarray:
    """Mean |a - b| of the paired thumbnails in [0, 1], (K,) float64.

    Thumbnails of two sizes are compared at the smaller one (bilinear resize of both).
    """
    h, w = min(ta.shape[1], tb.shape[1]), min(ta.shape[2], tb.shape[2])

    def fit(thumbs: np.ndarray) -> np.ndarray:
        if thumbs.shape[1:] == (h, w):
            return thumbs.astype(np.float64)
        from PIL import Image

        small = [Image.fromarray(t).resize((w, h), Image.BILINEAR) for t in thumbs]
        return np.stack([np.asarray(t, dtype=np.float64) for t in small]).reshape(-1, h, w)

    out = np.empty(len(ia), np.float64)
    for s in range(0, len(ia), _PAIR_BLOCK):
        a, b = fit(ta[ia[s : s + _PAIR_BLOCK]]), fit(tb[ib[s : s + _PAIR_BLOCK]])
        out[s : s + _PAIR_BLOCK] = np.abs(a - b).mean(axis=(1, 2)) / 255.0
    return out


def _embedding_distances(run_a: Run, run_b: Run, ia: np.ndarray, ib: np.ndarray) -> np.ndarray:
    """(K,) distance of the paired rows: cosine on unit rows unless both runs are euclidean."""
    out = np.full(len(ia), np.nan)
    if run_a.dim != run_b.dim:
        return out
    euclidean = run_a.distance == run_b.distance == "euclidean"
    for s in range(0, len(ia), _PAIR_BLOCK):
        xa = np.asarray(run_a.embeddings[ia[s : s + _PAIR_BLOCK]], dtype=np.float64)
        xb = np.asarray(run_b.embeddings[ib[s : s + _PAIR_BLOCK]], dtype=np.float64)
        if euclidean:
            out[s : s + _PAIR_BLOCK] = np.linalg.norm(xa - xb, axis=1)
            continue
        xa /= np.maximum(np.linalg.norm(xa, axis=1, keepdims=True), 1e-12)
        xb /= np.maximum(np.linalg.norm(xb, axis=1, keepdims=True), 1e-12)
        # Rounding can put identical rows a hair below 0; cosine distance of unit rows is in [0, 2].
        out[s : s + _PAIR_BLOCK] = np.clip(1.0 - np.einsum("ij,ij->i", xa, xb), 0.0, 2.0)
    return out


def _as_run(run: Run | str | os.PathLike) -> Run:
    run = run if isinstance(run, Run) else load_run(run)
    if run.thumbs is None:
        raise RunFormatError(
            f"{run.path}: run has no thumbnails (thumbs.npy); embed it again without --no-thumbs"
        )
    return run


def find_near_duplicates(
    run_a: Run | str | os.PathLike,
    run_b: Run | str | os.PathLike,
    *,
    max_hamming: int = DEFAULT_MAX_HAMMING,
    max_distance: float | None = None,
) -> pd.DataFrame:
    """Near-duplicate faces between two runs (e.g. A = test, B = train).

    Args:
        run_a: a :class:`Run` or run directory, with thumbnails.
        run_b: another one (the same run finds duplicates within it, each pair once).
        max_hamming: pHash Hamming radius in bits, 0..64.
        max_distance: if given, keep only pairs whose embedding distance is <= it (cosine
            distance on unit rows, or euclidean when both runs are euclidean); needs both runs
            to have the same embedding dimension.

    Returns:
        One row per pair, columns ``PAIR_COLUMNS``, sorted by Hamming then pixel distance.
        ``embedding_distance`` is NaN when the runs' dimensions differ.

    Raises:
        RunFormatError: a run is missing, malformed or has no thumbnails.
        ValueError: ``max_hamming`` or ``max_distance`` out of range.
    """
    if isinstance(max_hamming, bool) or not isinstance(max_hamming, (int, np.integer)):
        raise ValueError(f"max_hamming must be an integer in 0..{HASH_BITS}, got {max_hamming!r}")
    if not 0 <= max_hamming <= HASH_BITS:
        raise ValueError(f"max_hamming must be in 0..{HASH_BITS}, got {max_hamming}")
    if max_distance is not None and not (np.isfinite(max_distance) and max_distance >= 0):
        raise ValueError(f"max_distance must be a finite number >= 0, got {max_distance}")
    run_a, run_b = _as_run(run_a), _as_run(run_b)
    if max_distance is not None and run_a.dim != run_b.dim:
        raise RunFormatError(
            f"--max-distance needs runs of one embedding dimension, got {run_a.dim} "
            f"({run_a.path}) and {run_b.dim} ({run_b.path})"
        )
    same = run_a.path.resolve() == run_b.path.resolve()
    ta, tb = np.asarray(run_a.thumbs), np.asarray(run_b.thumbs)
    ha = thumbnail_hashes(ta)
    hb = ha if same else thumbnail_hashes(tb)
    ia, ib, ham = hamming_pairs(ha, hb, int(max_hamming), upper_only=same)
    emb = _embedding_distances(run_a, run_b, ia, ib)
    if max_distance is not None:
        keep = emb <= max_distance
        ia, ib, ham, emb = ia[keep], ib[keep], ham[keep], emb[keep]
    sa, sb = run_a.samples, run_b.samples
    pairs = pd.DataFrame(
        {
            "a_row": ia,
            "b_row": ib,
            "a_sample_id": sa["sample_id"].to_numpy()[ia],
            "b_sample_id": sb["sample_id"].to_numpy()[ib],
            "a_path": sa["path"].to_numpy()[ia],
            "b_path": sb["path"].to_numpy()[ib],
            "a_label": sa["label_name"].to_numpy()[ia],
            "b_label": sb["label_name"].to_numpy()[ib],
            "hamming": ham,
            "pixel_distance": _pixel_distances(ta, tb, ia, ib),
            "embedding_distance": emb,
        },
        columns=list(PAIR_COLUMNS),
    )
    return pairs.sort_values(["hamming", "pixel_distance"], kind="stable").reset_index(drop=True)


def leakage_summary(pairs: pd.DataFrame, run_a: Run | str | os.PathLike) -> pd.DataFrame:
    """How many of A's samples have at least one near-duplicate in B, per class of A.

    Args:
        pairs: the frame of :func:`find_near_duplicates` (its ``a_row`` column is used).
        run_a: the run the pairs' A side came from.

    Returns:
        One row per class of A plus a last ``"all"`` row; columns ``class``, ``n`` (samples),
        ``duplicated`` (samples with >= 1 pair) and ``fraction`` (= duplicated / n; NaN when n = 0).
    """
    run_a = run_a if isinstance(run_a, Run) else load_run(run_a, check_arrays=False)
    k = len(run_a.class_names)
    labels = run_a.labels
    dup = duplicated_mask(pairs, run_a.n)
    n = np.bincount(labels, minlength=k)
    d = np.bincount(labels[dup], minlength=k)
    table = pd.DataFrame(
        {
            "class": [*run_a.class_names, "all"],
            "n": [*n.tolist(), int(n.sum())],
            "duplicated": [*d.tolist(), int(d.sum())],
        }
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        table["fraction"] = table["duplicated"] / table["n"].where(table["n"] > 0)
    return table


def duplicated_mask(pairs: pd.DataFrame, n: int) -> np.ndarray:
    """(n,) bool: True for the A rows that appear in ``pairs``."""
    mask = np.zeros(int(n), dtype=bool)
    mask[pairs["a_row"].to_numpy(dtype=np.int64)] = True
    return mask


def accuracy_without_duplicates(
    pairs: pd.DataFrame, run_a: Run | str | os.PathLike
) -> dict[str, float | int] | None:
    """Accuracy of A's stored predictions on all samples, without the duplicated ones, and on them.

    Returns:
        ``{"n", "accuracy", "n_clean", "accuracy_clean", "n_duplicated", "accuracy_duplicated"}``
        (an accuracy is NaN on an empty subset), or None when the run has no predictions.
    """
    run_a = run_a if isinstance(run_a, Run) else load_run(run_a, check_arrays=False)
    pred = run_a.samples["pred"].to_numpy(dtype=np.int64)
    k = len(run_a.class_names)
    if len(pred) == 0 or pred.min() < 0 or pred.max() >= k:
        return None
    y = run_a.labels
    dup = duplicated_mask(pairs, run_a.n)

    def accuracy(mask: np.ndarray) -> float:
        if not mask.any():
            return float("nan")
        return float(confusion_scores(confusion_matrix(y[mask], pred[mask], k))["accuracy"])

    everything = np.ones(len(y), dtype=bool)
    return {
        "n": int(len(y)),
        "accuracy": accuracy(everything),
        "n_clean": int((~dup).sum()),
        "accuracy_clean": accuracy(~dup),
        "n_duplicated": int(dup.sum()),
        "accuracy_duplicated": accuracy(dup),
    }


def save_pairs_csv(
    pairs: pd.DataFrame, out: str | os.PathLike, *, runs: tuple[Run, ...], overwrite: bool = False
) -> Path:
    """Write ``pairs`` as CSV atomically; never over a file (unless ``overwrite``) or into a run.

    Raises:
        FerembedError: ``out`` exists, is a directory, or lies inside one of ``runs``.
    """
    out = Path(out)
    _check_out(out, runs, overwrite)
    _io.write_text(out, pairs.to_csv(index=False))
    return out


def _check_out(out: Path, runs: tuple[Run, ...], overwrite: bool) -> None:
    inputs = [(f"RUN_{chr(65 + i)}", run.path) for i, run in enumerate(runs)]
    check_output(out, inputs=inputs, overwrite=overwrite)


@dataclass
class LeakageReport:
    """What ``ferembed leakage`` finds and prints.

    Attributes:
        pairs: the near-duplicate pairs (:func:`find_near_duplicates`).
        summary: duplicated samples of A per class (:func:`leakage_summary`).
        accuracy: A's accuracy with and without them (:func:`accuracy_without_duplicates`).
        max_hamming: the radius used.
        names: the two runs' names, A first.
        out: the CSV written, if any.
    """

    pairs: pd.DataFrame
    summary: pd.DataFrame
    accuracy: dict[str, float | int] | None
    max_hamming: int
    names: tuple[str, str]
    out: Path | None = None

    def format(self) -> str:
        """Counts, the per-class table and the accuracies, as plain text."""
        a, b = self.names
        total = self.summary.iloc[-1]
        lines = [
            f"{len(self.pairs)} near-duplicate pairs (pHash Hamming <= {self.max_hamming}) "
            f"between {a} and {b}",
            f"{total['duplicated']} of {total['n']} samples of {a} "
            f"({number(total['fraction'], '.2%')}) have >= 1 near-duplicate in {b}",
            "",
            f"{'class':12s} {'n':>7s} {'duplicated':>10s} {'fraction':>9s}",
        ]
        for row in self.summary.itertuples(index=False):
            frac = number(row.fraction, ".2%")
            lines.append(f"{row[0]:12s} {row.n:7d} {row.duplicated:10d} {frac:>9s}")
        acc = self.accuracy
        if acc is not None:
            pct = {key: number(val, ".2%") for key, val in acc.items() if "accuracy" in key}
            lines += [
                "",
                f"accuracy of {a}: all {pct['accuracy']} (n={acc['n']}), "
                f"without duplicates {pct['accuracy_clean']} (n={acc['n_clean']}), "
                f"duplicates only {pct['accuracy_duplicated']} (n={acc['n_duplicated']})",
            ]
        if self.out is not None:
            lines += ["", f"wrote {self.out}"]
        return "\n".join(lines)


def check_leakage(
    run_a: Run | str | os.PathLike,
    run_b: Run | str | os.PathLike,
    *,
    max_hamming: int | None = None,
    max_distance: float | None = None,
    out: str | os.PathLike | None = None,
    overwrite: bool = False,
) -> LeakageReport:
    """The whole check of ``ferembed leakage``: pairs, summary, accuracies, optional CSV.

    Args:
        run_a: the run whose samples are checked (e.g. test).
        run_b: the run searched for their near-duplicates (e.g. train).
        max_hamming: pHash radius in bits (None: ``DEFAULT_MAX_HAMMING``).
        max_distance: see :func:`find_near_duplicates`.
        out: write the pairs here as CSV (:func:`save_pairs_csv`).
        overwrite: replace an existing ``out``.
    """
    run_a = run_a if isinstance(run_a, Run) else load_run(run_a)
    run_b = run_b if isinstance(run_b, Run) else load_run(run_b)
    radius = DEFAULT_MAX_HAMMING if max_hamming is None else max_hamming
    if out is not None:  # refuse a bad --out before the search, not after it
        _check_out(Path(out), (run_a, run_b), overwrite)
    pairs = find_near_duplicates(run_a, run_b, max_hamming=radius, max_distance=max_distance)
    if out is not None:
        out = save_pairs_csv(pairs, out, runs=(run_a, run_b), overwrite=overwrite)
    return LeakageReport(
        pairs=pairs,
        summary=leakage_summary(pairs, run_a),
        accuracy=accuracy_without_duplicates(pairs, run_a),
        max_hamming=radius,
        names=(run_a.name, run_b.name),
        out=out,
    )
