"""Run the study's training stages on a lent GPU machine, in parallel, within a deadline.

The stages of ``scripts/results_study.py`` that train (``seeds``: softmax and the two best losses
with seeds 1 and 2; ``ckplus``: the subject-independent 10-fold fine-tuning of every loss) take
most of an hour on a 2-core CPU and a few minutes on one GPU. This script starts them as parallel
processes of ``results_study.py`` sharing the GPU (seeds in two processes, taking the job list from
both ends; CK+ split over ``--ckplus-procs`` processes by method), runs the ``compare`` stage once
the seeds are done, and packs what finished -- the runs' ``metrics.json``, the comparisons, the
``kfold.json`` records and the seed checkpoints with their cards -- into ``OUT/study.tgz``. A job
still running at the deadline is stopped and its partial work is left out (the study's stages
resume from it on the next call). Logs go to ``OUT/study-logs.txt``.

Everything the machine lacks must already be importable (``faiss`` for the clustering metrics).
The packed tree has the layout of the study's ``--work`` folder, so unpacking it into that folder
here lets ``results_study.py report`` (and ``test``, ``cross``, ``leakage``, which are cheap on a
CPU) finish the study.

Usage (on the GPU machine)::

    python scripts/gpu_study.py --fer2013 /tmp/data/fer2013 --ckplus /tmp/data/ckplus48 \\
        --work /tmp/study --out "$OUT" --deadline 420
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
STUDY = [sys.executable, str(REPO / "scripts" / "results_study.py")]
#: the study's methods, in the order of ferembed.zoo.METHODS (kept here: no ferembed import needed
#: before the jobs start, and the study checks each name against the registry)
METHODS = (
    "softmax",
    "center",
    "island",
    "weighted_cluster",
    "separate",
    "emlf",
    "handcrafted",
    "affinity_cluster",
    "triplet",
    "arcface",
)


def _jobs(args: argparse.Namespace) -> list[tuple[str, list[str]]]:
    common = [
        "--device", args.device, "--work", args.work, "--fer2013", args.fer2013,
        "--ckplus", args.ckplus, "--threads", str(args.threads), "--quiet",
    ]  # fmt: skip
    jobs = [
        ("seeds-a", [*STUDY, "seeds", *common]),
        ("seeds-b", [*STUDY, "seeds", "--reverse", *common]),
    ]
    groups = [METHODS[i :: args.ckplus_procs] for i in range(args.ckplus_procs)]
    jobs += [
        (f"ckplus-{i}", [*STUDY, "ckplus", "--methods", *g, *common]) for i, g in enumerate(groups)
    ]
    return jobs


def _run(jobs, deadline: float, log) -> dict[str, int | None]:
    env = {**os.environ, "OMP_NUM_THREADS": "2", "PYTHONUNBUFFERED": "1"}
    procs = {
        name: subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
        for name, cmd in jobs
    }
    while time.monotonic() < deadline and any(p.poll() is None for p in procs.values()):
        time.sleep(2)
    for name, p in procs.items():
        if p.poll() is None:
            print(
                f"[gpu_study] {name} still running at the deadline: stopped", file=log, flush=True
            )
            os.killpg(p.pid, signal.SIGTERM)
    for p in procs.values():
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
    return {name: p.returncode for name, p in procs.items()}


def _pack(work: Path, out: Path) -> list[str]:
    """Finished results only: evaluated runs' metrics, comparisons, k-fold records, seed
    checkpoints (best epoch) and their cards."""
    keep = [
        *work.glob("runs/*/*/metrics.json"),
        *work.glob("runs/*/*/run.json"),
        *work.glob("compare/*.json"),
        *work.glob("ckplus/*/kfold.json"),
        *work.glob("seeds/*/*.json"),
        *work.glob("seeds/*/best.safetensors"),
    ]
    names = sorted(str(p.relative_to(work)) for p in keep if p.is_file())
    with tarfile.open(out / "study.tgz", "w:gz") as tar:
        for name in names:
            tar.add(work / name, arcname=name)
    return names


def run_gpu_study(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--fer2013", required=True, help="FER2013 folder layout (train, val, test)")
    p.add_argument("--ckplus", required=True, help="CK+48 folder layout")
    p.add_argument("--work", required=True, help="the study's work folder")
    p.add_argument("--out", required=True, help="where study.tgz and the log are written")
    p.add_argument("--device", default="cuda")
    p.add_argument("--deadline", type=float, default=420, help="seconds before jobs are stopped")
    p.add_argument("--ckplus-procs", type=int, default=4)
    p.add_argument("--threads", type=int, default=2, help="torch threads per process")
    p.add_argument("--dry-run", action="store_true", help="print the jobs and exit")
    args = p.parse_args(argv)
    jobs = _jobs(args)
    if args.dry_run:
        for name, cmd in jobs:
            print(name, " ".join(cmd))
        return 0
    t0 = time.monotonic()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "study-logs.txt", "a", buffering=1) as log:
        codes = _run(jobs, t0 + args.deadline, log)
        # The seed comparisons need both runs of a pair: once every seed run is evaluated.
        if t0 + args.deadline - time.monotonic() > 30:
            common = ["--work", args.work, "--fer2013", args.fer2013, "--ckplus", args.ckplus]
            codes.update(_run([("compare", [*STUDY, "compare", *common])], t0 + args.deadline, log))
        names = _pack(Path(args.work), out)
        took = time.monotonic() - t0
        summary = f"[gpu_study] exit codes {codes}; packed {len(names)} files in {took:.0f} s"
        print(summary, file=log)
    print(summary)
    return 0 if all(c == 0 for c in codes.values()) else 1


if __name__ == "__main__":
    sys.exit(run_gpu_study())
