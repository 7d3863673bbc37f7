"""Cached, root-confined access to runs for the dashboard pages.

Every file the dashboard reads goes through here, and every path is first resolved (symlinks
followed, ``..`` collapsed) and checked to lie inside the runs root; a path that does not is
refused with :class:`OutsideRootError`. A run holding a symlink out of the root, or labels and
predictions the pages cannot draw, is a malformed entry (``dashboard._safe``), checked again
before every read or write the library does by path (:func:`confined`).

The dashboard only loads and draws: every file and column name of a run, every read and every
computation is ``ferembed.runs`` / ``ferembed.metrics``' (``Run.load_metrics``,
``Run.load_per_sample``, ``evaluate_run``, ``project_run``, ``compare_runs``); this module caches
their results for the pages. Per-sample annotations for plots are in ``_samples``.

Caching: loaded runs (memory-mapped arrays) and FAISS indexes are ``st.cache_resource`` (shared,
never copied); metrics, tables, projections and comparisons are ``st.cache_data`` (projections
and comparisons also on disk, by ``ferembed.runs.cache``). Cached functions take plain strings
plus a *stamp* (the mtime of the file they depend on), so a run or a metrics.json that is
rewritten is reloaded, and take the loaded ``Run`` as an underscore argument that Streamlit does
not hash. Nothing else is global: the selection lives in each browser tab's session state, so
several tabs work independently.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from dashboard._safe import OutsideRootError, check_confined, check_values, resolve_inside
from ferembed import projection as _projection
from ferembed.errors import FerembedError
from ferembed.metrics.catalog import title as metric_title
from ferembed.runs import (
    RUN_FILE,
    RUN_FILES,
    Run,
    compare_runs,
    evaluate_run,
    find_runs,
    is_comparison_cached,
    is_run_dir,
    load_run,
    project_run,
    projection_cache_path,
)

RUNS_ENV = "FEREMBED_RUNS"
#: Session-state key of the sidebar's run multiselect (relative run paths).
SELECTED_KEY = "selected_runs"
#: Session-state keys of the sidebar's reference menu, the reference the user marked, and the
#: dataset/split group menu.
REFERENCE_KEY = "reference_run"
MARKED_KEY = "reference_marked"
GROUP_KEY = "run_group"
#: Runs selected by default when the app opens.
DEFAULT_SELECTED = 6

#: Headline metrics shown in the runs table and the Compare page (titles from the catalog).
TABLE_METRICS: tuple[str, ...] = (
    "head_accuracy",
    "precision_at_1",
    "map_at_r",
    "r_precision",
    "knn_accuracy",
    "accuracy",
    "macro_f1",
    "silhouette",
    "nmi",
    "compactness",
    "class_separation",
    "fisher_ratio",
    "nc1",
)
#: The runs table's default columns (the others behind a toggle).
COMPACT_METRICS: tuple[str, ...] = (
    "head_accuracy",
    "precision_at_1",
    "map_at_r",
    "compactness",
    "class_separation",
    "fisher_ratio",
)


# ---------------------------------------------------------------------------------------------
# The runs root and paths inside it
# ---------------------------------------------------------------------------------------------


def parse_runs_arg(argv: list[str]) -> str | None:
    """``--runs DIR`` from the script arguments (``streamlit run app.py -- --runs DIR``)."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--runs", default=None)
    args, _ = parser.parse_known_args(argv)
    return args.runs


def runs_root() -> Path | None:
    """The runs root: ``--runs DIR`` after ``--`` on the command line, else ``$FEREMBED_RUNS``."""
    raw = parse_runs_arg(sys.argv[1:]) or os.environ.get(RUNS_ENV)
    return Path(raw).expanduser().resolve() if raw else None


def relative(root: Path, path: Path) -> str:
    rel = Path(path).resolve().relative_to(Path(root).resolve()).as_posix()
    return rel or "."


def _stamp(path: Path) -> int:
    """A change marker for cache keys: the file's mtime in ns, -1 when absent."""
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return -1


def _run_stamp(path: Path) -> tuple[int, ...]:
    """Change marker of a run directory: the mtimes of its files (a repaired array reloads)."""
    return tuple(_stamp(path / f) for f in RUN_FILES)


