"""Which engine runs the two heavy loops in the current context: the batch embedding of a dataset
split and the shared exact kNN search of ``evaluate``.

By default both run in this process (:func:`ferembed.runs.embed.embed_dataset`,
:func:`ferembed.metrics.retrieval.compute_retrieval`). ``embed --ray`` and ``evaluate --ray``
(:mod:`ferembed._ray`) swap in functions with the same signatures that spread the work over Ray
workers, for the duration of a ``with`` block, so that the run writer, the metric groups and the
CLI commands stay one code path. A :class:`contextvars.ContextVar` scopes the choice to the
calling thread (and task); a leaf module, so that the metrics and the run layer can read it
without importing each other or Ray.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextvars import ContextVar

#: ``fn(model, dataset, *, batch_size, device, progress, desc)`` -> (embeddings, logits, thumbs),
#: or None for :func:`ferembed.runs.embed.embed_dataset`.
EMBEDDER: ContextVar[Callable | None] = ContextVar("ferembed_embedder", default=None)
#: ``fn(x, y, *, k, distance, reference, reference_labels, queries, r_metrics)`` -> Retrieval,
#: or None for :func:`ferembed.metrics.retrieval.compute_retrieval`.
SEARCH: ContextVar[Callable | None] = ContextVar("ferembed_search", default=None)


@contextlib.contextmanager
def using(var: ContextVar, fn: Callable) -> Iterator[None]:
    """Use ``fn`` as the engine held by ``var`` (:data:`EMBEDDER` or :data:`SEARCH`) inside the
    block; the previous engine comes back after it, also on an error."""
    token = var.set(fn)
    try:
        yield
    finally:
        var.reset(token)
