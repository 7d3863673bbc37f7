"""The longer training budget (issue #12.6/#12.7) on one GPU, as parallel ``ferembed train`` runs.

Every run goes through the normal ``ferembed train --config CFG`` code path with its own saved
config (the shipped recipe of ``checkpoints/fer2013/<method>.config.json`` with the changes below),
so each checkpoint's card carries its command and config. Priority order:

(a) ``softmax``, ``handcrafted``, ``separate`` (the two best losses at the 4-epoch budget) for
    ``--epochs`` (30) epochs, same recipe otherwise;
(c) the pseudo-label method (``affinity_cluster``) with a stronger round 0 (``--round0-epochs`` on
    the labelled half) and its control (``pseudo_control``: the rounds fine-tune on the labelled
    half alone for the same epochs);
(b) every other loss for ``--epochs`` epochs.

Runs are processes sharing the one GPU (``--max-parallel``, ``--threads`` CPU threads each; the
images are preloaded and augmented on the device, so no DataLoader workers). Each run resumes
from its ``train_state.pt`` (``--resume`` continues a ``--work`` folder); a finished run's
checkpoint is copied into ``--out`` at once; at ``--deadline-s`` unfinished runs are stopped and
their last finished epoch kept (marked partial). Finally the checkpoints (.safetensors + sidecar
+ config + log) are tarred into at most ``--max-tars`` files of at most ``--tar-mb`` MB.

    python scripts/long_budget.py --root /tmp/fer --work /tmp/lb --out $OUT/long --device cuda
    python scripts/long_budget.py --smoke --device cpu --root ../shared/datasets/fer2013 ...
    python scripts/long_budget.py --measure-pipeline --root ../shared/datasets/fer2013
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # this checkout's ferembed, installed or not
SHIPPED = REPO / "checkpoints" / "fer2013"
GROUP_A = ("softmax", "handcrafted", "separate")
GROUP_B = ("center", "island", "emlf", "triplet", "arcface", "weighted_cluster")
PSEUDO = "affinity_cluster"


@dataclass
class _Spec:
    name: str  # run name (output folder and file prefix)
    group: str  # a, c or b
    base: str  # shipped config it starts from
    changes: dict = field(default_factory=dict)
    pseudo: bool = False


def plan_runs(epochs: int, round0: int, rounds: int, round_epochs: int, groups: str) -> list:
    """The runs in priority order, as ``_Spec`` (name, group, shipped config, changes)."""
    runs = [_Spec(f"{m}_e{epochs}", "a", m, {"epochs": epochs}) for m in GROUP_A]
    pl = {
        "epochs": round0,
        "pseudo_rounds": rounds,
        "pseudo_epochs": round_epochs,
    }
    runs.append(_Spec(f"{PSEUDO}_r0e{round0}", "c", PSEUDO, {**pl, "pseudo_control": False}, True))
    runs.append(_Spec(f"{PSEUDO}_control", "c", PSEUDO, {**pl, "pseudo_control": True}, True))
    runs += [_Spec(f"{m}_e{epochs}", "b", m, {"epochs": epochs}) for m in GROUP_B]
    return [r for r in runs if r.group in groups]


def write_run_config(spec: _Spec, args, work: Path) -> Path:
    """``work/configs/<name>.json``: the shipped config with the run's changes."""
    cfg = json.loads((SHIPPED / f"{spec.base}.config.json").read_text())
    cfg.update(spec.changes)
    cfg.update(root=str(Path(args.root).resolve()), device=args.device, num_workers=0)
    cfg["out"] = str(work / spec.name)
    if cfg.get("init_checkpoint"):  # shipped paths are relative to the repository
        cfg["init_checkpoint"] = str((REPO / cfg["init_checkpoint"]).resolve())
    if args.smoke:
        cfg.update(max_train_samples=args.smoke_samples, epochs=1, warmup_epochs=0)
        if spec.pseudo:
            cfg.update(pseudo_rounds=1, pseudo_epochs=1)
    path = work / "configs" / f"{spec.name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(cfg, indent=2) + "\n")
    return path