# ---------------------------------------------------------------------------------------------
# Runs
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunEntry:
    """One run directory found under the root, loaded or not.

    Attributes:
        rel: posix path relative to the root (the key used in the UI and session state).
        run: the loaded run, or None when it is malformed.
        error: why it could not be loaded (names the file), or None.
    """

    rel: str
    run: Run | None
    error: str | None = None

    @property
    def label(self) -> str:
        """How the sidebar names the run: its name, with its path when they differ."""
        if self.run is None or self.run.name == self.rel:
            return self.rel
        return f"{self.run.name} ({self.rel})"


@st.cache_data(ttl=10, show_spinner=False)
def _scan(root: str) -> list[str]:
    return [relative(Path(root), p) for p in find_runs(root)]


@st.cache_resource(max_entries=128, show_spinner=False)
def _load(path: str, stamp: tuple[int, ...]) -> Run | str:
    """A loaded run, or the error message (cached too, so a bad run is not re-read every rerun)."""
    del stamp  # part of the cache key only
    try:
        run = load_run(path)
        # Labels and predictions every page indexes class names with (NaN, -3 or 42 would take
        # a page down): refused here, so the run is one malformed entry.
        check_values(
            run.samples["label"].to_numpy(dtype=float, na_value=np.nan),
            run.samples["pred"].to_numpy(dtype=float, na_value=np.nan),
            len(run.class_names),
            what=path,
        )
        return run
    except FerembedError as exc:
        return str(exc)
    except Exception as exc:  # anything else a broken file can raise must not crash the page
        return f"{path}: {type(exc).__name__}: {exc}"


def scan_runs(root: Path) -> list[RunEntry]:
    """Every run directory under ``root``, loaded (cached) or with its error."""
    out = []
    for rel in _scan(str(root)):
        out.append(load_entry(root, rel))
    return out


def load_entry(root: Path, rel: str) -> RunEntry:
    """Load the run at ``rel`` (checked to be inside ``root``); errors are returned, not raised.

    Raises:
        OutsideRootError: ``rel`` escapes the root.
    """
    path = resolve_inside(root, rel)
    rel = relative(root, path)
    if not is_run_dir(path):
        return RunEntry(rel, None, f"{rel}: not a run directory (no {RUN_FILE})")
    try:  # checked on every load (a link can appear at any time), before anything is read
        check_confined(root, path)
    except OutsideRootError as exc:
        return RunEntry(rel, None, f"{rel}/{exc}")
    got = _load(str(path), _run_stamp(path))
    if isinstance(got, str):
        return RunEntry(rel, None, got)
    return RunEntry(rel, got)


def clear_caches() -> None:
    """Forget scanned and loaded runs (the sidebar's "Rescan" button)."""
    _scan.clear()
    _load.clear()


def selected_rels() -> list[str]:
    return list(st.session_state.get(SELECTED_KEY, []))


def selected_runs(root: Path) -> list[Run]:
    """The runs chosen in the sidebar, loaded; malformed ones are skipped (the sidebar says so)."""
    runs = []
    for rel in selected_rels():
        try:
            entry = load_entry(root, rel)
        except OutsideRootError:
            continue
        if entry.run is not None:
            runs.append(entry.run)
    return runs


def run_key(run: Run) -> str:
    """A unique, stable key for a run in widget keys and cache keys."""
    return str(run.path)


def describe(run: Run) -> dict[str, Any]:
    """Identification columns of a run from its manifest."""
    m = run.manifest
    model = m.get("model") if isinstance(m.get("model"), dict) else {}
    data = m.get("dataset") if isinstance(m.get("dataset"), dict) else {}
    return {
        "run": run.name,
        "dataset": data.get("name") or "",
        "split": data.get("split") or "",
        "loss": model.get("loss") or ("(import)" if m.get("source") == "import" else ""),
        "arch": model.get("arch") or "",
        "N": run.n,
        "D": run.dim,
        "distance": run.distance,
    }


# ---------------------------------------------------------------------------------------------
# Metrics (computed by ferembed.metrics; read here)
# ---------------------------------------------------------------------------------------------


@st.cache_data(max_entries=256, show_spinner=False)
def _metrics(path: str, stamp: int, _run: Run) -> dict[str, Any] | None:
    del path, stamp
    return _run.load_metrics()


def metrics(run: Run) -> dict[str, Any] | None:
    """The run's metrics.json (None when not computed yet, unreadable or not an object)."""
    got = _metrics(run_key(run), _stamp(run.metrics_path), run)
    return got if isinstance(got, dict) else None


