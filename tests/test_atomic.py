"""Atomic units under kills (issue #14): an ``--overwrite`` swap, temporary leftovers, the
checkpoint's weights + sidecar, and the evaluation lock.

A kill is simulated deterministically: a child process replaces ``os.replace`` / ``os.rename``
with a wrapper that SIGKILLs the process when it is about to move a chosen path, then runs the
write. The parent checks what is on disk and what the next command makes of it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from ferembed import _io, _lock
from ferembed.runs import evaluate_run, find_runs, load_run, make_samples, write_run
from ferembed.runs.evaluate import LOCK_FILE

REPO = Path(__file__).resolve().parents[1]
CLASSES = ["angry", "happy", "sad"]

_KILL_SHIM = """
import os, signal, sys
from pathlib import Path
_WHEN = sys.argv[1]      # "replace" or "rename"
_DST = sys.argv[2]       # kill when moving onto a path ending with this
_real = getattr(os, _WHEN)
def _killing(src, dst, *a, **k):
    if str(dst).endswith(_DST):
        os.kill(os.getpid(), signal.SIGKILL)
    return _real(src, dst, *a, **k)
setattr(os, _WHEN, _killing)
"""


def _child(code: str, *args: str) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter with ferembed importable."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _killed_during(code: str, when: str, dst_suffix: str, *args: str) -> None:
    """Run ``code`` in a child that is SIGKILLed when it moves something onto ``*dst_suffix``."""
    proc = _child(_KILL_SHIM + textwrap.dedent(code), when, dst_suffix, *args)
    assert proc.returncode == -signal.SIGKILL, proc.stderr


_WRITE_RUN = """
import sys
import numpy as np
from ferembed.runs import make_samples, write_run
path, seed, overwrite = sys.argv[3], int(sys.argv[4]), sys.argv[5] == "1"
x = np.random.default_rng(seed).normal(size=(12, 4)).astype(np.float32)
write_run(path, embeddings=x, samples=make_samples(np.arange(12) % 3, ["angry", "happy", "sad"]),
          class_names=["angry", "happy", "sad"], overwrite=overwrite)