def _launch(spec: _Spec, cfg: Path, work: Path, threads: int) -> subprocess.Popen:
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    env.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    cmd = [sys.executable, "-m", "ferembed", "train", "--config", str(cfg), "--quiet", "--resume"]
    log = open(work / f"{spec.name}.log", "ab")  # noqa: SIM115 (closed with the process)
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    proc._log = log  # type: ignore[attr-defined]
    return proc


def _stop(proc: subprocess.Popen, grace: float = 15.0) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    proc._log.close()  # type: ignore[attr-defined]


def _history(run_dir: Path) -> list[dict]:
    log = run_dir / "log.json"
    if not log.is_file():
        return []
    try:
        return json.loads(log.read_text())
    except json.JSONDecodeError:  # written atomically; a torn read only when copied mid-write
        return []


def summarize_run(spec: _Spec, run_dir: Path, status: str, wall: float) -> dict:
    """Per run: status, epochs done, best validation scores, seconds per epoch."""
    rows = _history(run_dir)
    best = max(rows, key=lambda r: r.get("val_mean_class_acc") or -1, default={})
    out = {
        "name": spec.name,
        "group": spec.group,
        "base": spec.base,
        "changes": spec.changes,
        "status": status,
        "epochs_done": len(rows),
        "wall_s": round(wall, 1),
        "s_per_run_epoch": round(wall / len(rows), 2) if rows else None,  # with start-up
        "median_epoch_time_s": _median([r.get("epoch_time_s") for r in rows]),
        "best_val_mean_class_acc": best.get("val_mean_class_acc"),
        "best_val_acc": best.get("val_acc"),
        "best_epoch": best.get("epoch"),
        "best_round": best.get("round"),
    }
    log = run_dir.parent / f"{spec.name}.log"
    if not status.startswith("done") and log.is_file():
        out["log_tail"] = log.read_bytes()[-1500:].decode(errors="replace")
    record = run_dir / "pseudo_labels.json"
    if record.is_file():
        rec = json.loads(record.read_text())
        keys = ("round", "n_trained", "kept_acc", "pool_acc", "val_acc", "val_mean_class_acc")
        out["rounds"] = [{k: r.get(k) for k in keys} for r in rec["rounds"]]
        out["control"], out["kmeans"] = rec.get("control"), rec.get("kmeans")
    return out


