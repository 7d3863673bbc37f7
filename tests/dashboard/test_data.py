"""The dashboard's data layer outside Streamlit: path confinement, arguments, launching."""

from __future__ import annotations

import os
import sys

import pytest
from conftest import APP

from dashboard import _data
from ferembed import _dashboard
from ferembed.errors import FerembedError


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "runs"
    (root / "a" / "b").mkdir(parents=True)
    (tmp_path / "secret").mkdir()
    (root / "escape").symlink_to(tmp_path / "secret", target_is_directory=True)
    (root / "inside").symlink_to(root / "a", target_is_directory=True)
    return root


@pytest.mark.parametrize("path", ["a", "a/b", "a/../a/b", ".", "", "inside", "a/b/"])
def test_paths_inside_the_root_resolve(tree, path):
    got = _data.resolve_inside(tree, path)
    assert got == tree.resolve() or tree.resolve() in got.parents


@pytest.mark.parametrize(
    "path", ["..", "../secret", "a/../../secret", "a/b/../../..", "escape", "escape/x", "/etc"]
)
def test_paths_outside_the_root_are_refused(tree, path):
    with pytest.raises(_data.OutsideRootError, match="outside the runs root"):
        _data.resolve_inside(tree, path)


def test_absolute_path_inside_the_root_is_accepted(tree):
    assert _data.resolve_inside(tree, tree / "a") == (tree / "a").resolve()


def test_nul_byte_is_refused(tree):
    with pytest.raises(_data.OutsideRootError):
        _data.resolve_inside(tree, "a\x00b")


def test_runs_root_from_arguments_then_environment(monkeypatch, tmp_path):
    monkeypatch.setattr(sys, "argv", ["app.py", "--runs", str(tmp_path)])
    monkeypatch.setenv("FEREMBED_RUNS", "/elsewhere")
    assert _data.runs_root() == tmp_path.resolve()
    monkeypatch.setattr(sys, "argv", ["app.py"])
    assert _data.runs_root() == _data.Path("/elsewhere")
    monkeypatch.delenv("FEREMBED_RUNS")
    assert _data.runs_root() is None


def test_launch_command_serves_localhost_only(tmp_path):
    cmd = _dashboard.command(tmp_path, port=8600)
    assert cmd[:4] == [sys.executable, "-m", "streamlit", "run"]
    assert cmd[4] == str(APP)
    opts = dict(zip(cmd[5:-3:2], cmd[6:-3:2], strict=True))
    assert opts == {
        "--server.address": "127.0.0.1",
        "--server.port": "8600",
        "--server.headless": "true",
        "--browser.gatherUsageStats": "false",
        "--client.toolbarMode": "minimal",
        "--server.fileWatcherType": "none",
        "--runner.postScriptGC": "false",
    }
    assert cmd[-3:] == ["--", "--runs", str(tmp_path.resolve())]


def test_launch_rejects_bad_arguments(tmp_path):
    with pytest.raises(FerembedError, match="not a directory"):
        _dashboard.launch(tmp_path / "missing")
    with pytest.raises(FerembedError, match="port"):
        _dashboard.launch(tmp_path, port=70000)


def test_launch_runs_streamlit_with_the_root(tmp_path, monkeypatch):
    seen = {}

    class FakePopen:
        def __init__(self, cmd, env, cwd=None):
            seen["cmd"], seen["env"], seen["cwd"] = cmd, env, cwd

        def wait(self, timeout=None):
            return 0

    monkeypatch.setattr(_dashboard.subprocess, "Popen", FakePopen)
    assert _dashboard.launch(tmp_path, port=8123) == 0
    assert seen["cmd"][-1] == str(tmp_path.resolve())
    assert seen["env"]["FEREMBED_RUNS"] == str(tmp_path.resolve())
    assert os.fspath(APP) in seen["cmd"]
    # Started in the repository: its .streamlit/config.toml applies, not one in the user's folder.
    assert seen["cwd"] == APP.parent.parent
    assert (APP.parent.parent / ".streamlit" / "config.toml").is_file()
