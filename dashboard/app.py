"""ferembed dashboard: ``streamlit run dashboard/app.py -- --runs DIR`` (or ``ferembed dashboard``).

The runs root comes from ``--runs DIR`` after ``--`` or from ``$FEREMBED_RUNS``. The sidebar picks
the runs that every page shows; each page is a thin script in ``pages/``.
"""

from __future__ import annotations

import sys
from pathlib import Path

# `streamlit run` puts this file's folder on sys.path, not the repository: make `dashboard` and an
# uninstalled `ferembed` importable.
_REPO = Path(__file__).resolve().parent.parent
if str(_REPO) not in sys.path:
    sys.path.insert(0, str(_REPO))

import numpy as np  # noqa: E402
import streamlit as st  # noqa: E402
from PIL import Image  # noqa: E402

from dashboard import _data  # noqa: E402
from dashboard._safe import code_text  # noqa: E402

PAGES = Path(__file__).resolve().parent / "views"


def sidebar(root: Path) -> None:
    """Runs-root info, the run selection (shared by every page) and a rescan button."""
    entries = _data.scan_runs(root)
    valid = [e for e in entries if e.run is not None]
    bad = [e for e in entries if e.run is None]
    options = [e.rel for e in valid]
    labels = {e.rel: e.label for e in valid}
    # Runs added by path on the Runs page may live outside the scan (e.g. in a hidden folder).
    for rel in _data.selected_rels():
        if rel not in labels:
            try:
                entry = _data.load_entry(root, rel)
            except _data.OutsideRootError:
                continue
            if entry.run is not None:
                options.append(entry.rel)
                labels[entry.rel] = entry.label
    if _data.SELECTED_KEY not in st.session_state:
        st.session_state[_data.SELECTED_KEY] = options[: _data.DEFAULT_SELECTED]
    else:
        st.session_state[_data.SELECTED_KEY] = [
            r for r in st.session_state[_data.SELECTED_KEY] if r in labels
        ]
    with st.sidebar:
        st.caption(f"Runs root: {code_text(root)}")
        st.multiselect(
            "Runs",
            options,
            key=_data.SELECTED_KEY,
            format_func=lambda rel: labels.get(rel, rel),
            help="The runs every page shows (the first one is the reference for alignments "
            "and comparisons).",
        )
        st.caption(f"{len(valid)} run(s) found" + (f", {len(bad)} malformed" if bad else ""))
        if bad:
            st.warning(
                f"{len(bad)} malformed run(s) skipped: "
                + ", ".join(code_text(e.rel) for e in bad)
                + ". The Runs page says why."
            )
        if st.button("Rescan runs", key="rescan"):
            _data.clear_caches()
            st.rerun()


def page_icon() -> Image.Image:
    """The tab's icon, drawn here and served by the app itself: a Material icon name would make
    the browser fetch it from fonts.gstatic.com, an emoji from nowhere but looks out of place.

    Returns:
        a 32 x 32 RGB image: three coloured clusters of dots on white.
    """
    img = np.full((32, 32, 3), 255, np.uint8)
    yy, xx = np.mgrid[:32, :32]
    for (cy, cx), colour in zip(
        ((9, 10), (22, 8), (16, 23)), ((99, 110, 250), (239, 85, 59), (0, 204, 150)), strict=True
    ):
        for dy, dx in ((0, 0), (-4, 2), (3, 3), (2, -4), (-3, -3)):
            img[(yy - cy - dy) ** 2 + (xx - cx - dx) ** 2 <= 3] = colour
    return Image.fromarray(img)


def run() -> None:
    # No icon names anywhere (each would be fetched from the internet): the favicon is an image
    # the app serves, and the pages have none.
    st.set_page_config(page_title="ferembed", page_icon=page_icon(), layout="wide")
    page = st.navigation(
        [
            st.Page(PAGES / "runs.py", title="Runs", default=True),
            st.Page(PAGES / "geometry.py", title="Geometry"),
            st.Page(PAGES / "confusion.py", title="Confusion"),
            st.Page(PAGES / "projection.py", title="Projection"),
            st.Page(PAGES / "neighbours.py", title="Neighbours"),
            st.Page(PAGES / "compare.py", title="Compare"),
            st.Page(PAGES / "dynamics.py", title="Dynamics"),
            st.Page(PAGES / "export.py", title="Export"),
        ]
    )
    root = _data.runs_root()
    if root is None:
        st.error(
            "No runs root given. Start the dashboard with `ferembed dashboard --runs DIR` "
            f"(or set ${_data.RUNS_ENV})."
        )
        st.stop()
    if not root.is_dir():
        st.error(f"The runs root {code_text(root)} is not a directory.")
        st.stop()
    sidebar(root)
    page.run()


if __name__ == "__main__":
    run()
