"""`ferembed plot`: figures written through the CLI, then opened and read back.

SVGs are parsed with xml.etree (panels are the ``panel_<i>`` groups, bars the ``bar_<run>_<key>``
groups, text is text since fonts are not turned into paths); PDFs are checked for their header and
one page; PNGs are opened with Pillow.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
import zlib

import numpy as np
import pytest
from PIL import Image

from ferembed.cli import main
from ferembed.export.figures import RUN_PALETTE, _run_styles, stable_run_colors
from ferembed.runs import EMBEDDINGS_FILE, evaluate_run, load_run, make_samples, write_run

CLASSES = ["angry", "happy", "sad"]
SVG = "{http://www.w3.org/2000/svg}"
#: (name, has a classifier head, noise): two runs with logits, one without.
RUNS = (("softmax", True, 0.35), ("arcface", True, 0.2), ("supcon", False, 0.3))


def _write(path, *, head: bool, noise: float, seed: int, n: int = 90, ids: str = "s"):
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % len(CLASSES)
    centres = np.eye(len(CLASSES), 8, dtype=np.float32)
    x = centres[labels] + rng.normal(scale=noise, size=(n, 8)).astype(np.float32)
    logits = (x @ centres.T * 4.0).astype(np.float32) if head else None
    samples = make_samples(
        labels,
        CLASSES,
        sample_ids=[f"{ids}{i:03d}" for i in range(n)],
        preds=logits.argmax(axis=1) if head else None,
    )
    return write_run(
        path,
        embeddings=x,
        samples=samples,
        class_names=CLASSES,
        logits=logits,
        head_weight=centres * 4.0 if head else None,
        head_bias=np.zeros(len(CLASSES), np.float32) if head else None,
        name=path.name,
    )


def _make_runs(root, *, evaluate: bool = True):
    paths = []
    for i, (name, head, noise) in enumerate(RUNS):
        path = _write(root / name, head=head, noise=noise, seed=i)
        if evaluate:
            evaluate_run(path)
        paths.append(path)
    return paths


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return _make_runs(tmp_path_factory.mktemp("runs"))


@pytest.fixture(scope="module")
def figures(runs, tmp_path_factory):
    """Every figure in every format, for the three runs; (exit code, output folder)."""
    out = tmp_path_factory.mktemp("plot") / "figs"
    argv = ["plot", *map(str, runs), "--out", str(out), "--method", "pca", "--format",
            "svg,pdf,png"]  # fmt: skip
    return main(argv), out


def _svg(path):
    root = ET.parse(path).getroot()
    assert root.tag == f"{SVG}svg"
    return root


def _texts(root) -> list[str]:
    return ["".join(e.itertext()).strip() for e in root.iter(f"{SVG}text")]


def _ids(root, prefix: str) -> list[str]:
    return [e.get("id") for e in root.iter() if (e.get("id") or "").startswith(prefix)]


def _fill(root, gid: str) -> str:
    (group,) = [e for e in root.iter() if e.get("id") == gid]
    style = next(iter(group)).get("style")
    return re.search(r"fill: (#[0-9a-f]{6})", style).group(1)


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("ferembed: error: ") and "Traceback" not in err
    return lines[0]


def test_every_figure_in_every_format(figures):
    code, out = figures
    assert code == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(f"{f}.{x}" for f in ("projection", "confusion", "geometry", "recall")
                           for x in ("svg", "pdf", "png"))  # fmt: skip


# Panels: one projection per run; a confusion matrix per run and classifier (supcon has no
# head: kNN and centroid only); three geometry metrics; one recall chart.
@pytest.mark.parametrize(
    "figure, panels", [("projection", 3), ("confusion", 3 + 3 + 2), ("geometry", 3), ("recall", 1)]
)
def test_svg_has_its_panels_runs_and_classes(figures, figure, panels):
    root = _svg(figures[1] / f"{figure}.svg")
    assert len(_ids(root, "panel_")) == panels
    text = " ".join(_texts(root))
    for name, _, _ in RUNS:
        assert name in text
    for c in CLASSES:  # geometry is per run, not per class
        assert (c in text) == (figure != "geometry")


def test_svg_titles(figures):
    out = figures[1]
    titles = _texts(_svg(out / "projection.svg"))
    assert [t for t in titles if t.endswith("(PCA)")] == [f"{n} (PCA)" for n, _, _ in RUNS]
    confusion = " ".join(_texts(_svg(out / "confusion.svg")))
    for title in ("softmax · head", "arcface · kNN", "supcon · centroid"):
        assert title in confusion
    assert "supcon · head" not in confusion and "no head classifier" in confusion
    geometry = _texts(_svg(out / "geometry.svg"))
    assert {"Compactness ↓", "Separation ↑", "Fisher ↑"} <= set(geometry)
    recall = " ".join(_texts(_svg(out / "recall.svg")))
    assert "softmax (head)" in recall and "supcon (kNN)" in recall


@pytest.mark.parametrize("figure", ["projection", "confusion", "geometry", "recall"])
def test_pdf_is_one_page(figures, figure):
    data = (figures[1] / f"{figure}.pdf").read_bytes()
    assert data.startswith(b"%PDF-")
    try:
        import pypdf
    except ImportError:
        assert len(re.findall(rb"/Type\s*/Page(?!s)", data)) == 1
    else:
        assert len(pypdf.PdfReader(figures[1] / f"{figure}.pdf").pages) == 1


@pytest.mark.parametrize("figure", ["projection", "confusion", "geometry", "recall"])
def test_png_opens(figures, figure):
    with Image.open(figures[1] / f"{figure}.png") as img:
        img.verify()
    with Image.open(figures[1] / f"{figure}.png") as img:
        assert img.format == "PNG" and min(img.size) > 100


def test_projections_of_runs_without_shared_faces_are_not_aligned(runs, tmp_path):
    other = _write(tmp_path / "other", head=False, noise=0.3, seed=7, ids="t")
    out = tmp_path / "figs"
    argv = ["plot", str(runs[0]), str(other), "--out", str(out), "--what", "projection",
            "--method", "pca", "--format", "svg", "--evaluate"]  # fmt: skip
    assert main(argv) == 0
    text = " ".join(_texts(_svg(out / "projection.svg")))
    assert "not aligned: no faces shared with softmax" in text


def test_confusion_counts_are_read_from_metrics_json(runs, tmp_path):
    # The cells show metrics.json's counts (not recomputed from predictions): an edited count
    # appears in the figure; the accuracy in the title is metrics.json's too.
    (tmp_path / "r").mkdir()
    run = _write(tmp_path / "r" / "edited", head=True, noise=0.3, seed=5)
    metrics = evaluate_run(run)
    metrics["confusion"]["head"]["counts"][0][0] = 9001
    metrics["classification"]["head"]["accuracy"] = 0.4321
    load_run(run).metrics_path.write_text(json.dumps(metrics))
    out = tmp_path / "figs"
    assert (
        main(["plot", str(run), "--out", str(out), "--what", "confusion", "--format", "svg"]) == 0
    )
    text = _texts(_svg(out / "confusion.svg"))
    assert "9001" in text
    assert "edited · head (acc 43.2%)" in text
    assert main(["plot", str(run), "--out", str(out), "--what", "confusion", "--format", "svg",
                 "--cells", "percent", "--overwrite"]) == 0  # fmt: skip
    expected = round(metrics["confusion"]["head"]["normalized"][1][1] * 100)
    assert str(expected) in _texts(_svg(out / "confusion.svg"))


def test_a_run_keeps_its_colour_alone_and_with_others(runs, tmp_path):
    fills = []
    for i, selection in enumerate([runs[:1], runs, runs[::-1]]):
        out = tmp_path / f"f{i}"
        argv = ["plot", *map(str, selection), "--out", str(out), "--what", "geometry,recall",
                "--format", "svg"]  # fmt: skip
        assert main(argv) == 0
        geometry = _svg(out / "geometry.svg")
        recall = _svg(out / "recall.svg")
        fills.append(
            {_fill(geometry, "bar_softmax_fisher_ratio"), _fill(recall, "bar_softmax_happy")}
        )
    assert fills[0] == fills[1] == fills[2]
    (colour,) = fills[0]
    assert colour == RUN_PALETTE[zlib.crc32(b"softmax") % len(RUN_PALETTE)]


def test_the_same_runs_give_the_same_files(runs, tmp_path):
    files = []
    for i in range(2):
        out = tmp_path / f"f{i}"
        argv = ["plot", str(runs[0]), "--out", str(out), "--what", "geometry", "--format",
                "svg,pdf"]  # fmt: skip
        assert main(argv) == 0
        files.append([(out / f"geometry.{x}").read_bytes() for x in ("svg", "pdf")])
    assert files[0] == files[1]


def test_run_colours_depend_on_the_name_only():
    alone = stable_run_colors(["center"])
    assert stable_run_colors(["triplet", "center", "arcface"])["center"] == alone["center"]
    assert set(stable_run_colors([f"run{i}" for i in range(50)]).values()) <= set(RUN_PALETTE)


def test_runs_sharing_a_colour_are_told_apart_by_a_hatch():
    names = [f"run{i}" for i in range(40)]
    by_colour = {}
    for n in names:
        by_colour.setdefault(zlib.crc32(n.encode()) % len(RUN_PALETTE), []).append(n)
    pair = sorted(next(v for v in by_colour.values() if len(v) >= 2)[:2])
    styles = _run_styles(pair[::-1])
    assert styles[pair[0]][0] == styles[pair[1]][0]  # the same stable colour ...
    assert styles[pair[0]][1] is None and styles[pair[1]][1] is not None  # ... one hatched


def test_runs_without_metrics_are_named_or_evaluated(tmp_path, capsys):
    paths = _make_runs(tmp_path / "runs", evaluate=False)
    out = tmp_path / "figs"
    argv = ["plot", *map(str, paths[:2]), "--out", str(out), "--what", "geometry", "--format",
            "svg"]  # fmt: skip
    assert main(argv) == 2
    line = _one_error_line(capsys)
    assert str(paths[0]) in line and str(paths[1]) in line and "--evaluate" in line
    assert not out.exists()
    assert not load_run(paths[0]).metrics_path.exists()
    assert main([*argv, "--evaluate"]) == 0
    assert load_run(paths[0]).metrics_path.is_file() and (out / "geometry.svg").is_file()


def test_stale_metrics_are_refused_or_recomputed(tmp_path, capsys):
    run = _write(tmp_path / "runs" / "changed", head=True, noise=0.3, seed=3)
    evaluate_run(run)
    embeddings = load_run(run).file_path(EMBEDDINGS_FILE)
    np.save(embeddings, np.load(embeddings) * 2.0)  # re-embedded after evaluate
    out = tmp_path / "figs"
    argv = ["plot", str(run), "--out", str(out), "--what", "geometry", "--format", "svg"]
    assert main(argv) == 2
    assert str(run) in _one_error_line(capsys) and not out.exists()
    assert main([*argv, "--evaluate"]) == 0
    assert load_run(run).metrics_status()[0] == "fresh"


def test_confusion_of_runs_evaluated_without_classification(tmp_path, capsys):
    run = _write(tmp_path / "runs" / "partial", head=True, noise=0.3, seed=4)
    evaluate_run(run, include=["retrieval"])
    out = tmp_path / "figs"
    assert main(["plot", str(run), "--out", str(out), "--what", "confusion"]) == 2
    assert "no confusion matrix in the metrics of partial" in _one_error_line(capsys)
    assert not out.exists()


def test_recall_of_a_classifier_a_run_lacks(runs, tmp_path, capsys):
    out = tmp_path / "figs"
    argv = ["plot", *map(str, runs), "--out", str(out), "--what", "recall", "--classifier",
            "head"]  # fmt: skip
    assert main(argv) == 2
    assert "no head classifier in the metrics of supcon" in _one_error_line(capsys)
    assert not out.exists()


@pytest.mark.parametrize(
    "extra, needle",
    [
        (["--what", "projection,histogram"], "--what"),
        (["--format", "svg,jpeg"], "--format"),
        (["--cells", "ratio"], "--cells"),
        (["--dpi", "0"], "--dpi"),
    ],
)
def test_bad_options(runs, tmp_path, capsys, extra, needle):
    out = tmp_path / "figs"
    assert main(["plot", str(runs[0]), "--out", str(out), *extra]) == 2
    assert needle in _one_error_line(capsys)
    assert not out.exists()


def test_missing_run(tmp_path, capsys):
    out = tmp_path / "figs"
    assert main(["plot", str(tmp_path / "nope"), "--out", str(out)]) == 2
    assert "nope" in _one_error_line(capsys)
    assert not out.exists()


@pytest.mark.parametrize("where", ["inside", "same"])
def test_out_inside_a_run(runs, capsys, where):
    out = runs[1] / "figs" if where == "inside" else runs[1]
    before = sorted(p.name for p in runs[1].iterdir())
    assert main(["plot", str(runs[0]), "--out", str(out), "--what", "geometry"]) == 2
    assert str(runs[1]) in _one_error_line(capsys)
    assert sorted(p.name for p in runs[1].iterdir()) == before


def test_existing_figures_need_overwrite(runs, tmp_path, capsys):
    out = tmp_path / "figs"
    argv = ["plot", str(runs[0]), "--out", str(out), "--what", "geometry,recall", "--format",
            "svg"]  # fmt: skip
    assert main(argv) == 0
    (out / "recall.svg").write_text("mine")
    geometry = (out / "geometry.svg").stat().st_mtime_ns
    assert main(argv) == 2
    line = _one_error_line(capsys)
    assert "geometry.svg" in line and "already exists" in line and "--overwrite" in line
    assert (out / "recall.svg").read_text() == "mine"
    assert (out / "geometry.svg").stat().st_mtime_ns == geometry
    assert main([*argv, "--overwrite"]) == 0
    _svg(out / "recall.svg")
    assert sorted(p.name for p in out.iterdir()) == ["geometry.svg", "recall.svg"]
