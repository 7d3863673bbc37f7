"""``ferembed demo``: the embedded default end to end.

SynthFER test faces (or a FER2013 root) -> the shipped checkpoints of every seed method ->
embedding runs -> metrics -> the dashboard. Runs already present with the same checkpoint are
reused, so a second demo starts the dashboard at once.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from ferembed import _format
from ferembed.errors import FerembedError


def shipped_checkpoints(directory: Path) -> list[Path]:
    """Checkpoint sidecars in ``directory`` (``<method>.json`` beside ``<method>.safetensors``)."""
    return sorted(p for p in directory.glob("*.json") if p.with_suffix(".safetensors").exists())


def _up_to_date(run_dir: Path, checkpoint: Path) -> bool:
    from ferembed.models import load_sidecar
    from ferembed.runs import load_run

    try:
        run = load_run(run_dir)
    except FerembedError:
        return False
    model = run.manifest.get("model") or {}
    return model.get("checkpoint_sha256") == load_sidecar(checkpoint).get("sha256")


def run_demo(
    *,
    runs: Path,
    checkpoints: Path,
    fer2013: str | None = None,
    dashboard: bool = True,
    port: int = 8501,
    quick_epochs: int = 3,
) -> int:
    from ferembed.runs import embed_and_evaluate, evaluate_run, load_run, project_run

    t0 = time.perf_counter()
    if fer2013:
        dataset, root, ckdir = "fer2013", fer2013, checkpoints / "fer2013"
    else:
        dataset, root, ckdir = "synthfer", None, checkpoints / "synthfer"
    cards = shipped_checkpoints(ckdir)
    if not cards:
        if fer2013:
            raise FerembedError(
                f"no FER2013 checkpoints in {ckdir}; train them with "
                f"`ferembed zoo --dataset fer2013 --root {fer2013} --out {ckdir}`"
            )
        from ferembed.zoo import train_zoo

        ckdir = runs / "_checkpoints"
        print(
            f"demo: no shipped checkpoints; training each method for {quick_epochs} epochs "
            f"into {ckdir}",
            file=sys.stderr,
        )
        train_zoo(
            dataset=dataset,
            out=ckdir,
            base={"epochs": quick_epochs},
            work=runs / "_work",
            command="ferembed demo",
        )
        cards = shipped_checkpoints(ckdir)
    runs.mkdir(parents=True, exist_ok=True)
    rows = []
    for card in cards:
        method = card.stem
        run_dir = runs / f"{dataset}-{method}"
        if _up_to_date(run_dir, card):
            # A re-embedded run is a new directory, so an existing metrics.json is for this run.
            metrics = load_run(run_dir).load_metrics() or evaluate_run(run_dir)
        else:
            metrics = embed_and_evaluate(
                card,
                dataset=dataset,
                root=root,
                split="test",
                out=run_dir,
                overwrite=True,
                name=f"{dataset}-{method}",
                progress=False,
                command=f"ferembed embed --checkpoint {card} --dataset {dataset} "
                f"--split test --out {run_dir}",
            )
        rows.append((method, metrics))
        print(
            f"demo: {run_dir.name:28s} head acc {_pct(metrics.get('head_accuracy'))}  "
            f"kNN acc {_pct(metrics.get('knn_accuracy'))}  MAP@R {_f(metrics.get('map_at_r'))}  "
            f"silhouette {_f(metrics.get('silhouette'))}",
            file=sys.stderr,
        )
    # Cache the UMAP projections now (the dashboard's defaults), so Projection opens at once.
    for method, _ in rows:
        project_run(runs / f"{dataset}-{method}")
    print(
        f"demo: {len(rows)} runs ready in {runs} ({time.perf_counter() - t0:.1f} s)",
        file=sys.stderr,
    )
    if not dashboard:
        return 0
    from ferembed._dashboard import launch

    return launch(runs, port=port)


def _pct(v) -> str:
    return _format.number(v, "5.1f", percent=True, percent_sign=True, missing="  n/a ")


def _f(v) -> str:
    return _format.number(v, ".3f", missing=" n/a ")
