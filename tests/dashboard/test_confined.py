"""The dashboard confined (issue #14), outside a browser: symlinks out of the runs root refused on
every read and write, user text shown as text, bad runs isolated, long typed text a one-line error.

The real-browser counterpart (requests, the leak server, downloads) is test_browser_confined.py.
"""

from __future__ import annotations

import html
import json
import re
import shutil

import numpy as np
import pytest
from hostile import BAD_VALUES, LINKED, SECRET, VALID, link_name, make_tree, secret_state

from dashboard import _safe
from ferembed.errors import FerembedError

PAGES = ("runs", "geometry", "confusion", "projection", "neighbours", "compare", "export")
#: Pages that draw the selected runs (and so skip a run they cannot draw, with a warning).
RUN_PAGES = PAGES[1:]
LEAK = "http://127.0.0.1:9"


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    tree = tmp_path_factory.mktemp("hostile")
    make_tree(tree, LEAK)
    return tree


# ---------------------------------------------------------------------------------------------
# dashboard._safe, directly
# ---------------------------------------------------------------------------------------------


def _loop(tmp_path):
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    return "loop/x"


@pytest.mark.parametrize(
    "typed, fragment",
    [
        ("x" * 5000, "longer than 4096"),
        ("a/" * 2100, "longer than 4096"),
        ("y" * 300, "not a valid path"),  # one name over NAME_MAX
        ("a\x00b", "NUL byte"),
        (_loop, "not a valid path"),
    ],
    ids=["5000-chars", "deep", "long-name", "nul", "symlink-loop"],
)
def test_unusable_typed_paths_are_one_line_errors(tmp_path, typed, fragment):
    text = typed(tmp_path) if callable(typed) else typed
    with pytest.raises(_safe.OutsideRootError) as err:
        _safe.resolve_inside(tmp_path, text)
    msg = str(err.value)
    assert fragment in msg or "outside the runs root" in msg
    assert "\n" not in msg and len(msg) < 300
    assert isinstance(err.value, FerembedError)


def _run_with_link(tmp_path, file: str, target):
    run = tmp_path / "root" / "run"
    (run / "cache").mkdir(parents=True)
    (run / "run.json").write_text("{}")
    link = run / file
    if link.is_dir():
        shutil.rmtree(link)
    elif link.exists():
        link.unlink()
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(target)
    return tmp_path / "root", run


@pytest.mark.parametrize("file", LINKED)
def test_a_link_out_of_the_root_is_found_anywhere_in_a_run(tmp_path, file):
    outside = tmp_path / "secret"
    outside.mkdir()
    root, run = _run_with_link(tmp_path, file, outside)
    assert _safe.outside_links(root, run) == [file]
    with pytest.raises(_safe.OutsideRootError, match=f"{re.escape(file)}: a symbolic link"):
        _safe.check_confined(root, run)


@pytest.mark.parametrize("target", ["inside", "dangling", "loop"])
def test_links_inside_the_root_pass_dangling_and_loops_do_not(tmp_path, target):
    other = tmp_path / "root" / "other.npy"
    other.parent.mkdir(parents=True)
    other.write_bytes(b"x")
    dest = {"inside": other, "dangling": tmp_path / "gone", "loop": tmp_path / "root/run/t.npy"}
    root, run = _run_with_link(tmp_path, "t.npy", dest[target])
    assert _safe.outside_links(root, run) == ([] if target == "inside" else ["t.npy"])


@pytest.mark.parametrize(
    "labels, preds, fragment",
    [
        ([0, np.nan, 1], [0, 1, 1], "label nan at row 1"),
        ([0, 1, 3], [0, 1, 1], "label 3 at row 2"),
        ([0, -1, 1], [0, 1, 1], "label -1 at row 1"),
        ([0, 1, 1], [42, 1, 1], "prediction 42 at row 0"),
        ([0, 1, 1], [0, -2, 1], "prediction -2 at row 1"),
        ([0, 1, 1], [0, 1.5, 1], "prediction 1.5 at row 1"),
    ],
)
def test_undrawable_labels_and_predictions_are_refused(labels, preds, fragment):
    with pytest.raises(FerembedError, match=re.escape(fragment)):
        _safe.check_values(np.array(labels, float), np.array(preds, float), 3, what="run")


def test_missing_predictions_are_fine():
    _safe.check_values(np.array([0, 1, 2]), np.array([-1, np.nan, 2]), 3, what="run")


