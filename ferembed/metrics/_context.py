"""What one ``evaluate`` call shares between its metric groups.

The :class:`Reference` set, the recorder of timings/modes/notes, and the context (validated
inputs, the shared kNN search, the output being assembled) each group reads from and writes to.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, NamedTuple

import numpy as np

from ferembed.metrics._validation import check_embeddings
from ferembed.metrics.bootstrap import bootstrap_ci
from ferembed.metrics.retrieval import Retrieval


class Reference(NamedTuple):
    """A reference set that queries are searched against (e.g. the training run).

    Attributes:
        embeddings: (M, D) embeddings.
        labels: (M,) int labels (same class indexing as the queries).
        subjects: (M,) subject ids or None.
        name: display name (the reference run's name), or None.
    """

    embeddings: np.ndarray
    labels: np.ndarray
    subjects: np.ndarray | None = None
    name: str | None = None


def _check_reference(reference: Reference | None, dim: int, num_classes: int) -> Reference | None:
    if reference is None:
        return None
    rx, ry = check_embeddings(reference.embeddings, reference.labels, name="reference")
    if rx.shape[1] != dim:
        raise ValueError(f"reference has dimension {rx.shape[1]}, embeddings have {dim}")
    if ry.min() < 0 or ry.max() >= num_classes:
        raise ValueError(f"reference labels must lie in 0..{num_classes - 1}")
    subj = reference.subjects
    if subj is not None:
        subj = np.asarray(subj, dtype=object)
        if subj.shape != ry.shape:
            raise ValueError(f"reference subjects must have shape {ry.shape}, got {subj.shape}")
    return Reference(rx, ry, subj, reference.name)


class _Recorder:
    """Collects timings, modes and notes while the groups run."""

    def __init__(self) -> None:
        self.timings: dict[str, float] = {}
        self.modes: dict[str, str] = {}
        self.notes: list[str] = []

    @contextmanager
    def timed(self, group: str):
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.timings[group] = round(self.timings.get(group, 0.0) + time.perf_counter() - t0, 4)

    def safe(self, name: str, fn: Callable[[], Any]) -> Any:
        """``fn()``, or None with a note when the metric is undefined for these data."""
        try:
            return fn()
        except ValueError as exc:
            self.notes.append(f"{name}: {exc}")
            return None


def _mean_ci(
    values: np.ndarray, strata: np.ndarray, *, n_boot: int, seed: int
) -> tuple[float | None, list[float] | None]:
    """Mean of the finite values and a class-stratified bootstrap 95% interval."""
    ok = np.isfinite(values)
    if not ok.any():
        return None, None
    v = values[ok]
    if n_boot < 1:
        return float(v.mean()), None
    lo, hi = bootstrap_ci(v, n_boot=n_boot, seed=seed, stratify=strata[ok])
    return float(v.mean()), [lo, hi]


@dataclass
class _Context:
    """Validated inputs, shared intermediate results and the output being assembled."""

    x: np.ndarray  # (N, D) float32 as given
    xs: np.ndarray  # (N, D) what geometry runs on: unit rows for cosine, x for euclidean
    y: np.ndarray  # (N,) int64
    class_names: list[str]
    distance: str
    k: int
    seed: int
    n_boot: int
    max_exact_n: int
    sample_size: int
    max_pairs: int
    logits: np.ndarray | None
    head_weight: np.ndarray | None
    subjects: np.ndarray | None
    ref: Reference | None
    rec: _Recorder
    out: dict[str, Any] = field(default_factory=dict)
    ci: dict[str, list[float]] = field(default_factory=dict)
    ci_method: dict[str, str] = field(default_factory=dict)  # key -> "percentile" | "bca" | ...
    per_class: dict[str, dict[str, Any]] = field(default_factory=dict)
    per_sample: dict[str, np.ndarray] = field(default_factory=dict)
    search: Retrieval | None = None  # the shared kNN search
    device: str | None = None  # where the kNN search runs ("auto", "cpu", "cuda"; None: default)
    knn_backend: str | None = None  # "auto", "numpy", "faiss", "torch" (None: the default)

    @property
    def n(self) -> int:
        return self.x.shape[0]

    @property
    def nk(self) -> int:
        return len(self.class_names)

    @cached_property
    def counts(self) -> np.ndarray:
        return np.bincount(self.y, minlength=self.nk)

    @property
    def n_present(self) -> int:
        return int((self.counts > 0).sum())

    @property
    def ref_labels(self) -> np.ndarray:
        return self.y if self.ref is None else self.ref.labels

    def per_class_update(self, **columns: np.ndarray | list) -> None:
        """Add per-class values (each a length-K sequence) to the per_class section."""
        for c, name in enumerate(self.class_names):
            self.per_class[name].update({key: vals[c] for key, vals in columns.items()})

    def query_column(self, name: str, values: np.ndarray, fill: float | int = np.nan) -> None:
        """A per-sample column known for the searched queries only (``fill`` elsewhere)."""
        col = np.full(self.n, fill, dtype=np.result_type(np.asarray(values).dtype, fill))
        col[self.search.queries] = values
        self.per_sample[name] = col

    def headline(self, key: str, values: np.ndarray, strata: np.ndarray) -> None:
        """Headline mean of per-sample values, with its bootstrap interval in ``ci``."""
        self.out[key], interval = _mean_ci(values, strata, n_boot=self.n_boot, seed=self.seed)
        if interval is not None:
            self.ci[key] = interval
            self.ci_method[key] = "percentile"
