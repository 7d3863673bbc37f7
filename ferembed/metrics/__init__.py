"""Metrics of an embedding run: pure functions ``(embeddings, labels, *, options)`` and the
:func:`evaluate` orchestrator that writes ``metrics.json`` (schema in docs/metrics.md).

Modules (one concept each): ``retrieval`` (precision@k, recall@k, R-precision, MAP@R, kNN
accuracy), ``clustering`` (FAISS k-means -> NMI, AMI, ARI, purity), ``geometry`` (centroids,
compactness, separation, scatter ratios), ``distances`` (pair-distance histograms,
alignment/uniformity), ``geometry_bootstrap`` (intervals of the geometry scalars),
``silhouette``, ``collapse`` (NC1-NC3), ``classification`` (head / kNN vote / nearest centroid),
``neighbors`` (label disagreement, identity confound), ``bootstrap`` (confidence intervals),
``compare`` (paired comparison of two embeddings), ``evaluate`` (everything at once). Run
directories are ``ferembed.runs``' business (``evaluate_run``, ``compare_runs``). The exact kNN
search they share is :func:`compute_knn` (from :mod:`ferembed._search`, beneath ``metrics`` and
``index``); the private ``_kernels`` (class sums, unit rows, tiled distances) and ``_validation``
modules sit beneath the metric modules.
"""

from ferembed.metrics._knn import KNN, compute_knn, stratified_sample
from ferembed.metrics.bootstrap import bootstrap_ci, bootstrap_statistic
from ferembed.metrics.classification import (
    classification_metrics,
    knn_vote,
    nearest_centroid_predict,
)
from ferembed.metrics.clustering import (
    ami,
    ari,
    clustering_scores,
    compute_clusters,
    nmi,
    purity,
)
from ferembed.metrics.collapse import nc1, nc2, nc3
from ferembed.metrics.compare import compare_embeddings, mcnemar_test
from ferembed.metrics.distances import alignment, distance_histograms, uniformity
from ferembed.metrics.evaluate import GROUPS, HEADLINE, Reference, evaluate
from ferembed.metrics.geometry import (
    calinski_harabasz,
    class_centroids,
    coinciding_centroids,
    compactness,
    davies_bouldin,
    distance_to_centroid,
    fisher_ratio,
    separation,
)
from ferembed.metrics.neighbors import (
    identity_confound,
    identity_samples,
    label_disagreement,
    label_disagreement_samples,
)
from ferembed.metrics.retrieval import (
    Retrieval,
    compute_retrieval,
    knn_accuracy,
    map_at_r,
    map_at_r_samples,
    precision_at_k,
    precision_at_k_samples,
    r_precision,
    r_precision_samples,
    recall_at_k,
    recall_at_k_samples,
)
from ferembed.metrics.silhouette import silhouette_samples, silhouette_score

__all__ = [
    "GROUPS",
    "HEADLINE",
    "KNN",
    "Reference",
    "Retrieval",
    "alignment",
    "ami",
    "ari",
    "bootstrap_ci",
    "bootstrap_statistic",
    "calinski_harabasz",
    "class_centroids",
    "classification_metrics",
    "clustering_scores",
    "coinciding_centroids",
    "compactness",
    "compare_embeddings",
    "compute_clusters",
    "compute_knn",
    "compute_retrieval",
    "davies_bouldin",
    "distance_histograms",
    "distance_to_centroid",
    "evaluate",
    "fisher_ratio",
    "identity_confound",
    "identity_samples",
    "knn_accuracy",
    "knn_vote",
    "label_disagreement",
    "label_disagreement_samples",
    "map_at_r",
    "map_at_r_samples",
    "mcnemar_test",
    "nc1",
    "nc2",
    "nc3",
    "nearest_centroid_predict",
    "nmi",
    "precision_at_k",
    "precision_at_k_samples",
    "purity",
    "r_precision",
    "r_precision_samples",
    "recall_at_k",
    "recall_at_k_samples",
    "separation",
    "silhouette_samples",
    "silhouette_score",
    "stratified_sample",
    "uniformity",
]
