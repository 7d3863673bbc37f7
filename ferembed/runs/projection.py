"""Projections of run directories: ``ferembed.projection`` on a run's arrays, cached on disk.

Each run is projected on its own and cached in its ``cache/`` (:mod:`ferembed.runs.cache`),
keyed by the parameters and the run's identity; :func:`project_runs` then Procrustes-aligns the
projections onto the first run's, pairing points by ``sample_id``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ferembed import projection as _proj
from ferembed.runs.cache import CacheEntry, cache_entry, load_cached, save_cached
from ferembed.runs.evaluate import as_run
from ferembed.runs.format import Run


def _entry(run: Run, params: dict[str, Any]) -> CacheEntry:
    # Every max_points >= N projects all N points: one entry serves them all (the dashboard's
    # default, ``ferembed project``'s and ``ferembed plot``'s on a run of fewer points).
    key = {**params, "max_points": min(params["max_points"], run.n)}
    return cache_entry(
        run,
        "projection",
        {**key, "version": _proj.CACHE_VERSION},
        label=f"{params['method']}-{params['dim']}d",
        suffix=".npz",
    )


def projection_cache_path(run: Run, **params: Any) -> Path:
    """Where :func:`project_run` caches a projection of ``run`` with these parameters."""
    return _entry(run, _proj.projection_params(**params)).path


def project_run(
    run: Run | str | os.PathLike,
    *,
    dim: int = 2,
    method: str = "umap",
    max_points: int = _proj.DEFAULT_MAX_POINTS,
    n_neighbors: int = 15,
    min_dist: float = 0.1,
    seed: int = 0,
    cache: bool = True,
    on_stage: Callable[[str], None] | None = None,
) -> _proj.Projection:
    """Project one run (or a stratified sample of it) to ``dim`` dimensions.

    Cosine runs are L2-normalised first (:func:`ferembed.projection.project_embeddings`).
    With ``cache`` the result is read from / written to ``RUN_DIR/cache/`` (atomically).

    Args:
        run: a loaded :class:`~ferembed.runs.Run` or a run directory.
        dim: 2 or 3.
        method: ``"umap"`` or ``"pca"`` (instant, linear; for quick looks and tests).
        max_points: runs larger than this are sampled (:func:`ferembed.projection.sample_rows`).
        n_neighbors, min_dist: UMAP parameters (ignored by PCA but part of the cache key).
        seed: seeds both the sample and UMAP.
        cache: read and write the on-disk cache.
        on_stage: called with the name of each stage as it starts (``"neighbours"``,
            ``"layout"``, ``"save"``; nothing on a cache hit).

    Returns:
        :class:`~ferembed.projection.Projection` (not aligned); ``from_cache`` says whether it
        was read from the cache. The cache entry also holds ``Projection.sampling`` (which
        points were projected: all, or a seeded stratified sample).
    """
    run = as_run(run)
    params = _proj.projection_params(
        dim=dim,
        method=method,
        max_points=max_points,
        n_neighbors=n_neighbors,
        min_dist=min_dist,
        seed=seed,
    )
    entry = _entry(run, params)
    hit = load_cached(entry) if cache else None
    if hit is not None and {"indices", "coords"} <= hit.keys():
        return _proj.Projection(
            run=run.name,
            indices=hit["indices"].astype(np.int64),
            coords=hit["coords"].astype(np.float32),
            n_total=run.n,
            params=params,
            from_cache=True,
        )
    indices, coords = _proj.project_embeddings(
        run.embeddings,
        run.labels,
        run.sample_ids,
        distance=run.distance,
        params=params,
        on_stage=on_stage,
    )
    out = _proj.Projection(
        run=run.name, indices=indices, coords=coords, n_total=run.n, params=params
    )
    if cache:
        if on_stage is not None:
            on_stage("save")
        record = np.array(json.dumps(out.sampling))
        save_cached(entry, {"indices": indices, "coords": coords, "sampling": record})
    return out


def load_projection_sampling(run: Run | str | os.PathLike, **params: Any) -> dict | None:
    """The sampling record stored with a cached projection of ``run`` (see
    :attr:`ferembed.projection.Projection.sampling`), or None when it is not cached."""
    run = as_run(run)
    hit = load_cached(_entry(run, _proj.projection_params(**params)))
    if hit is None or "sampling" not in hit:
        return None
    return json.loads(str(hit["sampling"]))


def project_runs(runs: Sequence[Run | str | os.PathLike], **kwargs: Any) -> list[_proj.Projection]:
    """:func:`project_run` for each run, then
    :func:`~ferembed.projection.align_projections` onto the first."""
    loaded = [as_run(r) for r in runs]
    projections = [project_run(r, **kwargs) for r in loaded]
    ids = [r.sample_ids[p.indices] for r, p in zip(loaded, projections, strict=True)]
    return _proj.align_projections(projections, ids)