HOSTILE = [
    f"![x]({LEAK}/a.png)",
    f"[l]({LEAK})",
    f"<img src='{LEAK}/i.png'>",
    f"<{LEAK}/auto>",
    ":material/star:",
    ":red[x] $x^2$ **b** _i_ ~s~ `c` # h | t |",
    "&lt;img&gt;",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_markdown_text_escapes_every_markdown_character(text):
    out = _safe.markdown_text(text)
    # Every special character is preceded by a backslash (so Markdown shows it as itself).
    assert re.search(r"(?<!\\)[\[\]()<>*_`$~|#!&]", out.replace("\\\\", "")) is None
    assert ":material/" not in out  # Streamlit's icon pattern is broken by a word joiner
    assert out.replace("\\", "").replace("\u2060", "") == text.replace("\\", "")


@pytest.mark.parametrize("text", [*HOSTILE, "a `b` c", "``x``", "`"])
def test_code_text_is_one_code_span(text):
    out = _safe.code_text(text)
    fence = re.match(r"`+", out).group(0)
    inner = out[len(fence) : -len(fence)]
    assert out.endswith(fence) and fence not in inner.strip()


@pytest.mark.parametrize("text", HOSTILE)
def test_plotly_text_has_no_tag(text):
    out = _safe.plotly_text(text)
    assert "<" not in out and ">" not in out and html.unescape(out) == text


# ---------------------------------------------------------------------------------------------
# The app on the hostile runs root (AppTest)
# ---------------------------------------------------------------------------------------------

#: Element lists of an AppTest whose values Streamlit renders as Markdown.
MARKDOWN_ELEMENTS = ("title", "header", "subheader", "markdown", "caption", "warning", "info")
MARKDOWN_ELEMENTS += ("error", "success", "exception")


def _markdown_values(at) -> list[str]:
    values = [str(el.value) for kind in MARKDOWN_ELEMENTS for el in getattr(at, kind)]
    values += [t.label for t in at.tabs] + [e.label for e in at.expander]
    for el in at.get("imgs"):
        values += [img.caption for img in el.proto.imgs]
    return values


#: Markdown that would fetch, link, draw HTML, an icon or a formula (when not backslash-escaped).
RAW = re.compile(r"(?<!\\)(!\[|\]\(|<img|<a |\$x|:material/)")


def _unescaped(value: str) -> list[str]:
    """The constructs of RAW in ``value`` outside code spans (which show their text as is)."""
    return RAW.findall(re.sub(r"(`+)(.+?)\1", "", value))


def _everything(at) -> str:
    """All text an AppTest run produced: Markdown values, tables, charts, widget options."""
    parts = _markdown_values(at)
    parts += [d.value.to_csv() for d in at.dataframe]
    parts += [el.proto.spec for el in at.get("plotly_chart")]
    parts += [str(w.options) for kind in ("selectbox", "multiselect") for w in getattr(at, kind)]
    return "\n".join(parts)


def _open(app, root, page, **state):
    def setup(at):
        at.session_state["proj_method"] = "pca"
        for key, value in state.items():
            at.session_state[key] = value

    # The valid runs in alphabetical order (the Markdown-named run first, as these tests expect;
    # runs missing from a root drop out); the softmax-first default is tested in test_dashux.py.
    return app(page, setup=setup, root=root, selected=list(VALID))


def test_linked_and_bad_value_runs_are_malformed_entries(app, hostile):
    at = _open(app, hostile / "runs", "runs")
    assert at.session_state["selected_runs"] == list(VALID)
    warnings = {w.value.split("`")[1]: w.value for w in at.main.warning if "`" in w.value}
    for file in LINKED:
        msg = warnings[link_name(file)]
        assert _safe.markdown_text(file) in msg and "symbolic link" in msg
    # (Worded by dashboard._safe.check_values, or by load_run if it refuses them first.)
    assert "label" in warnings["label_nan"] and "3" in warnings["label_nan"]
    assert "42" in warnings["pred_bad"]
    assert set(warnings) == {link_name(f) for f in LINKED} | set(BAD_VALUES)


@pytest.mark.parametrize("page", PAGES)
def test_no_page_shows_the_secret_or_interprets_user_text(app, hostile, page):
    before = secret_state(hostile)
    at = _open(app, hostile / "runs", page)
    assert not at.exception
    assert SECRET not in _everything(at)
    for value in _markdown_values(at):
        assert _unescaped(value) == [], (page, value)
    for el in at.get("plotly_chart"):  # (Plotly's JSON writes "<" as \u003c: decoded first)
        spec = json.dumps(json.loads(el.proto.spec))
        assert "<img" not in spec and "<a " not in spec
    assert secret_state(hostile) == before


@pytest.mark.parametrize("page", RUN_PAGES)
def test_a_run_no_page_can_draw_costs_only_its_own_entry(app, hostile, page):
    at = _open(app, hostile / "runs", page)
    assert not at.exception
    assert any(
        "Run knn\\_bad skipped" in w.value and "prediction 42" in w.value for w in at.warning
    )
    if page == "projection":
        spec = json.loads(at.get("plotly_chart")[0].proto.spec)
        titles = [a["text"] for a in spec["layout"]["annotations"]]
        assert titles[1:] == ["arcface", "softmax"] and titles[0].startswith("markdown ")


def test_a_link_appearing_after_loading_is_refused_before_writing(app, hostile, tmp_path):
    root = tmp_path / "runs"
    shutil.copytree(hostile / "runs" / "softmax", root / "softmax")
    shutil.copytree(hostile / "runs" / "arcface", root / "arcface")
    shutil.rmtree(root / "softmax" / "cache", ignore_errors=True)
    at = _open(app, root, "projection")
    assert len(at.get("plotly_chart")) == 1
    out = tmp_path / "elsewhere"
    out.mkdir()
    shutil.rmtree(root / "softmax" / "cache")
    (root / "softmax" / "cache").symlink_to(out, target_is_directory=True)
    at.session_state["proj_dim"] = 3  # a new projection: would be written to softmax's cache/
    at.run()
    assert not at.exception
    assert list(out.iterdir()) == []
    assert at.session_state["selected_runs"] == ["arcface"]
    assert "softmax" in " ".join(w.value for w in at.sidebar.warning)  # named as malformed


@pytest.mark.parametrize("typed", ["x" * 5000, "a/" * 2100, "y" * 300, "link_cache"])
def test_typed_paths_that_cannot_be_opened_are_one_line_errors(app, hostile, typed):
    at = _open(app, hostile / "runs", "runs")
    at.text_input(key="open_path").input(typed)
    at.button(key="open_btn").click().run()
    assert not at.exception
    (err,) = at.error
    assert "\n" not in err.value and len(err.value) < 400
    assert at.session_state["selected_runs"] == list(VALID)


def test_a_5000_character_sample_id_is_a_one_line_error(app, hostile):
    at = _open(app, hostile / "runs", "neighbours", nb_mode="id")
    at.text_input(key="nb_id").input("z" * 5000).run()
    assert not at.exception
    (err,) = at.error
    assert "No sample" in err.value and "5,000 characters" in err.value and len(err.value) < 600


@pytest.mark.parametrize(
    "bad",
    [
        {"per_class": "x"},
        {"per_class": {"angry": 3}},
        {"confusion": {"head": {"counts": "abc", "normalized": [["a"]]}}},
        {"classification": {"head": 5}},
        {"separation": {"centroid_distances": [["far"]]}},
        {"histograms": [1, 2]},
        {"ci": "wide"},
    ],
    ids=lambda bad: json.dumps(bad)[:40],
)
@pytest.mark.parametrize("page", ("geometry", "confusion", "compare", "export"))
def test_a_metrics_json_no_page_can_draw_costs_only_its_run(app, hostile, tmp_path, bad, page):
    root = tmp_path / "runs"
    for name in ("arcface", "softmax"):
        shutil.copytree(hostile / "runs" / name, root / name)
    path = root / "softmax" / "metrics.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **bad}))
    at = _open(app, root, page, selected_runs=["arcface", "softmax"])
    assert not at.exception
    assert any("Run softmax skipped: metrics.json" in w.value for w in at.warning), [
        w.value for w in at.warning
    ]
    if page in ("geometry", "confusion"):
        assert at.main.get("plotly_chart"), [w.value for w in at.warning]  # arcface is drawn


def _series(root, n=60):
    import ferembed
    from ferembed.data.synthfer import CLASS_NAMES

    y = np.arange(n) % len(CLASS_NAMES)
    for step in (0, 1):
        x = np.random.default_rng(step).normal(size=(n, 8)).astype(np.float32)
        ferembed.log_run(root / "series", x, y, class_names=list(CLASS_NAMES), step=step)
    return root / "series" / "series.json"


@pytest.mark.parametrize("how", ["step-outside", "series-json-linked", "series-json-broken"])
def test_a_series_leaving_the_root_costs_only_itself(app, tmp_path, how):
    root = tmp_path / "runs"
    file = _series(root)
    _series(root / "other")
    secret = tmp_path / "secret"
    secret.mkdir()
    doc = json.loads(file.read_text())
    if how == "step-outside":
        shutil.copytree(file.parent / doc["steps"][0]["run"], secret / "run")
        doc["steps"][0]["run"] = "../../secret/run"
        file.write_text(json.dumps(doc))
    elif how == "series-json-linked":
        (secret / "series.json").write_text(json.dumps({**doc, "name": SECRET}))
        file.unlink()
        file.symlink_to(secret / "series.json")
    else:
        file.write_text("{broken")
    at = app("dynamics", root=root)
    assert not at.exception
    assert SECRET not in _everything(at)
    warnings = " ".join(w.value for w in at.warning)
    assert "series" in warnings and ("outside the runs root" in warnings or "JSON" in warnings)
    assert at.main.get("plotly_chart")  # the other series is drawn
