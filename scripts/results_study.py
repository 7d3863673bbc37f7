"""The real-data study behind docs/results.md: every number and figure in it comes from here.

Stages (each resumable; training stages continue interrupted runs):

* ``test``     embed FER2013 test with every shipped checkpoint (checkpoints/fer2013) + evaluate
* ``seeds``    retrain softmax and the two best other losses (by validation score, never test)
               with seeds 1 and 2 under the shipped configs, embed test, evaluate
* ``compare``  paired comparison of every loss against softmax (same seed), ``compare_runs``
* ``pseudo``   the pseudo-label loop's record, and test accuracy of its round-0 checkpoint
* ``ckplus``   CK+ subject-independent 10-fold per loss, fine-tuning each FER2013 checkpoint
* ``cross``    FER2013 checkpoints on all of CK+ (contempt excluded: FER2013 has no such class)
* ``long``     the longer-budget checkpoints (``checkpoints/fer2013-long``, trained on a GPU by
               ``scripts/long_budget.py``) on FER2013 test, each compared with the longer-budget
               softmax, and the pseudo-label loop against its labelled-half control
* ``leakage``  FER2013 train, val and test embedded with the softmax checkpoint (with thumbnails),
               and the near-duplicates of test and val faces in train (``ferembed.runs.leakage``)
* ``report``   docs/results.json, docs/results.md and docs/figures/*.png (``report --from-json``:
               results.json's analysis and results.md again from its raw numbers, without the runs)

``python scripts/results_study.py all`` runs them in order. The shipped checkpoints come from
``ferembed zoo`` (the command is on each model card and in the report).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ferembed import _io  # noqa: E402
from ferembed.zoo import METHODS  # noqa: E402

STAGES = ("test", "seeds", "compare", "pseudo", "ckplus", "cross", "long", "leakage", "report")
EXTRA_SEEDS = (1, 2)
#: the longer budget's control of the pseudo-label loop: the same rounds on the labelled half alone
PSEUDO_CONTROL = "affinity_cluster_control"
#: CK+ fine-tuning budget per fold (on top of the FER2013 checkpoint).
CKPLUS = {"epochs": 5, "lr": 1e-3, "warmup_epochs": 0, "batch_size": 32}


class Study:
    def __init__(self, args: argparse.Namespace) -> None:
        self.ckpt = Path(args.checkpoints)
        #: the longer budget's checkpoints, beside the shipped ones (checkpoints/fer2013-long)
        self.long_ckpt = self.ckpt.parent / f"{self.ckpt.name}-long"
        self.work = Path(args.work)
        self.fer_root = args.fer2013
        self.ck_root = args.ckplus
        self.docs = Path(args.docs)
        self.quiet = args.quiet
        self.device = args.device
        self.methods = [m for m in METHODS if (self.ckpt / f"{m}.json").exists()]
        self.only = args.methods or self.methods  # training stages (ckplus) run only these
        self.reverse = args.reverse
        self.extra_seeds = EXTRA_SEEDS
        if not self.methods:
            raise SystemExit(f"no checkpoints in {self.ckpt}: run `ferembed zoo` first")

    # ------------------------------------------------------------------ helpers
    def run_dir(self, split: str, method: str, seed: int = 0) -> Path:
        return self.work / "runs" / split / f"{method}-s{seed}"

    def embed_eval(self, checkpoint: Path, run: Path, dataset: str, root: str, split: str) -> dict:
        from ferembed.runs import embed_and_evaluate, is_run_dir, load_run

        metrics = load_run(run).load_metrics() if is_run_dir(run) else None
        if metrics is None:
            metrics = embed_and_evaluate(
                checkpoint,
                dataset=dataset,
                root=root,
                split=split,
                out=run,
                overwrite=True,
                device=self.device,
                progress=not self.quiet,
                name=run.name,
            )
        return metrics

    def sidecar(self, method: str) -> dict:
        return json.loads((self.ckpt / f"{method}.json").read_text())

    def val_score(self, method: str) -> float:
        m = self.sidecar(method).get("metrics") or {}
        return float(m.get("val_mean_class_acc") or 0.0)

    def seeded_methods(self) -> list[str]:
        """softmax and the two other losses with the best validation score (never test)."""
        others = sorted(
            (m for m in self.methods if m != "softmax"), key=self.val_score, reverse=True
        )
        return ["softmax", *others[:2]]

    # ------------------------------------------------------------------ stages
    def stage_test(self) -> None:
        for m in self.methods:
            self.embed_eval(
                self.ckpt / f"{m}.json",
                self.run_dir("fer2013-test", m),
                "fer2013",
                self.fer_root,
                "test",
            )

    def stage_seeds(self) -> None:
        from ferembed.training import apply_overrides, load_config, train

        jobs = [(m, seed) for m in self.seeded_methods() for seed in EXTRA_SEEDS]
        for m, seed in reversed(jobs) if self.reverse else jobs:
            # Several processes may share the list (one core each): a run in progress is locked.
            lock = self.work / "seeds" / f"{m}-s{seed}.lock"
            lock.parent.mkdir(parents=True, exist_ok=True)
            try:
                lock.mkdir()
            except FileExistsError:
                print(f"[seeds] {m} seed {seed} is locked by another process ({lock}): skipped")
                continue
            try:
                cfg = apply_overrides(
                    load_config(self.ckpt / f"{m}.config.json"),
                    {
                        "seed": seed,
                        "device": self.device,
                        "root": self.fer_root,
                        "out": str(self.work / "seeds" / f"{m}-s{seed}"),
                    },
                )
                cmd = f"python scripts/results_study.py seeds  # {m}, seed {seed}"
                result = train(cfg, progress=not self.quiet, resume=True, command=cmd)
                self.embed_eval(
                    result.best_checkpoint,
                    self.run_dir("fer2013-test", m, seed),
                    "fer2013",
                    self.fer_root,
                    "test",
                )
            finally:
                lock.rmdir()

    def stage_compare(self) -> None:
        from ferembed.runs import compare_runs, is_run_dir, load_run

        def evaluated(run: Path) -> bool:
            return is_run_dir(run) and load_run(run).metrics_path.exists()

        pairs = [(m, 0) for m in self.methods if m != "softmax"]
        pairs += [(m, s) for m in self.seeded_methods()[1:] for s in EXTRA_SEEDS]
        for m, seed in pairs:
            a, b = (
                self.run_dir("fer2013-test", "softmax", seed),
                self.run_dir("fer2013-test", m, seed),
            )
            out = self.work / "compare" / f"{m}-s{seed}.json"
            if out.exists() or not evaluated(a) or not evaluated(b):
                continue
            _io.write_json(out, compare_runs(a, b))

    def stage_pseudo(self) -> None:
        """Test accuracy of every round's checkpoint (in the zoo's work directory)."""
        rounds = sorted((self.zoo_work() / "affinity_cluster").glob("round_*/best.json"))
        for best in rounds:
            self.embed_eval(
                best,
                self.run_dir("fer2013-test", f"affinity_cluster-{best.parent.name}"),
                "fer2013",
                self.fer_root,
                "test",
            )

    def zoo_work(self) -> Path:
        cfg = json.loads((self.ckpt / "softmax.config.json").read_text())
        return Path(cfg["out"]).parent

    def ckplus_config(self, method: str):
        from ferembed.training import apply_overrides, load_config

        return apply_overrides(
            load_config(self.ckpt / f"{method}.config.json"),
            {
                **CKPLUS,
                "dataset": "ckplus",
                "root": self.ck_root,
                "split": "train",
                "val_split": None,
                "num_folds": 10,
                "method": "standard",  # all CK+ labels are used: no pseudo-labelling here
                "init_checkpoint": str(self.ckpt / f"{method}.safetensors"),
                "device": self.device,
                "max_train_samples": None,
            },
        )

    def stage_ckplus(self) -> None:
        from ferembed.kfold import KFOLD_FILE, train_kfold

        for m in [m for m in self.methods if m in self.only]:
            out = self.work / "ckplus" / m
            if (out / KFOLD_FILE).exists():
                continue
            train_kfold(
                self.ckplus_config(m),
                out=out,
                progress=not self.quiet,
                command=f"python scripts/results_study.py ckplus  # {m}",
            )

    def stage_cross(self) -> None:
        for m in self.methods:
            self.embed_eval(
                self.ckpt / f"{m}.json",
                self.run_dir("ckplus-all", m),
                "ckplus",
                self.ck_root,
                "all",
            )

    def long_methods(self) -> list[str]:
        """The longer budget's checkpoints, softmax (the baseline) first."""
        names = sorted(p.name[: -len(".config.json")] for p in self.long_ckpt.glob("*.config.json"))
        return sorted(names, key=lambda m: m != "softmax")

    def stage_long(self) -> None:
        from ferembed.runs import compare_runs

        names = self.long_methods()
        for m in names:
            self.embed_eval(
                self.long_ckpt / f"{m}.json",
                self.run_dir("fer2013-test", f"{m}-long"),
                "fer2013",
                self.fer_root,
                "test",
            )
        # Each loss against the longer-budget softmax; the pseudo-label loop against its control.
        pairs = [("softmax", m) for m in names if m != "softmax" and m != PSEUDO_CONTROL]
        if PSEUDO_CONTROL in names and "affinity_cluster" in names:
            pairs.append((PSEUDO_CONTROL, "affinity_cluster"))
        for a, b in pairs:
            out = self.work / "compare-long" / f"{b}-vs-{a}.json"
            if not out.exists():
                run_a = self.run_dir("fer2013-test", f"{a}-long")
                _io.write_json(out, compare_runs(run_a, self.run_dir("fer2013-test", f"{b}-long")))

    def stage_leakage(self) -> None:
        from _report.collect import LEAKAGE_MODEL, LEAKAGE_RECORD, leakage_record, leakage_run

        from ferembed.runs import is_run_dir
        from ferembed.runs.embed import embed_checkpoint

        for split in ("train", "val", "test"):
            run = leakage_run(self.work / "leakage", split)
            if not is_run_dir(run):
                embed_checkpoint(
                    self.ckpt / f"{LEAKAGE_MODEL}.json",
                    dataset="fer2013",
                    root=self.fer_root,
                    split=split,
                    out=run,
                    overwrite=True,
                    device=self.device,
                    progress=not self.quiet,
                )
        _io.write_json(
            self.work / "leakage" / LEAKAGE_RECORD, leakage_record(self.work / "leakage")
        )

    def stage_report(self) -> None:
        from report import write_report  # scripts/report.py

        write_report(self)