@st.cache_data(max_entries=64, show_spinner=False)
def _per_sample(path: str, stamp: int, _run: Run) -> pd.DataFrame | None:
    del path, stamp
    return _run.load_per_sample()


def per_sample(run: Run) -> pd.DataFrame | None:
    """``Run.load_per_sample()`` (aligned to the run's rows), cached; None when absent."""
    return _per_sample(run_key(run), _stamp(run.per_sample_path), run)


def manifest_stamp(run: Run) -> int:
    """Change marker of the run's manifest (a rewritten run is a new one)."""
    return _stamp(run.manifest_path)


def metrics_stamp(run: Run) -> int:
    """Change marker of the run's metrics.json."""
    return _stamp(run.metrics_path)


def per_sample_stamp(run: Run) -> int:
    """Change marker of the run's per-sample scores."""
    return _stamp(run.per_sample_path)


def runs_table(entries: list[RunEntry]) -> pd.DataFrame:
    """One row per loadable run: identification, headline metrics and their 95% CIs."""
    rows = []
    for e in entries:
        if e.run is None:
            continue
        row = {"path": e.rel, **describe(e.run)}
        m = metrics(e.run) or {}
        ci = m.get("ci") if isinstance(m.get("ci"), dict) else {}
        row["metrics"] = "yes" if m else "missing"
        for key in TABLE_METRICS:
            val = m.get(key)
            row[metric_title(key)] = float(val) if isinstance(val, (int, float)) else np.nan
            lo_hi = ci.get(key)
            row[f"{metric_title(key)} CI"] = (
                f"[{lo_hi[0]:.3f}, {lo_hi[1]:.3f}]"
                if isinstance(lo_hi, (list, tuple))
                and len(lo_hi) == 2
                and all(isinstance(v, (int, float)) for v in lo_hi)
                else ""
            )
        rows.append(row)
    return pd.DataFrame(rows)


def confined(run: Run) -> Run:
    """The run, checked again for symlinks out of the runs root just before a read or a write
    that the library does by path (metrics, the keyed cache, exports).

    Raises:
        OutsideRootError: naming the link.
    """
    root = runs_root()
    if root is not None:
        check_confined(root, run.path)
    return run


def evaluate_now(run: Run) -> dict[str, Any]:
    """Compute and write the run's metrics and per-sample scores (``ferembed.runs.evaluate_run``);
    the stamps in the cache keys then reload them."""
    return evaluate_run(confined(run))


# ---------------------------------------------------------------------------------------------
# Projections, neighbours, comparisons, exports
# ---------------------------------------------------------------------------------------------


@st.cache_data(max_entries=64, show_spinner=False)
def _project(path: str, stamp: int, params: tuple, _run: Run) -> _projection.Projection:
    del path, stamp
    return project_run(_run, **dict(params))


@st.cache_data(max_entries=32, show_spinner=False)
def _align(keys: tuple, _projs: list, _ids: list) -> list[_projection.Projection]:
    del keys
    return _projection.align_projections(_projs, _ids)


def projection_for(run: Run, **params: Any) -> _projection.Projection:
    """One run's projection (cached in memory, and on disk by ``ferembed.runs.project_run``)."""
    key = tuple(sorted(params.items()))
    return _project(run_key(run), manifest_stamp(run), key, confined(run))


def is_projection_cached(run: Run, **params: Any) -> bool:
    """Whether the projection is on disk already (the page then skips the "computing" notice)."""
    return projection_cache_path(run, **params).is_file()


def align(runs: list[Run], projs: list[_projection.Projection]) -> list[_projection.Projection]:
    """Procrustes-align the projections onto the first run's (cached)."""
    ids = [sample_ids(r)[p.indices] for r, p in zip(runs, projs, strict=True)]
    keys = tuple(
        (run_key(r), manifest_stamp(r), tuple(sorted(p.params.items())))
        for r, p in zip(runs, projs, strict=True)
    )
    return _align(keys, projs, ids)


@st.cache_data(max_entries=64, show_spinner=False)
def _sample_ids(path: str, stamp: int, _run: Run) -> np.ndarray:
    del path, stamp
    return _run.samples["sample_id"].to_numpy(dtype=str)


def sample_ids(run: Run) -> np.ndarray:
    """(N,) str sample ids of the run."""
    return _sample_ids(run_key(run), manifest_stamp(run), run)


