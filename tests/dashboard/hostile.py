"""A hostile runs root for the confinement tests (issue #14): runs whose files are symlinks out of
the root, a run whose user text is Markdown / HTML that would make a browser fetch a URL, and runs
whose labels or predictions no page can draw.

Layout of ``make_tree(tree, leak_url)``::

    tree/secret/                 outside the root: files holding SECRET, faces of value 255
    tree/runs/arcface, softmax   valid, evaluated
    tree/runs/a_markdown         valid, evaluated; name, class names, sample ids, subjects and a
                                 metadata column hold Markdown images/links and HTML to leak_url
    tree/runs/knn_bad            valid run without a head, whose per_sample.parquet votes 42
    tree/runs/link_<file>        a copy of softmax whose <file> is a symlink into secret/
    tree/runs/pred_bad           samples.parquet pred = 42 on one row
    tree/runs/label_nan          samples.parquet label = NaN on one row
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
from dashboard_synth import make_run, make_split

from ferembed.data.synthfer import CLASS_NAMES
from ferembed.runs import make_samples, write_run

#: What no page, caption, table or download may show.
SECRET = "SECRET-7f3a9c"
#: Samples per run (small: these tests are about what is shown, not the numbers).
N = 120
#: Run files (and folders) replaced by a symlink out of the root, one run each.
LINKED = (
    "thumbs.npy",
    "metrics.json",
    "embeddings.npy",
    "samples.parquet",
    "per_sample.parquet",
    "run.json",
    "logits.npy",
    "cache",
    "cache/entry.json",
)
VALID = ("a_markdown", "arcface", "knn_bad", "softmax")
BAD_VALUES = ("label_nan", "pred_bad")


def hostile_text(leak_url: str) -> str:
    """User text that a Markdown or HTML renderer would turn into requests to ``leak_url``."""
    return (
        f"![x]({leak_url}/leak.png) [link]({leak_url}/link) <img src='{leak_url}/img.png'> "
        f"<a href='{leak_url}/a'>a</a> :material/star: :red[red] $x^2$ **bold** {leak_url}/bare"
    )


def link_name(file: str) -> str:
    return "link_" + file.replace("/", "_").replace(".", "_")


def make_tree(tree: Path, leak_url: str) -> Path:
    """Build the hostile tree under ``tree``; returns the runs root (``tree/runs``)."""
    from ferembed.runs import evaluate_run

    root, secret = tree / "runs", tree / "secret"
    split = make_split(N)
    for name, loss, spread, seed in (
        ("softmax", "softmax", 0.3, 1),
        ("arcface", "arcface", 0.2, 2),
    ):
        evaluate_run(make_run(root / name, split, loss=loss, spread=spread, seed=seed))
    _markdown_run(root / "a_markdown", split, hostile_text(leak_url))
    evaluate_run(root / "a_markdown")
    # A headless run whose kNN votes (per_sample.parquet, read by the pages) include 42.
    knn = make_run(root / "knn_bad", split, loss="supcon", spread=0.25, seed=3, logits=False)
    evaluate_run(knn)
    ps = pd.read_parquet(knn / "per_sample.parquet")
    ps.loc[0, "knn_pred"] = 42
    ps.to_parquet(knn / "per_sample.parquet")

    _secret_files(secret, root / "softmax")
    for file in LINKED:
        run = root / link_name(file)
        shutil.copytree(root / "softmax", run)
        _rename(run, link_name(file))  # before linking: it would write through a linked run.json
        target = run / file
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to(secret / file, target_is_directory=(secret / file).is_dir())

    for name, column, value in (("pred_bad", "pred", 42), ("label_nan", "label", np.nan)):
        run = root / name
        shutil.copytree(root / "softmax", run)
        samples = pd.read_parquet(run / "samples.parquet")
        samples[column] = samples[column].astype(float)
        samples.loc[3, column] = value
        samples.to_parquet(run / "samples.parquet")
        _rename(run, name)
    return root


def secret_state(tree: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``tree/secret`` with its size and mtime (nothing may change there)."""
    return {
        p.relative_to(tree).as_posix(): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted((tree / "secret").rglob("*"))
    }


def _rename(run: Path, name: str) -> None:
    manifest = json.loads((run / "run.json").read_text())
    manifest["name"] = name
    (run / "run.json").write_text(json.dumps(manifest))


def _secret_files(secret: Path, like: Path) -> None:
    """Valid-looking run files outside the root, each carrying SECRET (faces all white)."""
    secret.mkdir(parents=True)
    for file in ("embeddings.npy", "logits.npy", "samples.parquet", "per_sample.parquet"):
        shutil.copy(like / file, secret / file)
    thumbs = np.load(like / "thumbs.npy")
    np.save(secret / "thumbs.npy", np.full_like(thumbs, 255))
    metrics = json.loads((like / "metrics.json").read_text())
    metrics["distance"] = SECRET
    metrics["secret"] = SECRET
    (secret / "metrics.json").write_text(json.dumps(metrics))
    manifest = json.loads((like / "run.json").read_text())
    manifest["name"] = SECRET
    (secret / "run.json").write_text(json.dumps(manifest))
    (secret / "cache").mkdir()
    (secret / "cache" / "entry.json").write_text(json.dumps({"ident": SECRET, "result": SECRET}))


def _markdown_run(path: Path, split: dict, text: str) -> Path:
    """A valid run whose every user string is ``text`` (plus a suffix keeping them distinct)."""
    rng = np.random.default_rng(5)
    y = split["labels"]
    classes = [f"{c} {text}" for c in CLASS_NAMES]
    centres = rng.normal(size=(len(classes), 16)).astype(np.float32)
    x = centres[y] + rng.normal(scale=0.3, size=(len(y), 16)).astype(np.float32)
    logits = (x @ centres.T).astype(np.float32)
    samples = make_samples(
        y,
        classes,
        sample_ids=[f"{i} {text}" for i in range(len(y))],
        preds=logits.argmax(axis=1),
        subjects=[f"s{i % 7} {text}" for i in range(len(y))],
        metadata={"origin": [f"{i % 2} {text}" for i in range(len(y))]},
    )
    return write_run(
        path,
        embeddings=x,
        samples=samples,
        class_names=classes,
        logits=logits,
        thumbs=split["thumbs"],
        name=f"markdown {text}",
    )
