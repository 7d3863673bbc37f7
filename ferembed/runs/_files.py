"""The names of every file and per-sample column of a run directory (docs/run_format.md).

This module is the one place they are spelled: everything else asks :mod:`ferembed.runs`.
"""

from __future__ import annotations

#: The manifest; its presence marks a complete run.
RUN_FILE = "run.json"
#: (N, D) float32 embeddings.
EMBEDDINGS_FILE = "embeddings.npy"
#: The per-sample table (columns :data:`SAMPLE_COLUMNS` of ``ferembed.runs.format``).
SAMPLES_FILE = "samples.parquet"
#: (N, C) float32 classifier logits (runs with a head).
LOGITS_FILE = "logits.npy"
#: (C, D) / (C,) float32 linear-head weight and bias.
HEAD_WEIGHT_FILE = "head_weight.npy"
HEAD_BIAS_FILE = "head_bias.npy"
#: (N, h, w) uint8 grayscale thumbnails.
THUMBS_FILE = "thumbs.npy"
#: The dataset's fold lists (k-fold datasets).
FOLDS_FILE = "folds.json"
#: What ``ferembed evaluate`` writes (docs/metrics.md).
METRICS_FILE = "metrics.json"
PER_SAMPLE_FILE = "per_sample.parquet"
#: Derived results (projections, comparisons), keyed by their inputs; safe to delete.
CACHE_DIR = "cache"
#: FAISS indexes built by ``ferembed index``.
INDEX_DIR = "index"

#: The files that make the run itself (not metrics, per-sample scores or caches, which evaluate
#: and the dashboard write without changing the run): a change to any of them is a new run.
RUN_FILES = (
    RUN_FILE,
    EMBEDDINGS_FILE,
    SAMPLES_FILE,
    LOGITS_FILE,
    THUMBS_FILE,
    HEAD_WEIGHT_FILE,
    HEAD_BIAS_FILE,
)

# per_sample.parquet columns (one row per sample of the run; see docs/metrics.md).
#: The row's sample id (pairs per_sample rows with samples rows).
PS_SAMPLE_ID = "sample_id"
#: The true label index.
PS_LABEL = "label"
#: Whether the row was one of the kNN queries (all rows unless the search was sampled).
PS_KNN_QUERY = "knn_query"
#: The head's argmax (runs with logits).
PS_HEAD_PRED = "head_pred"
#: The kNN vote of the row's neighbours, -1 for rows that were not queries.
PS_KNN_PRED = "knn_pred"
#: The nearest-centroid prediction, -1 when there was no candidate class.
PS_CENTROID_PRED = "centroid_pred"
#: Fraction of the k neighbours whose label differs (the label-noise score).
PS_LABEL_DISAGREEMENT = "label_disagreement"
#: Same-subject / same-expression rate among the neighbours (runs with subjects).
PS_SAME_SUBJECT = "same_subject_rate"
PS_SAME_EXPRESSION = "same_expression_rate"
#: The k-means cluster of the row.
PS_CLUSTER = "cluster"
#: Distance of the row to its class centroid.
PS_DISTANCE_TO_CENTROID = "distance_to_centroid"
#: The row's silhouette (when computed exactly).
PS_SILHOUETTE = "silhouette"
#: Per-query retrieval scores.
PS_PRECISION_AT_1 = "precision_at_1"
PS_R_PRECISION = "r_precision"
PS_MAP_AT_R = "map_at_r"
