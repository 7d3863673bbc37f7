"""The "most likely mislabelled" ranking of the Neighbours page.

Each sample's k nearest neighbours vote for their labels, each vote weighted by closeness
(``1 / (distance + eps)``). Samples are ranked by the **weighted disagreement** (the share of the
vote weight on labels other than the sample's own, in [0, 1]: continuous, unlike the plain
"8 of 10 neighbours disagree"), ties broken by the **vote margin** (the weight of the strongest
other class minus the weight of the label, over the total, in [-1, 1]: neighbours that agree on
one other class are a surer sign than neighbours of mixed classes), then by the mean distance to
the neighbours (a tight neighbourhood of another class first), then by sample order.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from dashboard import _data
from ferembed.runs import Run

#: Neighbours that vote.
K = 10


def vote_margins(
    neighbor_labels: np.ndarray,
    neighbor_distances: np.ndarray,
    labels: np.ndarray,
    num_classes: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distance-weighted kNN vote against each sample's label.

    Args:
        neighbor_labels: (N, k) int labels of the neighbours (-1: no neighbour, no vote).
        neighbor_distances: (N, k) float distances (>= 0) to them.
        labels: (N,) int label of each sample.
        num_classes: K.

    Returns:
        margin: (N,) float in [-1, 1]: (strongest other class - own label) / total weight;
            NaN for a sample without neighbours.
        disagreement: (N,) float in [0, 1]: share of the weight on labels other than its own.
        voted: (N,) int, the other class with the most weight.
    """
    nl = np.asarray(neighbor_labels, dtype=np.int64)
    d = np.asarray(neighbor_distances, dtype=float)
    y = np.asarray(labels, dtype=np.int64)
    valid = (nl >= 0) & np.isfinite(d)
    scale = np.median(d[valid & (d > 0)]) if (valid & (d > 0)).any() else 1.0
    w = np.where(valid, 1.0 / (np.maximum(d, 0.0) + 1e-3 * scale), 0.0)
    votes = np.zeros((len(y), num_classes))
    rows = np.repeat(np.arange(len(y)), nl.shape[1])
    np.add.at(votes, (rows[valid.ravel()], nl.ravel()[valid.ravel()]), w.ravel()[valid.ravel()])
    total = votes.sum(axis=1)
    own = votes[np.arange(len(y)), y]
    others = votes.copy()
    others[np.arange(len(y)), y] = -np.inf
    with np.errstate(invalid="ignore", divide="ignore"):
        margin = np.where(total > 0, (others.max(axis=1) - own) / total, np.nan)
        disagreement = np.where(total > 0, 1.0 - own / total, np.nan)
    return margin, disagreement, others.argmax(axis=1)


def ranked_suspects(run: Run, *, k: int = K) -> pd.DataFrame:
    """Every sample of ``run``, most likely mislabelled first (see the module's docstring).

    Returns:
        columns ``row`` (run row), ``weighted_disagreement``, ``margin`` and ``voted`` (index of
        the other class with the most vote weight).
    """
    columns = ["row", "weighted_disagreement", "margin", "voted"]
    if run.n < 2:
        return pd.DataFrame(columns=columns)
    rows, dists = _data.all_neighbours(run, k)
    labels = np.asarray(run.labels)
    nl = np.where(rows >= 0, labels[np.maximum(rows, 0)], -1)
    margin, dis, voted = vote_margins(nl, dists, labels, len(run.class_names))
    valid = (rows >= 0) & np.isfinite(dists)
    count = valid.sum(axis=1)
    total = np.where(valid, dists, 0.0).sum(axis=1)
    spread = np.where(count > 0, total / np.maximum(count, 1), np.inf)
    order = np.lexsort(
        (
            np.arange(run.n),
            spread,
            -np.nan_to_num(margin, nan=-2.0),
            -np.nan_to_num(dis, nan=-1.0),
        )
    )
    return pd.DataFrame(
        {
            "row": order,
            "weighted_disagreement": dis[order],
            "margin": margin[order],
            "voted": voted[order],
        },
        columns=columns,
    )