def run_study(argv: list[str] | None = None) -> int:
    """Run the study's stages named on the command line (``all``: every stage in order)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("stages", nargs="+", choices=(*STAGES, "all"))
    p.add_argument("--checkpoints", default=str(REPO / "checkpoints" / "fer2013"))
    p.add_argument("--work", default=str(REPO / ".cache" / "study"))
    p.add_argument("--fer2013", default=str(REPO.parent / "shared" / "datasets" / "fer2013"))
    p.add_argument("--ckplus", default=str(REPO.parent / "shared" / "datasets" / "ckplus48"))
    p.add_argument("--docs", default=str(REPO / "docs"))
    p.add_argument("--device", default="cpu")
    p.add_argument("--methods", nargs="+", choices=list(METHODS), help="ckplus: only these")
    p.add_argument("--reverse", action="store_true", help="seeds: take the runs last-first")
    p.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's)")
    p.add_argument("--quiet", action="store_true")
    p.add_argument(
        "--from-json",
        action="store_true",
        help="report: re-analyze docs/results.json and re-render docs/results.md (no runs read)",
    )
    args = p.parse_args(argv)
    if args.from_json:
        if args.stages != ["report"]:
            p.error("--from-json goes with the report stage alone")
        from report import rerender  # scripts/report.py

        from ferembed.errors import FerembedError

        try:
            rerender(args.docs)
        except FerembedError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        return 0
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    study = Study(args)
    stages = STAGES if "all" in args.stages else [s for s in STAGES if s in args.stages]
    for stage in stages:
        t0 = time.perf_counter()
        getattr(study, f"stage_{stage}")()
        print(f"[{stage}] done in {time.perf_counter() - t0:.0f} s on {platform.node()}")
    return 0


if __name__ == "__main__":
    sys.exit(run_study())
