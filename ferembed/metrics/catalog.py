"""The metric catalog: one entry per headline metric of ``metrics.json``.

Every place that names, orders, formats or ranks a metric (the CLI summary, model cards, export,
the dashboard, the results study) reads it from here, as scikit-learn's scorer registry does for
scorers. The catalog holds no code that computes anything: it is data.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MetricInfo:
    """What a reader needs to show one metric.

    Attributes:
        key: the key in ``metrics.json`` (and in ``metrics["ci"]``).
        title: short display title ("P@1", "MAP@R", "Fisher").
        label: longer label for one-metric-per-line summaries.
        higher_is_better: True / False, or None where neither direction is better.
        fraction: the value is a fraction in [0, 1] (shown as a percentage).
        group: the ``evaluate`` group that computes it.
    """

    key: str
    title: str
    label: str
    higher_is_better: bool | None
    fraction: bool
    group: str

    @property
    def arrow(self) -> str:
        """ "↑" when higher is better, "↓" when lower is, "" otherwise."""
        return {True: "↑", False: "↓", None: ""}[self.higher_is_better]


_M = MetricInfo
#: Headline scalars, in the order they appear at the top level of metrics.json.
METRICS: tuple[MetricInfo, ...] = (
    _M("precision_at_1", "P@1", "precision@1", True, True, "retrieval"),
    _M("r_precision", "R-Prec", "R-precision", True, True, "retrieval"),
    _M("map_at_r", "MAP@R", "MAP@R", True, True, "retrieval"),
    # Class-balanced: the mean over classes of the per-class means (PML's avg_of_avgs).
    _M(
        "precision_at_1_balanced",
        "P@1 bal",
        "precision@1, class-balanced",
        True,
        True,
        "retrieval",
    ),
    _M(
        "r_precision_balanced",
        "R-Prec bal",
        "R-precision, class-balanced",
        True,
        True,
        "retrieval",
    ),
    _M("map_at_r_balanced", "MAP@R bal", "MAP@R, class-balanced", True, True, "retrieval"),
    _M("knn_accuracy", "kNN acc", "kNN accuracy", True, True, "classification"),
    _M("nmi", "NMI", "NMI", True, False, "clustering"),
    _M("ami", "AMI", "AMI", True, False, "clustering"),
    _M("ari", "ARI", "ARI", True, False, "clustering"),
    _M("purity", "Purity", "cluster purity", True, True, "clustering"),
    _M("silhouette", "Silhouette", "silhouette", True, False, "silhouette"),
    _M("davies_bouldin", "Davies-Bouldin", "Davies-Bouldin", False, False, "geometry"),
    _M("calinski_harabasz", "Calinski-Harabasz", "Calinski-Harabasz", True, False, "geometry"),
    _M("fisher_ratio", "Fisher", "Fisher ratio", True, False, "geometry"),
    _M("compactness", "Compactness", "compactness (to own centroid)", False, False, "geometry"),
    _M(
        "class_separation",
        "Separation",
        "separation (to nearest centroid)",
        True,
        False,
        "geometry",
    ),
    _M("accuracy", "Acc", "accuracy", True, True, "classification"),
    _M(
        "mean_class_accuracy", "Mean class acc", "mean class accuracy", True, True, "classification"
    ),
    _M("macro_f1", "Macro-F1", "macro F1", True, True, "classification"),
    _M("head_accuracy", "Head acc", "head accuracy", True, True, "classification"),
    _M(
        "centroid_accuracy",
        "Centroid acc",
        "nearest-centroid accuracy",
        True,
        True,
        "classification",
    ),
    _M("alignment", "Alignment", "alignment", False, False, "geometry"),
    _M("uniformity", "Uniformity", "uniformity", False, False, "geometry"),
    _M("nc1", "NC1", "NC1", False, False, "collapse"),
    _M("nc2_equinorm", "NC2 equinorm", "NC2 equinorm", False, False, "collapse"),
    _M("nc2_equiangularity", "NC2 equiangularity", "NC2 equiangularity", False, False, "collapse"),
    _M("nc3", "NC3", "NC3", False, False, "collapse"),
    _M(
        "hist_overlap", "Histogram overlap", "intra/inter distance overlap", False, True, "geometry"
    ),
)
#: key -> MetricInfo
CATALOG: dict[str, MetricInfo] = {m.key: m for m in METRICS}
#: The headline keys, always present at the top level of metrics.json (None when not computed).
HEADLINE: tuple[str, ...] = tuple(m.key for m in METRICS)


def metric_info(key: str) -> MetricInfo:
    """The catalog entry of ``key``.

    Raises:
        KeyError: naming the known keys when ``key`` is not a headline metric.
    """
    try:
        return CATALOG[key]
    except KeyError:
        raise KeyError(f"unknown metric {key!r}; known: {', '.join(HEADLINE)}") from None


def title(key: str) -> str:
    """Display title of ``key`` (the key itself for a metric outside the catalog)."""
    m = CATALOG.get(key)
    return m.title if m else key