"""


def _write(path: Path, seed: int = 0, overwrite: bool = False) -> np.ndarray:
    x = np.random.default_rng(seed).normal(size=(12, 4)).astype(np.float32)
    samples = make_samples(np.arange(12) % 3, CLASSES)
    write_run(path, embeddings=x, samples=samples, class_names=CLASSES, overwrite=overwrite)
    return x


def _hidden(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name.startswith("."))


# ------------------------------------------------------------------------------------------------
# --overwrite swap


def test_kill_between_the_swap_renames_keeps_the_old_run_and_load_restores_it(tmp_path):
    old = _write(tmp_path / "r", seed=0)
    # The new run is complete and the old one renamed away; killed before the new one moves in.
    _killed_during(_WRITE_RUN, "replace", "/r", str(tmp_path / "r"), "1", "1")
    assert not (tmp_path / "r").exists()
    assert [n.endswith(".old") for n in _hidden(tmp_path)].count(True) == 1
    run = load_run(tmp_path / "r")  # the next command that touches the path puts it back
    np.testing.assert_array_equal(run.embeddings, old)
    assert not [n for n in _hidden(tmp_path) if n.endswith(".old")]


def test_interrupted_swap_is_restored_by_listing_or_by_the_next_write(tmp_path):
    old = _write(tmp_path / "r", seed=0)
    _killed_during(_WRITE_RUN, "replace", "/r", str(tmp_path / "r"), "1", "1")
    assert find_runs(tmp_path) == [tmp_path / "r"]
    np.testing.assert_array_equal(load_run(tmp_path / "r").embeddings, old)
    _killed_during(_WRITE_RUN, "replace", "/r", str(tmp_path / "r"), "2", "1")
    _write(tmp_path / "other")  # any write in the folder cleans up after dead writers
    np.testing.assert_array_equal(load_run(tmp_path / "r").embeddings, old)
    assert _hidden(tmp_path) == []


def test_kill_after_the_swap_keeps_the_new_run_and_drops_the_old(tmp_path):
    _write(tmp_path / "r", seed=0)
    _killed_during(_WRITE_RUN, "rename", ".trash", str(tmp_path / "r"), "1", "1")
    new = np.random.default_rng(1).normal(size=(12, 4)).astype(np.float32)
    assert [n for n in _hidden(tmp_path) if n.endswith(".old")]
    np.testing.assert_array_equal(load_run(tmp_path / "r").embeddings, new)
    _io.clean_leftovers(tmp_path)
    assert _hidden(tmp_path) == []
    np.testing.assert_array_equal(load_run(tmp_path / "r").embeddings, new)


def test_a_failed_overwrite_leaves_the_old_run(tmp_path):
    old = _write(tmp_path / "r")
    with pytest.raises(RuntimeError), _io.atomic_dir(tmp_path / "r", overwrite=True) as tmp:
        (tmp / "half").write_text("x")
        raise RuntimeError("boom")
    np.testing.assert_array_equal(load_run(tmp_path / "r").embeddings, old)
    assert _hidden(tmp_path) == []


# ------------------------------------------------------------------------------------------------
# Temporary leftovers


def test_a_killed_writer_s_temporary_run_is_removed_by_the_next_write(tmp_path):
    _killed_during(_WRITE_RUN, "replace", "/r", str(tmp_path / "r"), "0", "0")
    left = _hidden(tmp_path)
    assert len(left) == 1 and left[0].startswith(".r.") and left[0].endswith(".tmp")
    assert (tmp_path / left[0] / "embeddings.npy").is_file()  # the big one of the issue
    _write(tmp_path / "r")
    assert _hidden(tmp_path) == []


def test_a_killed_writer_s_temporary_file_is_removed_by_the_next_write(tmp_path):
    code = "from ferembed import _io\n_io.write_json(sys.argv[3], {'a': 1})\n"
    _killed_during(code, "replace", "x.json", str(tmp_path / "x.json"))
    assert len(_hidden(tmp_path)) == 1 and not (tmp_path / "x.json").exists()
    _io.write_json(tmp_path / "y.json", {"b": 2})
    assert _hidden(tmp_path) == []
    assert json.loads((tmp_path / "y.json").read_text()) == {"b": 2}


def _age(path: Path, seconds: float) -> None:
    t = time.time() - seconds
    os.utime(path, (t, t))


def test_live_writers_and_unknown_files_are_never_removed(tmp_path):
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        live = {
            f".r.{os.getpid()}@{_io.HOST}.abcdefgh.tmp",  # this process
            f".r.{sleeper.pid}@{_io.HOST}.abcdefgh.tmp",  # another live process
            f".r.{sleeper.pid}@{_io.HOST}.abcdefgh.old",
            f".x.json.{sleeper.pid}@{_io.HOST}.abcdefgh.json.tmp",
            ".r.1234@some-other-host.abcdefgh.tmp",  # cannot be checked, and recent
            ".r.abcdefgh.tmp",  # an earlier version's name, recent
            ".hidden",
            ".notes.tmp",
            "r.tmp",
        }
        for name in live:
            (tmp_path / name).mkdir()
        old = {".r.1234@some-other-host.zzzzzzzz.tmp", ".q.zzzzzzzz.tmp"}
        for name in old:
            (tmp_path / name).mkdir()
            _age(tmp_path / name, _io.ORPHAN_AGE_S + 60)
        (tmp_path / "r").mkdir()
        removed = _io.clean_leftovers(tmp_path)
        assert {p.name for p in removed} == old
        assert {p.name for p in tmp_path.iterdir()} == live | {"r"}
    finally:
        sleeper.kill()
        sleeper.wait()
    # Now that the writer is dead, its leftovers go; the .old is dropped because r exists.
    _io.clean_leftovers(tmp_path)
    gone = {n for n in live if str(sleeper.pid) in n}
    assert {p.name for p in tmp_path.iterdir()} == (live - gone) | {"r"}


def test_temporary_names_name_their_writer_and_keep_the_umask(tmp_path):
    old_mask = os.umask(0o027)
    try:
        with _io.atomic_path(tmp_path / "a.json") as tmp:
            assert f".{os.getpid()}@{_io.HOST}." in tmp.name
            tmp.write_text("{}")
        tmp_dir = _io.make_temp_dir(tmp_path, ".d.")
        assert f".d.{os.getpid()}@{_io.HOST}." in tmp_dir.name
        assert (tmp_path / "a.json").stat().st_mode & 0o777 == 0o640
        assert tmp_dir.stat().st_mode & 0o777 == 0o750
    finally:
        os.umask(old_mask)


# ------------------------------------------------------------------------------------------------
# Checkpoint: weights + sidecar as one unit

_SAVE_CKPT = """
import sys
import torch
from ferembed.models import create_model
from ferembed.models.checkpoint import save_checkpoint
stem, seed = sys.argv[3], int(sys.argv[4])
torch.manual_seed(seed)
save_checkpoint(stem, create_model("vgg_small", 3, embedding_dim=8))
"""


def _save_ckpt(stem: Path, seed: int) -> None:
    proc = _child(_SAVE_CKPT, "-", "-", str(stem), str(seed))
    assert proc.returncode == 0, proc.stderr


def _weights(stem: Path):
    from ferembed.models.checkpoint import load_checkpoint

    model, sidecar = load_checkpoint(stem)
    return {k: v.clone() for k, v in model.state_dict().items()}, sidecar


@pytest.mark.parametrize(
    ("kill_at", "expect_seed"),
    [("best.json", 1), ("best.safetensors", 0)],
    ids=["after-weights-before-sidecar", "before-weights"],
)
def test_checkpoint_killed_mid_save_loads_a_whole_pair(tmp_path, kill_at, expect_seed):
    import torch

    for seed in (expect_seed, 1 - expect_seed):  # the pair we expect to survive, by content
        _save_ckpt(tmp_path / f"ref{seed}" / "best", seed)
    _save_ckpt(tmp_path / "best", 0)
    _killed_during(_SAVE_CKPT, "replace", kill_at, str(tmp_path / "best"), "1")
    pending = [n for n in _hidden(tmp_path) if n.endswith(".pending")]
    assert len(pending) == 1
    if kill_at == "best.json":
        # The situation of the issue: new weights beside the old sidecar (sha256 mismatch).
        sidecar = json.loads((tmp_path / "best.json").read_text())
        ref = json.loads((tmp_path / "ref0" / "best.json").read_text())
        assert sidecar["sha256"] == ref["sha256"]
    state, sidecar = _weights(tmp_path / "best")
    expected, _ = _weights(tmp_path / f"ref{expect_seed}" / "best")
    assert all(torch.equal(state[k], expected[k]) for k in expected)
    assert [n for n in _hidden(tmp_path) if n.endswith(".pending")] == []


def test_a_live_writer_s_pending_sidecar_is_left_alone(tmp_path):
    from ferembed.models.checkpoint import recover_checkpoint

    _save_ckpt(tmp_path / "best", 0)
    pending = tmp_path / f".best.json.{os.getpid()}@{_io.HOST}.pending"
    pending.write_text('{"sha256": "0"}')
    assert recover_checkpoint(tmp_path / "best") == []
    assert pending.exists()


# ------------------------------------------------------------------------------------------------
# The evaluation lock


def _run(path: Path) -> Path:
    rng = np.random.default_rng(0)
    y = np.arange(60) % 3
    x = (rng.normal(size=(3, 8))[y] * 3 + rng.normal(size=(60, 8))).astype(np.float32)
    write_run(path, embeddings=x, samples=make_samples(y, CLASSES), class_names=CLASSES)
    return path


def test_a_second_evaluation_waits_naming_the_holder_then_returns_the_first_s_metrics(
    tmp_path, monkeypatch
):
    import ferembed.runs.evaluate as ev

    run = _run(tmp_path / "r")
    calls, release, waiting, messages = [], threading.Event(), threading.Event(), []
    real = ev.evaluate

    def slow_evaluate(*args, **kwargs):
        calls.append(threading.current_thread().name)
        assert release.wait(30)
        return real(*args, **kwargs)

    def on_wait(message):
        messages.append(message)
        waiting.set()

    monkeypatch.setattr(ev, "evaluate", slow_evaluate)
    monkeypatch.setattr(_lock, "_stderr", on_wait)
    results = {}

    def job(name):
        results[name] = evaluate_run(run, n_boot=0)

    first = threading.Thread(target=job, args=("first",), name="first")
    first.start()
    while not calls:
        time.sleep(0.01)
    holder = json.loads((run / LOCK_FILE).read_text())
    assert holder["pid"] == os.getpid() and holder["host"] == _io.HOST and holder["started"]
    second = threading.Thread(target=job, args=("second",), name="second")
    second.start()
    assert waiting.wait(30)
    release.set()
    first.join(60)
    second.join(60)
    assert calls == ["first"]  # the second computed nothing
    assert len(messages) == 1 and "\n" not in messages[0]
    assert f"pid {os.getpid()} on {_io.HOST} since {holder['started']}" in messages[0]
    assert str(run) in messages[0]
    assert results["second"] == json.loads((run / "metrics.json").read_text())
    assert results["second"]["knn_accuracy"] == results["first"]["knn_accuracy"]
    assert not (run / LOCK_FILE).exists()


def test_a_waiting_evaluation_with_other_options_computes_its_own(tmp_path, monkeypatch):
    run = _run(tmp_path / "r")
    with _lock.hold_lock(run / LOCK_FILE, what="test"):
        pass
    first = evaluate_run(run, n_boot=0)
    messages = []
    monkeypatch.setattr(_lock, "_stderr", messages.append)
    done = threading.Event()

    def job():
        done.result = evaluate_run(run, n_boot=0, k=3)
        done.set()

    with _lock.hold_lock(run / LOCK_FILE, what="test"):
        t = threading.Thread(target=job)
        t.start()
        while not messages:
            time.sleep(0.01)
    t.join(60)
    assert done.is_set() and done.result["computed_from"]["request"]["options"] == {
        "k": 3,
        "n_boot": 0,
    }
    assert first["computed_from"]["request"]["options"] == {"n_boot": 0}


def test_the_stale_lock_of_a_killed_evaluation_is_taken_over(tmp_path, monkeypatch):
    run = _run(tmp_path / "r")
    code = """
    import os, signal, sys
    from ferembed._lock import hold_lock
    with hold_lock(sys.argv[1], what="test"):
        os.kill(os.getpid(), signal.SIGKILL)
    """
    proc = _child(code, str(run / LOCK_FILE))
    assert proc.returncode == -signal.SIGKILL
    dead = json.loads((run / LOCK_FILE).read_text())
    assert dead["pid"] != os.getpid()
    messages = []
    monkeypatch.setattr(_lock, "_stderr", messages.append)
    metrics = evaluate_run(run, n_boot=0)
    assert messages == [] and metrics["n"] == 60
    assert not (run / LOCK_FILE).exists()


def test_a_lock_that_cannot_be_created_does_not_stop_the_evaluation(tmp_path, monkeypatch):
    # A read-only run cannot hold the lock file; the evaluation then goes on without it (and
    # its own writes report the read-only folder, naming the file).
    import errno

    run = _run(tmp_path / "r")
    real_open = os.open

    def refusing_open(path, *args, **kwargs):
        if str(path).endswith(LOCK_FILE):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(_lock.os, "open", refusing_open)
    assert evaluate_run(run, n_boot=0)["n"] == 60
    assert load_run(run).metrics_status()[0] == "fresh" and not (run / LOCK_FILE).exists()


# ------------------------------------------------------------------------------------------------
# What earlier versions left behind


def test_an_earlier_version_s_interrupted_swap_is_restored(tmp_path):
    old = _write(tmp_path / "built")
    legacy = tmp_path / ".r.k3j4h5g6.old"  # that version kept the old run at ".old/x"
    legacy.mkdir()
    os.rename(tmp_path / "built", legacy / "x")
    np.testing.assert_array_equal(load_run(tmp_path / "r").embeddings, old)
    assert _hidden(tmp_path) == []


def test_an_earlier_version_s_leftover_is_removed_once_old(tmp_path):
    (tmp_path / ".r.k3j4h5g6.tmp").mkdir()
    _write(tmp_path / "a")
    assert _hidden(tmp_path) == [".r.k3j4h5g6.tmp"]  # recent: its writer may still be at work
    _age(tmp_path / ".r.k3j4h5g6.tmp", _io.ORPHAN_AGE_S + 60)
    _write(tmp_path / "b")
    assert _hidden(tmp_path) == []


def test_an_earlier_version_s_sidecar_left_in_its_temporary_file_is_recovered(tmp_path):
    import shutil

    import torch

    _save_ckpt(tmp_path / "a" / "best", 0)
    _save_ckpt(tmp_path / "b" / "best", 1)
    # Weights of b beside the sidecar of a, b's sidecar still in that version's temporary name.
    shutil.copy(tmp_path / "a" / "best.json", tmp_path / "best.json")
    shutil.copy(tmp_path / "b" / "best.safetensors", tmp_path / "best.safetensors")
    shutil.copy(tmp_path / "b" / "best.json", tmp_path / ".best.json.k3j4h5g6.json.tmp")
    state, _ = _weights(tmp_path / "best")
    expected, _ = _weights(tmp_path / "b" / "best")
    assert all(torch.equal(state[k], expected[k]) for k in expected)
    assert _hidden(tmp_path) == []
