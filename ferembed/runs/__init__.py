"""Embedding runs: the run-directory format, its files, and the run-level operations.

``ferembed.runs`` owns every file and column name of a run (``_files``), loading and saving
(``format``: :class:`Run`, :func:`load_run`, :func:`write_run`), the keyed disk cache under
``RUN/cache/`` (``cache``), and the operations on whole runs: :func:`evaluate_run`,
:func:`compare_runs`, :func:`project_run` / :func:`project_runs` and :func:`embed_and_evaluate`.
``ferembed.metrics`` and ``ferembed.projection`` do the array math they call.
"""

from ferembed.runs._files import (
    CACHE_DIR,
    EMBEDDINGS_FILE,
    FOLDS_FILE,
    HEAD_BIAS_FILE,
    HEAD_WEIGHT_FILE,
    INDEX_DIR,
    LOGITS_FILE,
    METRICS_FILE,
    PER_SAMPLE_FILE,
    RUN_FILE,
    RUN_FILES,
    SAMPLES_FILE,
    THUMBS_FILE,
)
from ferembed.runs.cache import CacheEntry, cache_entry, load_cached, save_cached
from ferembed.runs.compare import compare_runs, format_comparison, is_comparison_cached
from ferembed.runs.evaluate import as_run, evaluate_run
from ferembed.runs.format import (
    SAMPLE_COLUMNS,
    SCHEMA,
    Run,
    find_runs,
    is_run_dir,
    load_run,
    make_samples,
    write_run,
)
from ferembed.runs.pipeline import embed_and_evaluate
from ferembed.runs.projection import project_run, project_runs, projection_cache_path

__all__ = [
    "CACHE_DIR",
    "EMBEDDINGS_FILE",
    "FOLDS_FILE",
    "HEAD_BIAS_FILE",
    "HEAD_WEIGHT_FILE",
    "INDEX_DIR",
    "LOGITS_FILE",
    "METRICS_FILE",
    "PER_SAMPLE_FILE",
    "RUN_FILE",
    "RUN_FILES",
    "SAMPLES_FILE",
    "SAMPLE_COLUMNS",
    "SCHEMA",
    "THUMBS_FILE",
    "CacheEntry",
    "Run",
    "as_run",
    "cache_entry",
    "compare_runs",
    "embed_and_evaluate",
    "evaluate_run",
    "find_runs",
    "format_comparison",
    "is_comparison_cached",
    "is_run_dir",
    "load_cached",
    "load_run",
    "make_samples",
    "project_run",
    "project_runs",
    "projection_cache_path",
    "save_cached",
    "write_run",
]
