"""Human-readable renderings of collected metrics: a Markdown summary and an offline HTML report.

The HTML report is one self-contained file: plotly.js is inlined once in ``<head>`` (no CDN,
no network at view time) and every figure is a ``<div>`` that draws with it. It holds the
summary table with confidence intervals, per-run confusion matrices (head, kNN, nearest
centroid), per-class charts (compactness, separation margin, recall, F1, silhouette), centroid
distance heatmaps and intra/inter distance histograms -- whichever the runs' metrics.json have.
"""

from __future__ import annotations

import html
import math

import pandas as pd

from ferembed._format import adaptive
from ferembed.export.tables import RunMetrics, _metric_order

__all__ = ["render_html", "render_markdown"]

#: Per-class metrics charted (and tabulated in Markdown), in order, with their titles.
PER_CLASS_CHARTS = {
    "compactness_mean": "Compactness: mean distance to the class centroid (lower = tighter)",
    "margin": "Separation margin: nearest other centroid minus mean radius (higher = better)",
    "recall": "Recall",
    "f1": "F1",
    "silhouette": "Silhouette (mean over the class)",
}
_CONFUSION_TITLES = {"head": "classifier head", "knn": "kNN vote", "centroid": "nearest centroid"}


def _cell(row: pd.Series) -> str:
    text = adaptive(row["value"])
    if not (math.isnan(row["ci_low"]) or math.isnan(row["ci_high"])):
        text += f" [{adaptive(row['ci_low'])}, {adaptive(row['ci_high'])}]"
    return text


def _summary(long_df: pd.DataFrame, runs: list[str]) -> pd.DataFrame:
    """Rows = overall metrics, columns = runs, cells ``value [low, high]``."""
    overall = long_df[long_df["class"] == ""]
    order = _metric_order(overall["metric"].tolist())
    table = pd.DataFrame(index=order, columns=runs, dtype=object).fillna("–")
    for _, row in overall.iterrows():
        table.loc[row["metric"], row["run"]] = _cell(row)
    table.index.name = "metric"
    return table


def _per_class(long_df: pd.DataFrame, metric: str, runs: list[str]) -> pd.DataFrame:
    sub = long_df[(long_df["class"] != "") & (long_df["metric"] == metric)]
    if sub.empty:
        return pd.DataFrame()
    classes = list(dict.fromkeys(sub["class"].tolist()))
    table = sub.pivot_table(
        index="class", columns="run", values="value", aggfunc="first", dropna=False
    )
    return table.reindex(index=classes, columns=[r for r in runs if r in table.columns])


def _md_table(df: pd.DataFrame, index_name: str) -> str:
    cols = [index_name] + [str(c) for c in df.columns]
    esc = [c.replace("|", "\\|") for c in cols]
    lines = ["| " + " | ".join(esc) + " |", "|" + "|".join(["---"] * len(cols)) + "|"]
    for idx, row in df.iterrows():
        cells = [str(idx)] + [v if isinstance(v, str) else adaptive(v) for v in row.tolist()]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)


def render_markdown(runs: list[RunMetrics], long_df: pd.DataFrame, wide_df: pd.DataFrame) -> str:
    """Summary (metrics x runs, with intervals) and one per-class table per charted metric."""
    names = [r.name for r in runs]
    parts = ["# ferembed metrics", "", "## Runs", ""]
    info = wide_df.set_index("run")[["path", "n", "num_classes", "distance"]]
    parts += [_md_table(info.astype(object).where(info.notna(), "–").astype(str), "run"), ""]
    parts += ["## Summary", "", "Value [95% bootstrap interval where computed].", ""]
    parts += [_md_table(_summary(long_df, names), "metric"), ""]
    for metric, title in PER_CLASS_CHARTS.items():
        table = _per_class(long_df, metric, names)
        if not table.empty:
            parts += [f"## Per class: {title}", "", _md_table(table, "class"), ""]
    return "\n".join(parts)


# --------------------------------------------------------------------------- HTML

