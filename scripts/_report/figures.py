"""docs/figures/*.png from the study's runs and the results dict (raw + analysis)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ferembed import _io


def figures(study, res: dict, fig_dir: Path) -> dict[str, str]:
    """Write the PNG figures of ``res`` (raw + analysis; the UMAP reads the runs).

    Returns:
        {figure name: path relative to docs/}.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig_dir.mkdir(parents=True, exist_ok=True)
    out: dict[str, str] = {}

    def save(fig, name: str) -> None:
        path = fig_dir / f"{name}.png"
        with _io.atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
        plt.close(fig)
        out[name] = f"figures/{name}.png"

    fer = res["fer2013"]
    methods = sorted(fer, key=lambda m: fer[m]["accuracy"] or 0)
    if methods:
        fig, axes = plt.subplots(1, 2, figsize=(11, 0.42 * len(methods) + 1.2), sharey=True)
        for ax, key, title in (
            (axes[0], "accuracy", "FER2013 test accuracy (%)"),
            (axes[1], "mean_class_accuracy", "mean class accuracy (%)"),
        ):
            v = np.array([100 * fer[m][key] for m in methods])
            ci = np.array(
                [[100 * c for c in (fer[m]["ci"][key] or [np.nan, np.nan])] for m in methods]
            )
            ax.barh(methods, v, color=["#d62728" if m == "softmax" else "#1f77b4" for m in methods])
            ax.errorbar(
                v,
                methods,
                xerr=np.clip([v - ci[:, 0], ci[:, 1] - v], 0, None),
                fmt="none",
                ecolor="k",
                capsize=3,
            )
            ax.set_title(title)
            ax.set_xlim(0, 100)
            ax.grid(axis="x", alpha=0.3)
        save(fig, "fer2013_accuracy")

        fig, axes = plt.subplots(1, 2, figsize=(12, 4.8))
        for ax, (xk, yk) in zip(
            axes, (("compactness", "class_separation"), ("fisher_ratio", "accuracy")), strict=True
        ):
            for m in methods:
                x, y = fer[m][xk], fer[m][yk]
                cx, cy = fer[m]["ci"].get(xk), fer[m]["ci"].get(yk)
                scale_y = 100 if yk == "accuracy" else 1
                ax.errorbar(
                    x,
                    scale_y * y,
                    xerr=[[max(x - cx[0], 0)], [max(cx[1] - x, 0)]] if cx else None,
                    yerr=[[max(scale_y * (y - cy[0]), 0)], [max(scale_y * (cy[1] - y), 0)]]
                    if cy
                    else None,
                    fmt="o",
                    color="#d62728" if m == "softmax" else "#1f77b4",
                    capsize=2,
                )
                ax.annotate(
                    m, (x, scale_y * y), textcoords="offset points", xytext=(4, 4), fontsize=8
                )
            ax.set_xlabel(
                {
                    "compactness": "compactness: mean cosine distance to own centroid "
                    "(lower = tighter)",
                    "fisher_ratio": "Fisher ratio tr(S_B)/tr(S_W)",
                }[xk]
            )
            ax.set_ylabel(
                {
                    "class_separation": "separation: mean distance to nearest other centroid",
                    "accuracy": "test accuracy (%)",
                }[yk]
            )
            ax.grid(alpha=0.3)
        fig.suptitle("FER2013 test embeddings: geometry per loss (95% bootstrap CIs)")
        save(fig, "fer2013_geometry")

        shown = res["analysis"]["fer2013"]["confusion_methods"]
        fig, axes = plt.subplots(1, len(shown), figsize=(5.2 * len(shown), 4.6))
        for ax, m in zip(np.atleast_1d(axes), shown, strict=True):
            cm = np.array(fer[m]["confusion"])
            names = fer[m]["class_names"]
            ax.imshow(cm, cmap="Blues", vmin=0, vmax=1)
            for i in range(len(names)):
                for j in range(len(names)):
                    ax.text(
                        j,
                        i,
                        f"{cm[i, j]:.2f}",
                        ha="center",
                        va="center",
                        fontsize=7,
                        color="white" if cm[i, j] > 0.5 else "black",
                    )
            ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
            ax.set_yticks(range(len(names)), names)
            ax.set_xlabel("predicted")
            ax.set_ylabel("true")
            ax.set_title(f"{m}: row-normalised confusion")
        save(fig, "fer2013_confusion")
        umap = _umap_figure(study, shown, plt)
        if umap is not None:
            save(umap, "fer2013_umap")

    ck = res["ckplus"]
    if ck:
        order = sorted(ck, key=lambda m: ck[m]["summary"]["accuracy"]["mean"])
        fig, ax = plt.subplots(figsize=(8, 0.42 * len(order) + 1.2))
        for i, m in enumerate(order):
            accs = [100 * f["accuracy"] for f in ck[m]["folds"]]
            ax.scatter(accs, [i] * len(accs), s=14, alpha=0.6, color="#1f77b4")
            ax.scatter([np.mean(accs)], [i], marker="|", s=300, color="k")
        ax.set_yticks(range(len(order)), order)
        ax.set_xlabel("CK+ held-out fold accuracy (%); bar = mean over folds")
        ax.grid(axis="x", alpha=0.3)
        save(fig, "ckplus_folds")

    if res.get("pseudo"):
        rounds = res["pseudo"]["rounds"]
        fig, ax = plt.subplots(figsize=(6, 3.8))
        r = [x["round"] for x in rounds]
        ax.plot(r, [100 * x["val_acc"] for x in rounds], "o-", label="val accuracy")
        pr = [x for x in rounds if "kept_acc" in x]
        ax.plot(
            [x["round"] for x in pr],
            [100 * x["kept_acc"] for x in pr],
            "s--",
            label="kept pseudo-labels correct",
        )
        ax.plot(
            [x["round"] for x in pr],
            [100 * x["pool_acc"] for x in pr],
            "^:",
            label="k-means on whole pool correct",
        )
        ax.set_xticks(r)
        ax.set_xlabel("round (0 = labelled half only)")
        ax.set_ylabel("%")
        ax.legend()
        ax.grid(alpha=0.3)
        save(fig, "pseudo_label_rounds")
    return out


def _umap_figure(study, methods, plt):
    from ferembed.runs import is_run_dir, load_run, project_runs

    runs = [study.run_dir("fer2013-test", m) for m in methods]
    if not all(is_run_dir(r) for r in runs):
        return None
    projections = project_runs(runs, method="umap", seed=0)
    fig, axes = plt.subplots(1, len(runs), figsize=(5.5 * len(runs), 5))
    for ax, run_dir, proj, m in zip(np.atleast_1d(axes), runs, projections, methods, strict=True):
        run = load_run(run_dir)
        y = run.labels[proj.indices]
        for c, name in enumerate(run.class_names):
            sel = y == c
            ax.scatter(proj.coords[sel, 0], proj.coords[sel, 1], s=3, alpha=0.6, label=name)
        ax.set_title(f"{m}: UMAP of {len(y)} test faces")
        ax.set_xticks([])
        ax.set_yticks([])
    np.atleast_1d(axes)[-1].legend(markerscale=4, fontsize=8, loc="best")
    return fig


# ---------------------------------------------------------------------------------- markdown
