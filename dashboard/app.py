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

from dashboard import _data, _defaults  # noqa: E402
from dashboard._data import GROUP_KEY, MARKED_KEY, REFERENCE_KEY  # noqa: E402
from dashboard._safe import code_text  # noqa: E402

PAGES = Path(__file__).resolve().parent / "views"


def sidebar(root: Path) -> None:
    """Runs-root info, the run selection (shared by every page), its reference and a rescan
    button. Runs are listed by dataset/split; the default selection is the reference's group."""
    entries = _data.scan_runs(root)
    valid = [e for e in entries if e.run is not None]
    bad = [e for e in entries if e.run is None]
    valid.sort(key=lambda e: (_defaults.group_of(e.run.manifest), e.rel))
    options = [e.rel for e in valid]
    labels = {e.rel: e.label for e in valid}
    groups = {e.rel: _defaults.group_of(e.run.manifest) for e in valid}
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
                groups[entry.rel] = _defaults.group_of(entry.run.manifest)
    several = len(set(groups.values())) > 1
    described = [(e.rel, e.run.name, e.run.manifest) for e in valid]
    if _data.SELECTED_KEY not in st.session_state:
        st.session_state[_data.SELECTED_KEY] = _defaults.default_selection(
            described, limit=_data.DEFAULT_SELECTED, marked=st.session_state.get(MARKED_KEY)
        )
    else:
        st.session_state[_data.SELECTED_KEY] = [
            r for r in st.session_state[_data.SELECTED_KEY] if r in labels
        ]
    selected = st.session_state[_data.SELECTED_KEY]
    # The reference widget shows the first selected run (set before the widget is drawn).
    st.session_state[REFERENCE_KEY] = selected[0] if selected else None

    def name(rel: str) -> str:
        """The run's label, with its dataset/split when the root holds several."""
        label = labels.get(rel, rel)
        return f"{label} · {groups[rel]}" if several and rel in groups else label

    with st.sidebar:
        st.caption(f"Runs root: {code_text(root)}")
        if several:
            group_names = sorted(set(groups.values()))
            st.selectbox(
                "Dataset / split",
                group_names,
                index=None,
                placeholder="Select one group's runs",
                key=GROUP_KEY,
                on_change=_select_group,
                args=(described,),
                help="Runs of one dataset and split share their samples; pages that pair runs "
                "need that.",
            )
        st.multiselect(
            "Runs",
            options,
            key=_data.SELECTED_KEY,
            format_func=name,
            help="The runs every page shows (the first one is the reference for alignments "
            "and comparisons).",
        )
        if selected:
            st.selectbox(
                "Reference run",
                selected,
                key=REFERENCE_KEY,
                format_func=name,
                on_change=_mark_reference,
                help="Alignments, difference matrices and comparisons are made against it "
                "(default: the softmax run).",
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


def _mark_reference() -> None:
    """The user marked a reference: remember it and move it to the front of the selection."""
    ref = st.session_state.get(REFERENCE_KEY)
    if ref is None:
        return
    st.session_state[MARKED_KEY] = ref
    st.session_state[_data.SELECTED_KEY] = _defaults.order_with_reference(
        st.session_state.get(_data.SELECTED_KEY, []), ref
    )


def _select_group(described: list) -> None:
    """Select the runs of one dataset/split group, its reference first."""
    group = st.session_state.get(GROUP_KEY)
    if group is None:
        return
    mine = [r for r in described if _defaults.group_of(r[2]) == group]
    st.session_state[_data.SELECTED_KEY] = _defaults.default_selection(
        mine, limit=_data.DEFAULT_SELECTED, marked=st.session_state.get(MARKED_KEY)
    )


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