_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
h1 { font-size: 1.6em; } h2 { margin-top: 2em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; font-size: 0.9em; }
th, td { border: 1px solid #ddd; padding: 4px 8px; text-align: right; }
th:first-child, td:first-child { text-align: left; }
thead th { background: #f3f3f3; }
.grid { display: flex; flex-wrap: wrap; gap: 1em; }
.fig { flex: 0 0 auto; }
"""


def _html_table(df: pd.DataFrame, index_name: str) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in [index_name, *df.columns])
    body = []
    for idx, row in df.iterrows():
        cells = [v if isinstance(v, str) else adaptive(v) for v in row.tolist()]
        tds = "".join(f"<td>{html.escape(c)}</td>" for c in [str(idx), *cells])
        body.append(f"<tr>{tds}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


class _Figures:
    """Renders plotly figures as divs with deterministic ids (plotly.js is inlined once)."""

    def __init__(self) -> None:
        self.count = 0

    def div(self, fig, width: int = 520, height: int = 460) -> str:
        self.count += 1
        fig.update_layout(width=width, height=height, margin=dict(l=60, r=20, t=50, b=60))
        body = fig.to_html(
            full_html=False,
            include_plotlyjs=False,
            include_mathjax=False,
            div_id=f"fig{self.count}",
            config={"displaylogo": False, "responsive": False},
        )
        return f'<div class="fig">{body}</div>'


def _confusion_figs(run: RunMetrics, figs: _Figures) -> list[str]:
    import plotly.graph_objects as go

    m = run.metrics
    names = [str(c) for c in m.get("class_names") or []]
    out = []
    for source, entry in (m.get("confusion") or {}).items():
        if not isinstance(entry, dict) or entry.get("counts") is None:
            continue
        counts = entry["counts"]
        norm = entry.get("normalized") or counts
        labels = names if len(names) == len(counts) else [str(i) for i in range(len(counts))]
        fig = go.Figure(
            go.Heatmap(
                z=norm,
                x=labels,
                y=labels,
                text=counts,
                texttemplate="%{text}",
                colorscale="Blues",
                zmin=0,
                zmax=1 if entry.get("normalized") else None,
                hovertemplate="true %{y}<br>pred %{x}<br>rate %{z:.3f}<br>count %{text}"
                "<extra></extra>",
            )
        )
        title = _CONFUSION_TITLES.get(source, source)
        fig.update_layout(
            title=f"{run.name}: {title}",
            xaxis_title="predicted",
            yaxis_title="true",
            yaxis_autorange="reversed",
        )
        out.append(figs.div(fig))
    return out


def _centroid_fig(run: RunMetrics, figs: _Figures) -> str | None:
    import plotly.graph_objects as go

    sep = run.metrics.get("separation") or {}
    dm = sep.get("centroid_distances")
    if not dm:
        return None
    names = [str(c) for c in run.metrics.get("class_names") or []]
    labels = names if len(names) == len(dm) else [str(i) for i in range(len(dm))]
    fig = go.Figure(
        go.Heatmap(z=dm, x=labels, y=labels, colorscale="Viridis", texttemplate="%{z:.3f}")
    )
    dist = run.metrics.get("distance") or ""
    fig.update_layout(title=f"{run.name}: centroid distances ({dist})", yaxis_autorange="reversed")
    return figs.div(fig)


def _histogram_fig(run: RunMetrics, figs: _Figures) -> str | None:
    import plotly.graph_objects as go

    h = run.metrics.get("histograms") or {}
    edges = h.get("bin_edges")
    if not edges or h.get("intra") is None or h.get("inter") is None:
        return None
    mids = [(a + b) / 2 for a, b in zip(edges[:-1], edges[1:], strict=True)]
    fig = go.Figure()
    fig.add_bar(x=mids, y=h["intra"], name="intra-class", opacity=0.6)
    fig.add_bar(x=mids, y=h["inter"], name="inter-class", opacity=0.6)
    ov = h.get("overlap")
    fig.update_layout(
        barmode="overlay",
        xaxis_title="distance",
        yaxis_title="fraction of pairs",
        title=f"{run.name}: pair distances (overlap {adaptive(ov)})",
    )
    return figs.div(fig)


def _per_class_fig(long_df, metric, title, names, figs) -> str | None:
    import plotly.graph_objects as go

    table = _per_class(long_df, metric, names)
    if table.empty:
        return None
    fig = go.Figure()
    for run in table.columns:
        fig.add_bar(x=[str(c) for c in table.index], y=table[run].tolist(), name=str(run))
    fig.update_layout(title=title, barmode="group", xaxis_title="class", yaxis_title=metric)
    return figs.div(fig, width=1000, height=420)


def render_html(
    runs: list[RunMetrics],
    long_df: pd.DataFrame,
    wide_df: pd.DataFrame,
    *,
    title: str = "ferembed metrics report",
) -> str:
    """A single self-contained HTML page (works offline; plotly.js inlined once)."""
    from plotly.offline import get_plotlyjs

    names = [r.name for r in runs]
    figs = _Figures()
    info = wide_df.set_index("run")[["path", "n", "num_classes", "distance"]]
    info = info.astype(object).where(info.notna(), "–").astype(str)
    body = [
        f"<h1>{html.escape(title)}</h1>",
        "<h2>Runs</h2>",
        _html_table(info, "run"),
        "<h2>Summary</h2>",
        "<p>Value [95% bootstrap interval where computed].</p>",
        _html_table(_summary(long_df, names), "metric"),
    ]
    body.append("<h2>Per class</h2>")
    for metric, chart_title in PER_CLASS_CHARTS.items():
        div = _per_class_fig(long_df, metric, chart_title, names, figs)
        if div:
            body.append(div)
    body.append("<h2>Confusion matrices</h2>")
    body.append(
        "<p>Rows: true class; columns: predicted; colour: row-normalised rate; numbers: counts.</p>"
    )
    for run in runs:
        divs = _confusion_figs(run, figs)
        if divs:
            body.append(f"<h3>{html.escape(run.name)}</h3><div class='grid'>{''.join(divs)}</div>")
    centroid = [d for d in (_centroid_fig(r, figs) for r in runs) if d]
    if centroid:
        body += ["<h2>Centroid distances</h2>", f"<div class='grid'>{''.join(centroid)}</div>"]
    hists = [d for d in (_histogram_fig(r, figs) for r in runs) if d]
    if hists:
        body += ["<h2>Distance histograms</h2>", f"<div class='grid'>{''.join(hists)}</div>"]
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            f"<title>{html.escape(title)}</title>",
            f"<style>{_CSS}</style>",
            f'<script type="text/javascript">{get_plotlyjs()}</script>',
            "</head><body>",
            *body,
            "</body></html>",
        ]
    )