def _median(values: list) -> float | None:
    vals = sorted(v for v in values if isinstance(v, (int, float)))
    return round(vals[len(vals) // 2], 2) if vals else None


def _checkpoint_dir(run_dir: Path) -> Path | None:
    """Where the run's best/last checkpoints are (a partial pseudo-label run: its last round)."""
    if (run_dir / "best.safetensors").is_file():
        return run_dir
    rounds = sorted(run_dir.glob("round_*"), key=lambda p: int(p.name.split("_")[1]))
    for r in reversed(rounds):
        if (r / "last.safetensors").is_file():
            return r
    return None


def collect_run_outputs(
    spec: _Spec, run_dir: Path, out: Path, cfg: Path, summary: dict
) -> list[Path]:
    """Copy the run's checkpoints, config, log and summary into ``out/<name>/``."""
    dest = out / spec.name
    dest.mkdir(parents=True, exist_ok=True)
    src = _checkpoint_dir(run_dir)
    copied = []
    for stem in ("best", "last") if src is not None else ():
        for suffix in (".safetensors", ".json"):
            if (src / f"{stem}{suffix}").is_file():
                shutil.copy2(src / f"{stem}{suffix}", dest / f"{stem}{suffix}")
                copied.append(dest / f"{stem}{suffix}")
    state = run_dir / "train_state.pt"
    if summary.get("status") != "done" and state.is_file():  # to resume elsewhere
        shutil.copy2(state, dest / state.name)
    shutil.copy2(cfg, dest / "config.json")
    for name in ("log.csv", "pseudo_labels.json"):
        if (run_dir / name).is_file():
            shutil.copy2(run_dir / name, dest / name)
    (dest / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return copied


def tar_outputs(out: Path, names: list[str], max_tars: int, max_mb: float) -> dict:
    """Tar ``out/<name>/`` folders (priority order) into <= ``max_tars`` files <= ``max_mb`` MB.

    Everything small goes first; then, while they fit and in run priority, every ``best``
    weights, the training states of unfinished runs, and the ``last`` weights.
    Returns ``{"tars": [...], "left_out": [...]}``.
    """
    limit = max_mb * 1e6 - 64 * 1024  # headroom for tar headers
    small, weights = [], []
    for name in names:
        for p in sorted((out / name).glob("*")):
            (weights if p.suffix in (".safetensors", ".pt") else small).append(p)
    rank = {"best": 0, "train_state": 1, "last": 2}
    weights.sort(key=lambda p: (rank.get(p.stem, 3), names.index(p.parent.name)))
    bins: list[list[Path]] = [[]]
    sizes = [0.0]
    left_out = []
    for p in small + weights:
        size = p.stat().st_size + 1024
        i = next((j for j, s in enumerate(sizes) if s + size <= limit), None)
        if i is None and len(bins) < max_tars:
            bins.append([])
            sizes.append(0.0)
            i = len(bins) - 1
        if i is None or sizes[i] + size > limit:
            left_out.append(str(p.relative_to(out)))
            continue
        bins[i].append(p)
        sizes[i] += size
    tars = []
    for i, files in enumerate(b for b in bins if b):
        path = out / f"long_budget_{i + 1}.tar"
        with tarfile.open(path, "w") as tar:
            for p in files:
                tar.add(p, arcname=str(p.relative_to(out)))
        tars.append({"file": path.name, "mb": round(path.stat().st_size / 1e6, 2)})
    return {"tars": tars, "left_out": left_out}


def run_long_budget(args) -> dict:
    t0 = time.monotonic()
    work, out = Path(args.work), Path(args.out)
    if work.exists() and any(work.iterdir()) and not args.resume:
        raise SystemExit(f"long_budget: --work {work} is not empty; pass --resume to continue it")
    work.mkdir(parents=True, exist_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    specs = plan_runs(args.epochs, args.round0_epochs, args.rounds, args.round_epochs, args.groups)
    if args.only:
        specs = [s for s in specs if s.name in args.only or s.base in args.only]
    pending, running, results, gate = list(specs), {}, {}, {}
    cfgs = {s.name: write_run_config(s, args, work) for s in specs}

    def finish(spec, proc, status):
        wall = time.monotonic() - proc._t0
        summary = summarize_run(spec, work / spec.name, status, wall)
        collect_run_outputs(spec, work / spec.name, out, cfgs[spec.name], summary)
        results[spec.name] = summary
        _write_summary(out, results, t0, args)
        print(
            f"[{time.monotonic() - t0:6.0f}s] {spec.name}: {status} ({summary['epochs_done']} "
            f"epochs, best val mca {summary['best_val_mean_class_acc']})",
            flush=True,
        )

    while pending or running:
        elapsed = time.monotonic() - t0
        if elapsed > args.deadline_s:
            break
        while pending and len(running) < args.max_parallel:
            if elapsed > args.deadline_s - args.min_start_s:
                break  # too late for a new run to finish anything worth keeping
            if pending[0].group == "b" and not _room_for_more(work, running, args, elapsed, gate):
                break  # group a first: another process must not make it miss the deadline
            spec = pending.pop(0)
            proc = _launch(spec, cfgs[spec.name], work, args.threads)
            proc._t0 = time.monotonic()  # type: ignore[attr-defined]
            running[spec.name] = (spec, proc)
            print(f"[{elapsed:6.0f}s] start {spec.name}", flush=True)
        if not running and pending:
            break
        for name, (spec, proc) in list(running.items()):
            if proc.poll() is not None:
                proc._log.close()
                del running[name]
                finish(
                    spec, proc, "done" if proc.returncode == 0 else f"failed ({proc.returncode})"
                )
        time.sleep(args.poll_s)
    for spec, proc in running.values():
        _stop(proc)
        finish(spec, proc, "partial (deadline)")
    for spec in pending:
        results[spec.name] = {"name": spec.name, "group": spec.group, "status": "not started"}
    packed = tar_outputs(
        out, [s.name for s in specs if s.name in results], args.max_tars, args.tar_mb
    )
    return _write_summary(out, results, t0, args, packed)


def _room_for_more(work: Path, running: dict, args, elapsed: float, gate: dict) -> bool:
    """Whether one more process still lets every running group-a run finish before the deadline.

    Projection per group-a run: epochs left x its recent epoch time x 1.15 (validation) x
    (processes + 1) / processes (the GPU shared by one more). Each launch waits until every
    group-a run has logged one more epoch (re-measured under the new load). ``--no-adaptive``:
    always.
    """
    if not args.adaptive:
        return True
    firsts = [spec for spec, _ in running.values() if spec.group == "a"]
    if not firsts:
        return True
    logs = {spec.name: _history(work / spec.name) for spec in firsts}
    if not all(logs.values()):
        return False  # not measured yet
    done = sum(len(rows) for rows in logs.values())
    if done < gate.get("epochs", 0) + len(firsts):
        return False
    n, worst = len(running), 0.0
    for spec in firsts:
        rows = logs[spec.name]
        epochs = json.loads((work / "configs" / f"{spec.name}.json").read_text())["epochs"]
        t_epoch = _median([r.get("epoch_time_s") for r in rows[-2:]]) or 0.0
        worst = max(worst, (epochs - len(rows)) * t_epoch * 1.15 * (n + 1) / n)
    if elapsed + worst > args.deadline_s - 20:
        return False
    gate["epochs"] = done
    return True


def _write_summary(out: Path, results: dict, t0: float, args, packed: dict | None = None) -> dict:
    doc = {
        "device": args.device,
        "epochs": args.epochs,
        "max_parallel": args.max_parallel,
        "threads": args.threads,
        "elapsed_s": round(time.monotonic() - t0, 1),
        "runs": list(results.values()),
        "tar": packed,
    }
    (out / "long_budget.json").write_text(json.dumps(doc, indent=2) + "\n")
    return doc


def _markdown(doc: dict) -> str:
    lines = [
        "| run | group | status | epochs | s/epoch (median) | best val acc | best val mca |",
        "|---|---|---|---:|---:|---:|---:|",
    ]
    for r in doc["runs"]:
        lines.append(
            f"| {r['name']} | {r['group']} | {r['status']} | {r.get('epochs_done', 0)} | "
            f"{r.get('median_epoch_time_s')} | {r.get('best_val_acc')} | "
            f"{r.get('best_val_mean_class_acc')} |"
        )
    return "\n".join(lines)


def measure_pipeline(root: str, workers: list[int], n_batches: int, batch: int = 64) -> dict:
    """Images/s of the training data path without a model, on this machine's CPU.

    Preload (decode every train + val JPEG once), gathering preloaded batches, normalisation +
    augmentation on the CPU (on a GPU they run on the device), and the non-preloaded DataLoader
    with each number of ``workers`` (first ``n_batches`` batches).
    """
    import torch

    from ferembed.models import normalize_images
    from ferembed.training.augment import Augmenter
    from ferembed.training.config import TrainConfig
    from ferembed.training.setup import ImageBatches, build_datasets

    cfg = TrainConfig(dataset="fer2013", root=root, device="cpu")
    train_ds, val_ds = build_datasets(cfg)
    res: dict = {"n_train": len(train_ds), "n_val": len(val_ds), "torch_threads": None}
    res["torch_threads"] = torch.get_num_threads()
    t = time.perf_counter()
    data = ImageBatches(train_ds, preload=True)
    ImageBatches(val_ds, preload=True)
    res["preload_s"] = round(time.perf_counter() - t, 2)
    res["preload_images_per_s"] = round((len(train_ds) + len(val_ds)) / res["preload_s"])
    order = torch.randperm(len(train_ds), generator=torch.Generator().manual_seed(0)).numpy()
    batches = [order[i : i + batch] for i in range(0, len(order), batch)]
    aug, gen = Augmenter(cfg.augment), torch.Generator().manual_seed(0)
    t, t_gather = time.perf_counter(), 0.0
    for _, images, _ in data.iterate(batches):
        t_gather -= time.perf_counter()
        x = normalize_images(images)
        t_gather += time.perf_counter()
        aug(x, gen)
    total = time.perf_counter() - t
    res["epoch_gather_normalize_s"] = round(t_gather, 2)
    res["epoch_gather_augment_cpu_s"] = round(total, 2)
    res["augment_cpu_images_per_s"] = round(len(train_ds) / total)
    for n in workers:
        lazy = ImageBatches(train_ds, preload=False, num_workers=n)
        t = time.perf_counter()
        for _ in lazy.iterate(batches[:n_batches]):
            pass
        sec = time.perf_counter() - t
        res[f"dataloader_{n}_workers_images_per_s"] = round(n_batches * batch / sec)
    return res


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", required=True, help="extracted fer2013 folder (train/, val/)")
    ap.add_argument("--work", default="/tmp/long_budget", help="training folders (resumable)")
    ap.add_argument("--out", default="long_budget_out", help="copied checkpoints and the tars")
    ap.add_argument("--device", default="cuda", help="cuda (default) or cpu")
    ap.add_argument("--epochs", type=int, default=30, help="epochs of groups a and b")
    ap.add_argument("--round0-epochs", type=int, default=20, help="pseudo-label round 0 epochs")
    ap.add_argument("--rounds", type=int, default=2, help="pseudo-label rounds after round 0")
    ap.add_argument("--round-epochs", type=int, default=5, help="epochs per pseudo-label round")
    ap.add_argument("--groups", default="acb", help="which groups to run (default acb)")
    ap.add_argument("--only", nargs="*", help="only these runs (names or shipped methods)")
    ap.add_argument("--max-parallel", type=int, default=11, help="processes at once")
    ap.add_argument("--threads", type=int, default=1, help="CPU threads per process")
    ap.add_argument("--deadline-s", type=float, default=480, help="stop runs after this")
    ap.add_argument("--min-start-s", type=float, default=90, help="no new run this close to it")
    ap.add_argument("--poll-s", type=float, default=2.0, help="seconds between status polls")
    ap.add_argument("--max-tars", type=int, default=2, help="tar files at most")
    ap.add_argument("--tar-mb", type=float, default=15.0, help="MB per tar at most")
    ap.add_argument("--resume", action="store_true", help="continue the runs in --work")
    ap.add_argument(
        "--no-adaptive",
        dest="adaptive",
        action="store_false",
        help="start group b at once (default: only while group a stays on time)",
    )
    ap.add_argument("--smoke", action="store_true", help="1 epoch on a few samples (CPU check)")
    ap.add_argument("--smoke-samples", type=int, default=600, help="train samples with --smoke")
    ap.add_argument(
        "--measure-pipeline", action="store_true", help="time preload + augmentation only"
    )
    ap.add_argument("--workers", type=int, nargs="+", default=[0, 2], help="probe's DataLoaders")
    ap.add_argument("--probe-batches", type=int, default=60, help="batches per DataLoader probe")
    return ap


def main_long_budget(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if not (Path(args.root) / "train").is_dir():
        raise SystemExit(f"long_budget: --root {args.root} has no train/ folder")
    if args.measure_pipeline:
        print(json.dumps(measure_pipeline(args.root, args.workers, args.probe_batches), indent=2))
        return 0
    doc = run_long_budget(args)
    print(_markdown(doc))
    print(json.dumps(doc["tar"], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main_long_budget())