@st.cache_resource(max_entries=64, show_spinner=False)
def _id_index(path: str, stamp: int, _run: Run) -> tuple[pd.Index, np.ndarray]:
    """A hash index of the run's sample ids (first occurrence of a repeated id) and their rows."""
    del path, stamp
    ids = pd.Index(_run.samples["sample_id"].astype(str).to_numpy())
    first = ~ids.duplicated(keep="first")
    return ids[first], np.flatnonzero(first)


def rows_of(run: Run, ids) -> np.ndarray:
    """(len(ids),) int64 rows of these sample ids in the run, -1 where absent."""
    index, rows = _id_index(run_key(run), manifest_stamp(run), run)
    pos = index.get_indexer([str(s) for s in ids])
    return np.where(pos >= 0, rows[pos], -1).astype(np.int64)


def row_of(run: Run, sample_id: str) -> int | None:
    """Row of ``sample_id`` in the run, or None."""
    row = int(rows_of(run, [sample_id])[0])
    return row if row >= 0 else None


def _index_listing(run: Run) -> tuple:
    """Change marker of the indexes saved next to the run (a new ``ferembed index`` is seen)."""
    from ferembed.index import index_dir, list_indexes

    folder = index_dir(run.path)
    return tuple((name, _stamp(folder / f"{name}.json")) for name in list_indexes(run.path))


@st.cache_resource(max_entries=16, show_spinner=False)
def _searcher(path: str, stamp: int, listing: tuple, _run: Run):
    """The run's ``ferembed.index.NeighbourSearch``: its saved index (exact flat first, then the
    best measured recall) when one is current, else the exact kNN engine."""
    del path, stamp, listing
    from ferembed.index import open_neighbour_search

    written = os.stat(_run.manifest_path).st_mtime_ns
    run = confined(_run)
    return open_neighbour_search(
        run.path, run.embeddings, distance=run.distance, written_after_ns=written
    )


def searcher(run: Run):
    """What answers the run's neighbour queries (``.describe()`` says it, for a caption)."""
    return _searcher(run_key(run), manifest_stamp(run), _index_listing(run), run)


def neighbours(run: Run, row: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest other samples of ``row`` (:func:`searcher`): (rows, distances)."""
    knn = searcher(run).search(np.array([row]), k)
    keep = knn.indices[0] >= 0
    return knn.indices[0][keep], knn.distances[0][keep]


@st.cache_data(max_entries=16, show_spinner=False)
def _all_neighbours(
    path: str, stamp: int, listing: tuple, k: int, _run: Run
) -> tuple[np.ndarray, np.ndarray]:
    del path, stamp, listing
    knn = searcher(_run).search(np.arange(_run.n), k)
    return knn.indices, knn.distances


def all_neighbours(run: Run, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest other samples of every sample (:func:`searcher`; cached): (N, k) rows
    (-1 where missing) and (N, k) distances."""
    key, stamp = run_key(run), manifest_stamp(run)
    return _all_neighbours(key, stamp, _index_listing(run), min(k, run.n - 1), run)


#: Options of compare_runs used by the dashboard (part of the on-disk cache key).
COMPARE_OPTIONS = {"k": 10, "n_boot": 1000, "seed": 0}


#: Above this many samples the Compare page asks before running compare_runs (it searches the
#: exact kNN of both runs: ~9 minutes at 100k samples on two cores).
COMPARE_CONFIRM_N = 20_000


@st.cache_data(max_entries=32, show_spinner=False)
def _compare(key_a: tuple, key_b: tuple, _a: Run, _b: Run) -> dict[str, Any]:
    """compare_runs(a, b), also cached on disk in A's cache/ (it needs an exact kNN search of
    both runs: minutes at 100k samples) keyed by both runs' identity and the options."""
    del key_a, key_b
    return compare_runs(_a, _b, cache=True, **COMPARE_OPTIONS)


def compare_ready(run_a: Run, run_b: Run) -> bool:
    """Whether the comparison is cheap now: cached on disk, or small runs."""
    return max(run_a.n, run_b.n) <= COMPARE_CONFIRM_N or is_comparison_cached(
        run_a, run_b, **COMPARE_OPTIONS
    )


def compare(run_a: Run, run_b: Run) -> dict[str, Any]:
    """``ferembed.runs.compare_runs(a, b)`` (B - A), cached in memory and on disk."""
    key_a = (run_key(run_a), manifest_stamp(run_a))
    key_b = (run_key(run_b), manifest_stamp(run_b))
    return _compare(key_a, key_b, confined(run_a), confined(run_b))
