"""scripts/long_budget.py: the plan, the configs, the scheduler under a deadline, the tars.

The training processes are stood in for by tiny scripts that write what ``ferembed train``
writes (log.json, best/last checkpoints), so the scheduling logic runs in a second.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile

import long_budget as lb
import pytest

from ferembed.training import load_config

FAKE = """
import json, pathlib, sys, time
cfg = json.load(open(sys.argv[1]))
out = pathlib.Path(cfg["out"]); out.mkdir(parents=True, exist_ok=True)
epochs, pause, size = int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
for e in range(epochs):
    time.sleep(pause)
    for stem in ("best", "last"):
        (out / f"{stem}.safetensors").write_bytes(b"w" * size)
        (out / f"{stem}.json").write_text("{}")
    (out / "train_state.pt").write_bytes(b"s" * size)
    rows = [{"epoch": i + 1, "val_acc": 0.5, "val_mean_class_acc": 0.4 + i / 100,
             "epoch_time_s": pause} for i in range(e + 1)]
    (out / "log.json").write_text(json.dumps(rows))
sys.exit(3 if "fail" in cfg["out"] else 0)
"""


def _argv(tmp_path):
    root = tmp_path / "fer"
    (root / "train").mkdir(parents=True, exist_ok=True)
    return ["--root", str(root), "--work", str(tmp_path / "work"), "--out", str(tmp_path / "out")]


def _args(tmp_path, *extra):
    return lb._parser().parse_args(
        [*_argv(tmp_path), "--device", "cpu", "--poll-s", "0.05", *extra]
    )


def test_plan_is_in_priority_order_and_the_control_differs_only_by_the_flag():
    runs = lb.plan_runs(30, 20, 2, 5, "acb")
    assert [r.group for r in runs] == ["a"] * 3 + ["c"] * 2 + ["b"] * 6
    assert [r.base for r in runs[:3]] == ["softmax", "handcrafted", "separate"]
    pseudo, control = runs[3], runs[4]
    assert pseudo.changes == {**control.changes, "pseudo_control": False}
    assert control.changes["pseudo_control"] is True and control.changes["epochs"] == 20
    assert {r.base for r in runs[5:]} == set(lb.GROUP_B)
    assert all(r.changes["epochs"] == 30 for r in runs if r.group != "c")
    assert [r.group for r in lb.plan_runs(30, 20, 2, 5, "c")] == ["c", "c"]


def test_run_configs_are_the_shipped_recipe_with_the_changes(tmp_path):
    args = _args(tmp_path)
    for spec in lb.plan_runs(30, 20, 2, 5, "acb"):
        path = lb.write_run_config(spec, args, tmp_path / "work")
        cfg = load_config(path).validate()  # what `ferembed train --config` will read
        shipped = json.loads((lb.SHIPPED / f"{spec.base}.config.json").read_text())
        assert cfg.loss == shipped["loss"] and cfg.arch == shipped["arch"]
        assert cfg.lr == shipped["lr"] and cfg.optimizer == shipped["optimizer"]
        assert cfg.root == str(args.root) and cfg.device == "cpu"
        assert cfg.out == str(tmp_path / "work" / spec.name)
        for key, value in spec.changes.items():
            assert getattr(cfg, key) == value
        if cfg.init_checkpoint:  # the softmax warm start, found from any working directory
            assert (tmp_path / cfg.init_checkpoint).exists()
    smoke = lb.write_run_config(spec, _args(tmp_path, "--smoke"), tmp_path / "w2")
    assert load_config(smoke).epochs == 1 and load_config(smoke).max_train_samples == 600


def _fake_launch(monkeypatch, plan: dict):
    def launch(spec, cfg, work, threads):
        epochs, pause = plan.get(spec.name, (2, 0.05))
        log = open(work / f"{spec.name}.log", "ab")  # noqa: SIM115
        cmd = [sys.executable, "-c", FAKE, str(cfg), str(epochs), str(pause), "50000"]
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        proc._log = log
        return proc

    monkeypatch.setattr(lb, "_launch", launch)


def test_scheduler_collects_finished_runs_and_stops_late_ones(tmp_path, monkeypatch):
    _fake_launch(monkeypatch, {"separate_e30": (100, 0.5)})
    args = _args(
        tmp_path, "--groups", "a", "--max-parallel", "2", "--deadline-s", "4",
        "--min-start-s", "0",
    )  # fmt: skip
    doc = lb.run_long_budget(args)
    runs = {r["name"]: r for r in doc["runs"]}
    assert runs["softmax_e30"]["status"] == "done" and runs["softmax_e30"]["epochs_done"] == 2
    assert runs["softmax_e30"]["best_val_mean_class_acc"] == pytest.approx(0.41)
    assert runs["separate_e30"]["status"] == "partial (deadline)"
    assert 1 <= runs["separate_e30"]["epochs_done"] < 100
    out = tmp_path / "out"
    for name in runs:  # every run's checkpoint copied, with its config and summary
        assert (out / name / "best.safetensors").is_file()
        assert json.loads((out / name / "config.json").read_text())["out"].endswith(name)
    (tar,) = doc["tar"]["tars"]
    with tarfile.open(out / tar["file"]) as t:
        names = set(t.getnames())
    assert "softmax_e30/best.safetensors" in names and "separate_e30/summary.json" in names
    # The unfinished run brings its training state back (to resume elsewhere); a done one not.
    assert "separate_e30/train_state.pt" in names and "softmax_e30/train_state.pt" not in names
    assert json.loads((out / "long_budget.json").read_text())["runs"] == doc["runs"]
    with pytest.raises(SystemExit, match="--resume"):  # the work folder is kept for a resume
        lb.run_long_budget(args)


def test_a_failed_run_keeps_its_log_tail(tmp_path, monkeypatch):
    _fake_launch(monkeypatch, {})
    args = _args(tmp_path, "--only", "softmax", "--deadline-s", "30", "--min-start-s", "0")
    monkeypatch.setattr(lb, "plan_runs", lambda *a: [lb._Spec("fail_run", "a", "softmax")])
    doc = lb.run_long_budget(args)
    (run,) = doc["runs"]
    assert run["status"] == "failed (3)" and "log_tail" in run


def test_tars_respect_their_count_and_size_in_priority_order(tmp_path):
    out = tmp_path / "out"
    names = ["r1", "r2", "r3"]
    for name in names:
        (out / name).mkdir(parents=True)
        (out / name / "summary.json").write_text("{}")
        for stem in ("best", "last"):
            (out / name / f"{stem}.safetensors").write_bytes(b"w" * 50_000)
    (out / "r3" / "train_state.pt").write_bytes(b"s" * 50_000)
    packed = lb.tar_outputs(out, names, max_tars=2, max_mb=0.25)  # 2 x (250 kB - headroom)
    sizes = [(out / t["file"]).stat().st_size for t in packed["tars"]]
    assert len(sizes) == 2 and all(s <= 250_000 for s in sizes)
    # Summaries first, then every best, the unfinished run's state, the last weights that fit.
    assert packed["left_out"] == ["r3/last.safetensors"]


def test_group_b_waits_while_group_a_would_miss_the_deadline(tmp_path):
    args = _args(tmp_path, "--deadline-s", "100")
    work = tmp_path / "work"
    a = lb.plan_runs(30, 20, 2, 5, "a")[0]
    lb.write_run_config(a, args, work)
    running, gate = {a.name: (a, None)}, {}

    def log(epochs, t_epoch):
        (work / a.name).mkdir(parents=True, exist_ok=True)
        rows = [{"epoch": i + 1, "epoch_time_s": t_epoch} for i in range(epochs)]
        (work / a.name / "log.json").write_text(json.dumps(rows))

    assert lb._room_for_more(work, {}, args, 0, gate)  # no group-a run: nothing to protect
    assert not lb._room_for_more(work, running, args, 0, gate)  # not measured yet
    log(2, 1.0)  # 28 epochs left x 1 s x 1.15 x 2 = 64 s: fits in 100 - 20 s
    assert lb._room_for_more(work, running, args, 10, gate)
    assert not lb._room_for_more(work, running, args, 10, gate)  # re-measure first
    log(3, 1.0)
    assert not lb._room_for_more(work, running, args, 30, gate)  # 30 + 62 s > 80 s
    assert lb._room_for_more(work, running, lb._parser().parse_args(
        [*_argv(tmp_path), "--no-adaptive"]), 30, gate)  # fmt: skip
