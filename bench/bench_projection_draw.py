"""What makes the Projection page slow to draw: plotly.js alone, in headless Chromium.

    python bench/bench_projection_draw.py [--repeat 3]

Draws projection-like figures (random points, one Scattergl trace per run and class, hover
text, box-select drag mode) with ``Plotly.newPlot`` in a blank page of headless Chromium with
software WebGL (``--disable-gpu``, as the dashboard's browser bench), and times each until two
animation frames later. Variants separate the suspects: the number of WebGL subplots, the canvas
height, the number of traces, the hover text, SVG instead of WebGL. No Streamlit involved.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
import plotly
import plotly.graph_objects as go
from plotly.subplots import make_subplots

PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu"]
TIME_JS = """async (spec) => {
  const f = JSON.parse(spec); const el = document.getElementById('g');
  Plotly.purge(el); const t = performance.now();
  await Plotly.newPlot(el, f.data, f.layout);
  await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
  return performance.now() - t;
}"""


def figure(
    panels: int = 6,
    n: int = 1400,
    *,
    classes: int = 7,
    tiles: bool = False,
    height: int | None = None,
    hover: bool = True,
    gl: bool = True,
) -> str:
    """The JSON of ``panels`` runs of ``n`` points, as subplots (2 across, 460 px a row, as the
    page drew them before) or as tiles of one axis (``tiles``)."""
    rng = np.random.default_rng(0)
    rows = -(-panels // 2)
    fig = make_subplots(rows=1 if tiles else rows, cols=1 if tiles else min(2, panels))
    for p in range(panels):
        xy = rng.normal(size=(n, 2)).astype(np.float32)
        if tiles:
            xy += np.array([10 * (p % 3), -10 * (p // 3)], np.float32)
        labels = rng.integers(0, classes, n)
        for c in range(classes):
            m = labels == c
            kw = {
                "mode": "markers",
                "marker": {"size": 5, "opacity": 0.8, "color": f"hsl({c * 50},60%,50%)"},
                "customdata": np.stack([np.full(m.sum(), p), np.flatnonzero(m)], 1),
            }
            if hover:
                text = [f"sample_{i:06d}<br>happy → sad" for i in np.flatnonzero(m)]
                kw.update(hovertext=text, hovertemplate="%{hovertext}<extra></extra>")
            trace = (go.Scattergl if gl else go.Scatter)(x=xy[m, 0], y=xy[m, 1], **kw)
            fig.add_trace(trace, row=1 if tiles else p // 2 + 1, col=1 if tiles else p % 2 + 1)
    fig.update_layout(height=height or 460 * rows, width=1200, dragmode="select")
    return fig.to_json()


VARIANTS = {
    "6 runs x 1,400 as 6 subplots, 1,380 px (before)": {},
    "the same, no hover text": {"hover": False},
    "the same, SVG instead of WebGL": {"gl": False},
    "6 subplots of 10 points, 1,380 px": {"n": 10},
    "6 subplots, 690 px": {"height": 690},
    "1 panel of 8,400 points, 460 px": {"panels": 1, "n": 8400},
    "1 panel of 8,400 points, 1,380 px": {"panels": 1, "n": 8400, "height": 1380},
    "6 runs as tiles of one axis, 1,380 px": {"tiles": True},
    "6 runs as tiles of one axis, 820 px (after)": {"tiles": True, "height": 820},
    "6 runs x 16,700 (100k) as tiles, 820 px": {"tiles": True, "height": 820, "n": 16_700},
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=3, help="draws per variant (%(default)s)")
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        page = browser.new_page(viewport={"width": 1300, "height": 1000})
        page.set_content("<div id=g></div>")
        page.add_script_tag(content=PLOTLY_JS.read_text())
        print("| figure | JSON | draw times (ms) |\n|---|---:|---|")
        for name, kw in VARIANTS.items():
            spec = figure(**kw)
            times = [page.evaluate(TIME_JS, spec) for _ in range(args.repeat)]
            ms = ", ".join(f"{t:.0f}" for t in times)
            print(f"| {name} | {len(spec) / 1e6:.2f} MB | {ms} |", flush=True)
        browser.close()
    print(f"load avg {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
