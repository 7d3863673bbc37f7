"""The Compare page's tables (issue #13): the complete headline table with catalog titles, arrows
and CIs, and per-class recall deltas greyed where their paired interval contains 0."""

from __future__ import annotations

import numpy as np
import pytest

from ferembed.runs import load_run


def test_compare_headline_table_is_complete_with_arrows(app, runs_root):
    from page_views import metrics_of, tables_with

    from ferembed.metrics.catalog import HEADLINE, metric_info

    at = app("compare")
    table = tables_with(at, "metric", "better", "softmax")[0].set_index("metric")
    shown = ["softmax", "arcface", "supcon"]
    ms = [metrics_of(runs_root, n) for n in shown]
    expected = [
        k
        for k in HEADLINE
        if all(isinstance(m.get(k), (int, float)) and np.isfinite(m[k]) for m in ms)
    ]
    assert list(table.index) == [metric_info(k).title for k in expected]
    assert len(expected) > 13  # more than the runs table's subset
    for k in expected:
        row = table.loc[metric_info(k).title]
        assert row["better"] == metric_info(k).arrow
        for name, m in zip(shown, ms, strict=True):
            ci = (m.get("ci") or {}).get(k)
            want = f"{m[k]:.4f}" + (f" [{ci[0]:.4f}, {ci[1]:.4f}]" if ci else "")
            assert row[name] == want


def test_per_class_recall_deltas_are_greyed_when_not_significant(app, runs_root):
    from dashboard import _compare_table

    at = app("compare")
    from page_views import tables_with

    table = tables_with(at, "class", "recall B - A", "significant")[0]
    a, b = load_run(runs_root / "softmax"), load_run(runs_root / "arcface")
    ok_a = np.asarray(a.logits).argmax(1) == a.labels
    ok_b = np.asarray(b.logits).argmax(1) == b.labels
    for c, name in enumerate(a.class_names):
        m = a.labels == c
        row = table.set_index("class").loc[name]
        assert row["recall B - A"] == pytest.approx(ok_b[m].mean() - ok_a[m].mean())
        lo, hi = _compare_table.recall_delta_ci(
            int(m.sum()), int((~ok_a & ok_b & m).sum()), int((ok_a & ~ok_b & m).sum())
        )
        assert row["significant"] == (lo > 0 or hi < 0)
    ctx = _compare_table.grey_insignificant(table)._compute().ctx  # (row, col) -> css
    cols = [table.columns.get_loc(c) for c in ("recall B - A", "CI")]
    for r, sig in enumerate(table["significant"]):
        for c in cols:
            assert (("color", "#9a9a9a") in ctx.get((r, c), [])) == (not sig)
    assert not table["significant"].all()  # something is greyed on these runs
