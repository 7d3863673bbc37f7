"""2-D / 3-D projections of embeddings (UMAP, or PCA as a fast fallback), aligned across runs.

The array math lives here; ``ferembed.runs.project_run`` / ``project_runs`` apply it to run
directories and cache the results in each run's ``cache/``.

Each run is projected on its own: runs of different losses live in unrelated spaces (often of
different dimension), so one reducer fitted on their union would mean nothing. To make "the same
face sits in a comparable place" true across runs, every projection after the first is
Procrustes-aligned (rotation/reflection, uniform scale, translation) onto the first one, using the
samples the two share (paired by ``sample_id``). Alignment is cheap and done at load time; the
expensive per-run projection is cached on disk (``ferembed.runs.cache``) keyed by its parameters,
so adding a run to a comparison never recomputes the others.

Large runs are projected on a stratified sample (classes keep their proportions, every class is
represented). The sample is chosen by a seeded hash of ``sample_id`` rather than by row position,
so runs of the same dataset split show the same faces even if their rows are ordered differently.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

METHODS = ("umap", "pca")
#: Bump when the way coordinates are computed changes, so stale caches are not reused.
CACHE_VERSION = 3
#: Default number of points shown per run; larger runs are sampled. 5k points per run keep the
#: structure visible, UMAP at a few seconds per run on two CPU cores, and a page of several runs'
#: scatters quick to redraw in the browser.
DEFAULT_MAX_POINTS = 5_000
#: ``ferembed project`` and the dashboard project every point of a run up to this many; larger
#: runs get a seeded stratified sample of this size (recorded with the projection).
FULL_MAX_POINTS = 200_000


@dataclass(frozen=True)
class Projection:
    """Low-dimensional coordinates of (a sample of) one run.

    Attributes:
        run: the run's display name.
        indices: (M,) int64 sorted rows of the run that were projected.
        coords: (M, dim) float32 coordinates, row ``i`` is sample ``indices[i]``.
        n_total: N, the number of samples in the run.
        params: the parameters that produced the coordinates (method, dim, max_points, seed...).
        aligned_to: name of the run these coordinates were Procrustes-aligned onto, or None.
        n_common: number of shared samples the alignment used (0 when not aligned).
        from_cache: whether the coordinates were read from the run's cache (not computed).
    """

    run: str
    indices: np.ndarray
    coords: np.ndarray
    n_total: int
    params: dict[str, Any] = field(default_factory=dict)
    aligned_to: str | None = None
    n_common: int = 0
    from_cache: bool = False

    @property
    def dim(self) -> int:
        return int(self.coords.shape[1])

    @property
    def n_shown(self) -> int:
        return int(self.indices.size)

    @property
    def sampled(self) -> bool:
        """Whether only a sample of the run is shown."""
        return self.n_shown < self.n_total

    @property
    def sampling(self) -> dict[str, Any]:
        """How the projected points were chosen (stored with the cached coordinates): every
        point, or a stratified sample by label of ``n_shown`` of ``n_total``, seeded by ``seed``
        (:func:`sample_rows`)."""
        return {
            "n_total": self.n_total,
            "n_shown": self.n_shown,
            "sampled": self.sampled,
            "strategy": "stratified by label, seeded hash of sample_id" if self.sampled else "all",
            "max_points": self.params.get("max_points"),
            "seed": self.params.get("seed"),
        }


def _id_hash(sample_ids: Sequence[str], seed: int) -> np.ndarray:
    """(N,) uint64 seeded hash of each id: a random-looking but reproducible order."""
    salt = str(seed).encode()
    out = np.empty(len(sample_ids), dtype=np.uint64)
    for i, sid in enumerate(sample_ids):
        digest = hashlib.blake2b(str(sid).encode(), digest_size=8, salt=salt[:16]).digest()
        out[i] = int.from_bytes(digest, "little")
    return out


def sample_rows(
    sample_ids: Sequence[str], labels: np.ndarray, max_points: int, *, seed: int = 0
) -> np.ndarray:
    """Stratified sample of at most about ``max_points`` rows, chosen by hashed sample id.

    Classes get rows in proportion to their size (largest-remainder rounding); every class gets at
    least one row, so the sample can exceed ``max_points`` by at most the number of classes.
    Within a class the rows with the smallest seeded hash of their ``sample_id`` are kept, so two
    runs of the same split keep the same samples whatever their row order.

    Args:
        sample_ids: (N,) sample ids.
        labels: (N,) int class labels.
        max_points: target sample size, >= 1; ``max_points >= N`` keeps every row.
        seed: changes which samples are drawn.

    Returns:
        (M,) int64 sorted row indices.
    """
    labels = np.asarray(labels)
    n = labels.shape[0]
    if len(sample_ids) != n:
        raise ValueError(f"sample_ids has {len(sample_ids)} entries, labels has {n}")
    if int(max_points) < 1:
        raise ValueError(f"max_points must be >= 1, got {max_points}")
    if max_points >= n:
        return np.arange(n, dtype=np.int64)
    classes, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    quota = counts * (max_points / n)
    alloc = np.floor(quota).astype(np.int64)
    rest = int(max_points - alloc.sum())
    alloc[np.argsort(-(quota - alloc), kind="stable")[:rest]] += 1
    alloc = np.minimum(np.maximum(alloc, 1), counts)
    h = _id_hash(sample_ids, seed)
    # Sort by (class, hash): the first alloc[c] rows of each class block are its sample.
    order = np.lexsort((h, inverse))
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    picked = [order[starts[c] : starts[c] + alloc[c]] for c in range(classes.size)]
    return np.sort(np.concatenate(picked)).astype(np.int64)


def reduce_embeddings(
    x: np.ndarray,
    *,
    method: str,
    dim: int,
    n_neighbors: int,
    min_dist: float,
    seed: int,
    on_stage: Callable[[str], None] | None = None,
) -> np.ndarray:
    """(M, D) -> (M, dim) float32 coordinates by UMAP or PCA.

    ``on_stage(name)`` is called as each stage starts (``"neighbours"``, ``"layout"``): the
    progress bar of ``ferembed project``.
    """
    stage = on_stage or (lambda name: None)
    if x.shape[0] <= dim + 1:
        # Too few points for UMAP's spectral init (or a meaningful PCA): spread them on a line.
        out = np.zeros((x.shape[0], dim), np.float32)
        out[:, 0] = np.arange(x.shape[0], dtype=np.float32)
        return out
    if method == "pca":
        stage("layout")
        xc = x - x.mean(axis=0, keepdims=True)
        _, _, vt = np.linalg.svd(xc, full_matrices=False)
        out = xc @ vt[:dim].T
        if out.shape[1] < dim:  # D < dim: pad with zeros
            out = np.pad(out, ((0, 0), (0, dim - out.shape[1])))
        return out.astype(np.float32)
    try:
        import umap
    except ImportError as exc:  # pragma: no cover - umap-learn is a pinned requirement
        raise ImportError(
            "UMAP projections need umap-learn: pip install umap-learn (or use method='pca')"
        ) from exc
    import warnings

    from ferembed.metrics._knn import compute_knn

    k = min(int(n_neighbors), x.shape[0] - 1)
    stage("neighbours")
    # UMAP's own approximate search (NN-descent) is most of its run time here (~25 s of ~28 s at
    # 3.5k points on two cores); the exact search of the metrics engine takes a fraction of a
    # second. UMAP expects each point to be its own first neighbour, hence exclude_self=False.
    knn = compute_knn(x, k, distance="euclidean", exclude_self=False)
    reducer = umap.UMAP(
        n_components=dim,
        n_neighbors=k,
        min_dist=float(min_dist),
        # A fixed epoch count: UMAP's default (500 below 10k points) costs 2-3x for no visible
        # gain on class-structured embeddings.
        n_epochs=200,
        random_state=seed,
        # UMAP's spectral init fails on disconnected kNN graphs of tiny runs; fall back silently.
        init="spectral" if x.shape[0] > 50 else "random",
        precomputed_knn=(knn.indices, knn.distances),
    )
    with warnings.catch_warnings():
        # "n_jobs overridden by setting random_state": reproducibility is the point here.
        # "precomputed_knn ... transform not available": we never transform new points.
        warnings.simplefilter("ignore", UserWarning)
        stage("layout")
        return reducer.fit_transform(x).astype(np.float32)


def projection_params(
    *,
    dim: int = 2,
    method: str = "umap",
    max_points: int = DEFAULT_MAX_POINTS,
    n_neighbors: int = 15,
    min_dist: float = 0.1,
    seed: int = 0,
) -> dict[str, Any]:
    """The checked, normalised projection parameters (the cache key's ``params``).

    Raises:
        ValueError: naming the bad parameter and its valid range.
    """
    if dim not in (2, 3):
        raise ValueError(f"dim must be 2 or 3, got {dim!r}")
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if int(max_points) < 1:
        raise ValueError(f"max_points must be >= 1, got {max_points}")
    if int(n_neighbors) < 2:
        raise ValueError(f"n_neighbors must be >= 2, got {n_neighbors}")
    if not 0.0 <= float(min_dist) <= 1.0:
        raise ValueError(f"min_dist must be in [0, 1], got {min_dist}")
    return {
        "dim": int(dim),
        "method": method,
        "max_points": int(max_points),
        "n_neighbors": int(n_neighbors),
        "min_dist": float(min_dist),
        "seed": int(seed),
    }


def project_embeddings(
    embeddings: np.ndarray,
    labels: np.ndarray,
    sample_ids: Sequence[str],
    *,
    distance: str,
    params: dict[str, Any],
    on_stage: Callable[[str], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Project (a stratified sample of) one set of embeddings.

    Cosine embeddings are L2-normalised first, so UMAP's Euclidean neighbourhoods follow cosine
    distance. UMAP gets an exact kNN graph (``ferembed.metrics._knn``) instead of searching its own.

    Args:
        embeddings: (N, D) float embeddings (memory-mapped is fine: only the sample is read).
        labels: (N,) int labels (the sample is stratified by them).
        sample_ids: (N,) ids (the sample is chosen by their seeded hash, :func:`sample_rows`).
        distance: ``"cosine"`` or ``"euclidean"``.
        params: the checked parameters of :func:`projection_params`.
        on_stage: called with the name of each stage as it starts (:func:`reduce_embeddings`).

    Returns:
        ``(indices (M,) int64 sorted rows, coords (M, dim) float32)``.
    """
    indices = sample_rows(sample_ids, labels, params["max_points"], seed=params["seed"])
    x = np.asarray(embeddings[indices], dtype=np.float32)
    if distance == "cosine":
        x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    coords = reduce_embeddings(
        x,
        method=params["method"],
        dim=params["dim"],
        n_neighbors=params["n_neighbors"],
        min_dist=params["min_dist"],
        seed=params["seed"],
        on_stage=on_stage,
    )
    return indices, coords


def subsample_projection(
    projection: Projection, sample_ids: Sequence[str], labels: np.ndarray, max_points: int
) -> Projection:
    """``projection`` restricted to a stratified sample of about ``max_points`` of its points.

    For drawing fewer points than were projected (the dashboard draws up to 100k of the 200k a
    run's cached projection may hold). The sample is :func:`sample_rows` over the projected
    points, seeded like the projection.

    Args:
        projection: a projection of M points.
        sample_ids, labels: (M,) the ids and labels of its points (of ``projection.indices``).
        max_points: at most about this many points are kept (all when M <= max_points).
    """
    keep = sample_rows(sample_ids, labels, max_points, seed=int(projection.params.get("seed", 0)))
    if keep.size == projection.n_shown:
        return projection
    return replace(
        projection,
        indices=projection.indices[keep],
        coords=projection.coords[keep],
        # Where the points were drawn from is part of their identity (caches key on params).
        params={**projection.params, "max_points": int(max_points), "of": projection.n_shown},
    )


def procrustes(
    source: np.ndarray, target: np.ndarray, *, scale: str = "least_squares"
) -> tuple[float, np.ndarray, np.ndarray]:
    """Similarity transform mapping ``source`` onto ``target``.

    Finds orthogonal ``R`` (reflections allowed: a mirrored UMAP is as good as the original),
    scale ``s`` and translation ``t``: with centred ``A = source - mean``, ``B = target - mean``
    and ``A.T @ B = U S V.T``, ``R = U V.T`` and ``t = mean(target) - s * mean(source) @ R``.

    Args:
        source, target: (M, d) paired points.
        scale: ``"least_squares"``: ``s = trace(S) / ||A||^2``, minimising
            ``||s * source @ R + t - target||_F`` (a layout that matches the target poorly is
            shrunk towards its centre, by up to its correlation with the target);
            ``"spread"``: ``s = ||B|| / ||A||``, so the aligned points keep the target's RMS
            spread however well they match (for showing layouts side by side).

    Returns:
        ``(s, R (d, d), t (d,))``.
    """
    if scale not in ("least_squares", "spread"):
        raise ValueError(f"scale must be 'least_squares' or 'spread', not {scale!r}")
    source = np.asarray(source, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    if source.shape != target.shape or source.ndim != 2:
        raise ValueError(f"source {source.shape} and target {target.shape} must be equal (M, d)")
    mu_s, mu_t = source.mean(axis=0), target.mean(axis=0)
    a, b = source - mu_s, target - mu_t
    u, sv, vt = np.linalg.svd(a.T @ b)
    r = u @ vt
    norm = float((a**2).sum())
    if norm <= 0:
        s = 1.0
    elif scale == "spread":
        s = float(np.sqrt((b**2).sum() / norm))
    else:
        s = float(sv.sum() / norm)
    return s, r, mu_t - s * mu_s @ r


def align_projections(
    projections: Sequence[Projection], sample_ids: Sequence[Sequence[str]]
) -> list[Projection]:
    """Procrustes-align every projection onto the first, pairing points by sample id.

    Rotation/reflection and translation are the least-squares ones; the scale keeps the first
    run's spread (:func:`procrustes` ``scale="spread"``): UMAP coordinates have no unit, and the
    least-squares scale would shrink a run whose layout differs from the first's, making its
    classes look tighter than they are.

    Args:
        projections: projections of several runs (same ``dim``).
        sample_ids: for each projection, the ``sample_id`` of each of its points
            (``run.samples.sample_id[projection.indices]``).

    Returns:
        New projections; the first is unchanged. One sharing fewer than ``dim + 1`` samples with
        the first cannot be aligned and is returned as is (``aligned_to`` stays None).
    """
    if len(projections) != len(sample_ids):
        raise ValueError(f"{len(projections)} projections but {len(sample_ids)} id lists")
    if not projections:
        return []
    dims = {p.dim for p in projections}
    if len(dims) > 1:
        raise ValueError(f"projections have different dimensions {sorted(dims)}")
    ref, ref_ids = projections[0], np.asarray(sample_ids[0], dtype=str)
    out = [ref]
    for p, ids in zip(projections[1:], sample_ids[1:], strict=True):
        ids = np.asarray(ids, dtype=str)
        common, i_ref, i_p = np.intersect1d(ref_ids, ids, assume_unique=False, return_indices=True)
        if common.size < p.dim + 1:
            out.append(p)
            continue
        s, r, t = procrustes(p.coords[i_p], ref.coords[i_ref], scale="spread")
        coords = (s * p.coords.astype(np.float64) @ r + t).astype(np.float32)
        out.append(
            Projection(
                run=p.run,
                indices=p.indices,
                coords=coords,
                n_total=p.n_total,
                params=p.params,
                aligned_to=ref.run,
                n_common=int(common.size),
            )
        )
    return out
