"""SynthFER: procedurally generated 48x48 grayscale faces with seven expressions.

SynthFER is the dataset that needs nothing on disk: tests, demos and smoke runs train on it. Every
image is rendered analytically with numpy: each facial part (head, hair, brows, eyes, nose, mouth)
is a shape with a signed distance evaluated on the pixel grid of a whole chunk of samples at once
and composited in painter's order with an anti-aliased edge.

How an image comes about:

* **Identity** (from ``(seed, identity id)`` alone): head shape and size, feature spacing (eye
  distance, eye / brow / nose / mouth heights, mouth width), skin and hair tone, hairline, brow
  thickness, and a *resting expression* (a face that looks a little sad or stern at rest).
* **Expression**: each of the seven FER2013 classes is a prototype offset of the facial action
  parameters (brow height / tilt / arch, eye opening, mouth curvature / opening / width, teeth,
  nose wrinkle, nasolabial fold), applied with a per-sample intensity and jitter.
* **Nuisance**: pose (rotation, translation, scale), edge blur, a lighting gradient, brightness
  and contrast, Gaussian noise and, on some samples, an occluding rectangle.

Three pairs are confusable on purpose, as in real FER: fear / surprise (raised brows and open
mouth; fear has flat, inner-raised brows and a wide, stretched mouth, surprise arched brows and a
round mouth), angry / disgust (lowered brows; disgust adds a nose wrinkle and a raised upper lip,
angry presses the lips) and sad / neutral (sad is a slight inner-brow raise and down-turned mouth).

``difficulty`` scales the expression-intensity spread, the parameter jitter, the resting
expressions and every nuisance; ``difficulty=0`` renders full-intensity prototypes on frontal,
clean faces (identity shape still varies).
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ferembed.data._base import ArrayDataset, Sample
from ferembed.data._registry import register_dataset
from ferembed.data._synthfer_render import render_faces
from ferembed.data.generic import check_options
from ferembed.data.vocab import FER2013_ORDER
from ferembed.errors import DataError

CLASS_NAMES: list[str] = list(FER2013_ORDER)
NUM_CLASSES = len(CLASS_NAMES)

#: Default split sizes of the registered dataset.
SPLIT_SIZES: dict[str, int] = {"train": 3500, "val": 700, "test": 1400}
#: First identity id of each split; the ranges are disjoint, so no face crosses splits.
SPLIT_IDENTITY_OFFSETS: dict[str, int] = {"train": 0, "val": 40_000, "test": 70_000}
_SPLIT_IDENTITY_RANGE = 30_000  # ids available to a split (val and test; train has 40k)
#: Images per identity when ``num_identities`` is not given.
IMAGES_PER_IDENTITY = 10
#: Class frequency ranks for the long-tailed split, most to least frequent (FER2013's train order).
_LONG_TAIL_ORDER: tuple[str, ...] = (
    "happy",
    "neutral",
    "sad",
    "fear",
    "angry",
    "surprise",
    "disgust",
)

# Independent random streams (the second entry of each SeedSequence entropy list).
_IDENTITY_STREAM = 0x1D
_SAMPLE_STREAM = 0x5A
_NOISE_STREAM = 0x40
_CHUNK = 256  # images rendered at once: bounds memory at ~30 float32 (256, S, S) temporaries

# Expression action parameters. Units are the face frame, where the image spans [-1, 1] and y
# points down; "tilt" > 0 raises the inner brow ends, "curv" > 0 lifts the mouth corners.
# Per action: (neutral value, per-sample jitter std at difficulty 1).
_ACTIONS: dict[str, tuple[float, float]] = {
    "brow_raise": (0.0, 0.02),  # brow lift
    "brow_tilt": (0.0, 0.012),  # inner-end lift (negative: the angry V)
    "brow_arch": (0.02, 0.012),  # middle of the brow above its ends
    "eye_open": (1.0, 0.12),  # multiplier of the resting eye height
    "mouth_curv": (0.0, 0.015),  # corner lift
    "mouth_open": (0.0, 0.012),  # half-height of the lip gap at the centre
    "mouth_width": (1.0, 0.09),  # multiplier of the resting half-width
    "mouth_shift": (0.0, 0.01),  # vertical shift of the mouth (negative: upper lip raised)
    "teeth": (0.0, 0.15),  # visible upper teeth, 0..1
    "wrinkle": (0.0, 0.15),  # nose-bridge wrinkle darkness, 0..1
    "fold": (0.0, 0.15),  # nasolabial fold darkness, 0..1
}
# Prototype of each class as its change from neutral, one column per action of _ACTIONS:
# brow_raise, brow_tilt, brow_arch, eye_open, mouth_curv, mouth_open, mouth_width, mouth_shift,
# teeth, wrinkle, fold.
_PROTOTYPES: dict[str, tuple[float, ...]] = {
    "angry": (-0.07, -0.07, 0.0, -0.2, -0.03, 0.0, -0.15, 0.0, 0.0, 0.0, 0.0),
    "disgust": (-0.05, -0.03, 0.0, -0.3, -0.05, 0.025, 0.0, -0.04, 0.5, 1.0, 0.8),
    "fear": (0.07, 0.04, -0.015, 0.55, -0.03, 0.06, 0.1, 0.0, 0.3, 0.0, 0.0),
    "happy": (0.01, 0.0, 0.0, -0.25, 0.09, 0.035, 0.25, 0.0, 1.0, 0.0, 0.6),
    "sad": (0.01, 0.045, 0.0, -0.15, -0.05, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0),
    "surprise": (0.1, 0.0, 0.035, 0.6, 0.0, 0.1, -0.3, 0.0, 0.0, 0.0, 0.0),
    "neutral": (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0),
}


@dataclass
class SynthFERBatch:
    """A batch of generated faces.

    Attributes:
        images: (N, S, S) uint8 grayscale faces.
        labels: (N,) int64 index into :data:`CLASS_NAMES`.
        identities: (N,) int64 identity id (``identity_offset`` .. ``+ num_identities - 1``).
        params: per-sample generative parameters, each (N,) float64: the expression actions of
            :data:`_ACTIONS` (as rendered, identity resting offsets included), ``intensity``,
            the pose (``angle`` radians, ``tx``, ``ty``, ``scale``), ``blur``, ``noise``,
            ``light``, ``occluded`` (0/1) and the identity's shape parameters.
    """

    images: np.ndarray
    labels: np.ndarray
    identities: np.ndarray
    params: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.labels.shape[0])


# ---------------------------------------------------------------------------------------------
# Parameters
# ---------------------------------------------------------------------------------------------


def _identity_params(seed: int, ids: np.ndarray) -> dict[str, np.ndarray]:
    """Shape parameters of each identity, each (K,) float64; identity ``i`` depends on (seed, i)."""
    rows = []
    for i in ids:
        r = np.random.default_rng([seed, _IDENTITY_STREAM, int(i)])
        rows.append(
            (
                r.uniform(0.60, 0.76),  # head_a: half-width
                r.uniform(0.80, 0.93),  # head_b: half-height
                r.uniform(-0.02, 0.08),  # head_y: centre
                r.uniform(0.45, 0.85),  # skin tone
                r.uniform(0.05, 0.55),  # hair tone
                r.uniform(-0.72, -0.42),  # hairline height (face frame)
                r.uniform(0.0, 1.0),  # hair volume (back hair around the head)
                r.uniform(0.24, 0.33),  # eye_dx: half the eye distance
                r.uniform(-0.20, -0.06),  # eye_y
                r.uniform(0.10, 0.14),  # eye_w: eye half-width
                r.uniform(0.045, 0.065),  # eye_h: resting eye half-height
                r.uniform(0.15, 0.20),  # brow_gap: brow above the eye
                r.uniform(0.035, 0.055),  # brow_th: brow thickness
                r.uniform(0.12, 0.17),  # brow_len: brow half-length
                r.uniform(0.16, 0.28),  # nose_y
                r.uniform(0.40, 0.54),  # mouth_y
                r.uniform(0.19, 0.26),  # mouth_w: resting mouth half-width
                r.normal(0.0, 0.015),  # rest_curv: resting mouth curvature
                r.normal(0.0, 0.012),  # rest_tilt: resting brow tilt
                r.normal(0.0, 0.08),  # rest_open: resting eye-opening offset
            )
        )
    keys = (
        "head_a head_b head_y skin hair hairline hair_volume eye_dx eye_y eye_w eye_h brow_gap"
        " brow_th brow_len nose_y mouth_y mouth_w rest_curv rest_tilt rest_open"
    ).split()
    table = np.asarray(rows, dtype=np.float64).reshape(len(ids), len(keys))
    return {k: table[:, j] for j, k in enumerate(keys)}


def _class_counts(n: int, weights: np.ndarray) -> np.ndarray:
    """(C,) int64 counts summing to ``n`` proportional to ``weights`` (largest remainder)."""
    quota = n * weights / weights.sum()
    counts = np.floor(quota).astype(np.int64)
    rest = n - int(counts.sum())
    # Ties go to the lower class index, so the allocation is deterministic.
    order = np.argsort(-(quota - counts), kind="stable")
    counts[order[:rest]] += 1
    return counts


def long_tail_weights(ratio: float) -> np.ndarray:
    """(7,) float64 class weights, geometric in FER2013's frequency rank, max / min == ``ratio``.

    Happy is the most frequent class and disgust the rarest, as in FER2013's training set.
    """
    if not np.isfinite(ratio) or ratio < 1:
        raise ValueError(f"imbalance ratio must be a finite number >= 1, got {ratio!r}")
    rank = np.array([_LONG_TAIL_ORDER.index(c) for c in CLASS_NAMES], dtype=np.float64)
    return float(ratio) ** (-rank / (NUM_CLASSES - 1))


def _sample_params(
    rng: np.random.Generator, labels: np.ndarray, ident: dict[str, np.ndarray], d: float
) -> dict[str, np.ndarray]:
    """Per-sample action and nuisance parameters, each (N,) float64.

    ``ident`` holds the identity parameters already gathered per sample.
    """
    n = labels.shape[0]
    proto = np.array([_PROTOTYPES[c] for c in CLASS_NAMES], dtype=np.float64)  # (C, A)
    # Intensity spreads below full (towards neutral, where the confusion lives) more than above.
    intensity = 1.0 + d * rng.uniform(-0.55, 0.15, n)
    jitter = rng.standard_normal((n, len(_ACTIONS))) * d
    p: dict[str, np.ndarray] = {"intensity": intensity}
    for j, (a, (neutral, spread)) in enumerate(_ACTIONS.items()):
        p[a] = neutral + intensity * proto[labels, j] + jitter[:, j] * spread
    p["mouth_curv"] = p["mouth_curv"] + d * ident["rest_curv"]
    p["brow_tilt"] = p["brow_tilt"] + d * ident["rest_tilt"]
    p["eye_open"] = np.clip(p["eye_open"] + d * ident["rest_open"], 0.35, None)
    p["mouth_open"] = np.clip(p["mouth_open"], 0.0, None)
    p["mouth_width"] = np.clip(p["mouth_width"], 0.4, None)
    for a in ("teeth", "wrinkle", "fold"):
        p[a] = np.clip(p[a], 0.0, 1.0)

    p["angle"] = d * rng.normal(0.0, np.deg2rad(6.0), n)
    p["tx"] = d * rng.normal(0.0, 0.05, n)
    p["ty"] = d * rng.normal(0.0, 0.05, n)
    p["scale"] = np.exp(d * rng.normal(0.0, 0.06, n))
    p["blur"] = d * rng.uniform(0.0, 1.5, n)  # extra edge width, in pixels
    p["noise"] = d * rng.uniform(0.0, 0.06, n)  # noise std on the [0, 1] scale
    p["light"] = d * rng.uniform(0.0, 0.35, n)  # gradient amplitude
    p["light_dir"] = rng.uniform(0.0, 2 * np.pi, n)
    p["contrast"] = np.exp(d * rng.normal(0.0, 0.15, n))
    p["brightness"] = d * rng.normal(0.0, 0.06, n)
    p["background"] = 0.5 + d * rng.uniform(-0.4, 0.4, n)
    p["occluded"] = (rng.random(n) < 0.15 * min(d, 2.0)).astype(np.float64)
    p["occ_x"] = rng.uniform(-0.6, 0.6, n)
    p["occ_y"] = rng.uniform(-0.5, 0.7, n)
    p["occ_w"] = rng.uniform(0.15, 0.5, n)
    p["occ_h"] = rng.uniform(0.08, 0.3, n)
    p["occ_tone"] = rng.uniform(0.0, 1.0, n)
    p["brow_asym"] = d * rng.normal(0.0, 0.012, n)
    p["gaze"] = d * rng.normal(0.0, 0.025, n)
    return p


def generate_synthfer(
    n: int,
    *,
    seed: int = 0,
    image_size: int = 48,
    num_identities: int | None = None,
    identity_offset: int = 0,
    difficulty: float = 1.0,
    class_weights: Sequence[float] | None = None,
) -> SynthFERBatch:
    """Render ``n`` synthetic faces.

    Same arguments give byte-identical images. Each identity (its id and ``seed``) has a fixed
    face; identities are assigned to samples at random, so each shows several expressions.

    Args:
        n: number of images (>= 1).
        seed: non-negative integer seed.
        image_size: side S of the square images (>= 16).
        num_identities: identities to draw from (default ``ceil(n / 10)``, at most ``n``).
        identity_offset: first identity id; use disjoint id ranges for disjoint face sets.
        difficulty: >= 0; scales intensity spread, jitter, resting expressions and nuisances.
        class_weights: (7,) non-negative relative class frequencies; the counts follow them
            exactly up to rounding (largest remainder). Default: balanced.

    Returns:
        A :class:`SynthFERBatch` with images (n, S, S) uint8, labels and identities (n,) int64.

    Raises:
        ValueError: a parameter out of range (the message names it and the valid range).
    """
    n = int(n)
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if int(seed) < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed}")
    if int(image_size) < 16:
        raise ValueError(f"image_size must be >= 16, got {image_size}")
    if not np.isfinite(difficulty) or difficulty < 0:
        raise ValueError(f"difficulty must be a finite number >= 0, got {difficulty}")
    if int(identity_offset) < 0:
        raise ValueError(f"identity_offset must be >= 0, got {identity_offset}")
    k = -(-n // IMAGES_PER_IDENTITY) if num_identities is None else int(num_identities)
    if not 1 <= k:
        raise ValueError(f"num_identities must be >= 1, got {num_identities}")
    k = min(k, n)
    if class_weights is None:
        weights = np.ones(NUM_CLASSES)
    else:
        weights = np.asarray(class_weights, dtype=np.float64)
        if weights.shape != (NUM_CLASSES,) or not np.all(np.isfinite(weights)):
            raise ValueError(f"class_weights must be {NUM_CLASSES} finite numbers, got {weights}")
        if np.any(weights < 0) or weights.sum() <= 0:
            raise ValueError("class_weights must be >= 0 with a positive sum")
    seed, image_size, d = int(seed), int(image_size), float(difficulty)
    identity_offset = int(identity_offset)

    rng = np.random.default_rng([seed, _SAMPLE_STREAM, identity_offset])
    counts = _class_counts(n, weights)
    labels = rng.permutation(np.repeat(np.arange(NUM_CLASSES, dtype=np.int64), counts))
    # Every identity gets n // k or n // k + 1 images, with random expressions.
    slot = rng.permutation(np.arange(n, dtype=np.int64) % k)
    identities = identity_offset + slot

    ident = _identity_params(seed, identity_offset + np.arange(k))
    params = {key: val[slot] for key, val in ident.items()}
    params.update(_sample_params(rng, labels, params, d))

    images = np.empty((n, image_size, image_size), dtype=np.uint8)
    noise_rng = np.random.default_rng([seed, _NOISE_STREAM, identity_offset])
    for lo in range(0, n, _CHUNK):
        hi = min(n, lo + _CHUNK)
        noise = noise_rng.standard_normal((hi - lo, image_size, image_size), dtype=np.float32)
        images[lo:hi] = render_faces(
            {key: val[lo:hi] for key, val in params.items()}, image_size, noise
        )
    return SynthFERBatch(images=images, labels=labels, identities=identities, params=params)


class SynthFERDataset(ArrayDataset):
    """SynthFER split held in memory; ``identities`` is the (N,) int64 identity id per sample."""

    name = "synthfer"

    def __init__(self, batch: SynthFERBatch, split: str, image_size: int) -> None:
        samples = [
            Sample(
                sample_id=f"synthfer-{split}-{i:06d}",
                label=int(lab),
                path="",
                subject=f"id{ident:05d}",
                split=split,
            )
            for i, (lab, ident) in enumerate(
                zip(batch.labels.tolist(), batch.identities.tolist(), strict=True)
            )
        ]
        super().__init__(batch.images, samples, CLASS_NAMES, split=split, image_size=image_size)
        self.identities = batch.identities
        self.params = batch.params


def split_seed(seed: int, split: str) -> int:
    """The generator seed of ``split``, derived from the dataset seed and the split name."""
    state = np.random.SeedSequence([int(seed), zlib.crc32(split.encode())]).generate_state(1)
    return int(state[0])


@register_dataset(
    "synthfer",
    splits=("train", "val", "test"),
    layout=(
        "none: SynthFER is generated in memory (procedural 48x48 faces, the 7 FER2013 classes); "
        "splits are deterministic in --seed and identity-disjoint; no root is needed"
    ),
    needs_root=False,
)
def create_synthfer(
    root,
    split: str,
    *,
    n: int | None = None,
    seed: int = 0,
    image_size: int = 48,
    difficulty: float = 1.0,
    imbalance: float | None = None,
    fold: int | None = None,
    num_folds: int = 10,
    **kw,
) -> SynthFERDataset:
    """Build a SynthFER split (``root`` is ignored).

    Args:
        root: ignored (SynthFER lives in memory).
        split: "train", "val" or "test"; default sizes 3500 / 700 / 1400.
        n: number of images, overriding the split's default size.
        seed: dataset seed; each split's generator seed comes from it and the split name.
        image_size: image side in pixels.
        difficulty: see :func:`generate_synthfer`.
        imbalance: None for balanced classes, or a ratio >= 1 between the most (happy) and least
            (disgust) frequent class of the *train* split; val and test stay balanced.
        fold, num_folds: refused (SynthFER has fixed splits, not folds); ``num_folds`` alone
            is the CLI default and ignored.

    Raises:
        DataError: unknown split or a bad parameter.
    """
    check_options("synthfer", kw, fold=fold)
    if split not in SPLIT_SIZES:
        raise DataError(f"synthfer has no split {split!r}; splits: {list(SPLIT_SIZES)}")
    n = SPLIT_SIZES[split] if n is None else _option(n, "n", int, 1)
    seed = _option(seed, "seed", int, 0)
    image_size = _option(image_size, "image_size", int, 16)
    difficulty = _option(difficulty, "difficulty", float, 0)
    imbalance = None if imbalance is None else _option(imbalance, "imbalance", float, 1)
    weights = None
    try:
        if imbalance is not None and split == "train":
            weights = long_tail_weights(imbalance)
        k = min(-(-n // IMAGES_PER_IDENTITY), _SPLIT_IDENTITY_RANGE)
        batch = generate_synthfer(
            n,
            seed=split_seed(seed, split),
            image_size=image_size,
            num_identities=k,
            identity_offset=SPLIT_IDENTITY_OFFSETS[split],
            difficulty=difficulty,
            class_weights=weights,
        )
    except ValueError as exc:
        raise DataError(f"synthfer: {exc}") from None
    return SynthFERDataset(batch, split, image_size)


def _option(value, name: str, kind: type, minimum: float):
    """A SynthFER option as ``kind`` (int or float), finite and >= ``minimum``.

    Raises:
        DataError: naming the option, its valid range and the value given.
    """
    want = f"{'an integer' if kind is int else 'a number'} >= {minimum}"
    if isinstance(value, bool):
        raise DataError(f"synthfer: {name} must be {want}, got {value!r}")
    if isinstance(value, (int, np.integer)):  # exact, whatever its size (a seed may be huge)
        if value < minimum:
            raise DataError(f"synthfer: {name} must be {want}, got {value!r}")
        return int(value) if kind is int else float(value)
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise DataError(f"synthfer: {name} must be {want}, got {value!r}") from None
    if not np.isfinite(number) or number < minimum or (kind is int and number != int(number)):
        raise DataError(f"synthfer: {name} must be {want}, got {value!r}")
    return int(number) if kind is int else number
