"""Every option of every command is documented, lists its choices, and `--help` reads like a man
page (a description of what the command reads and writes, and examples)."""

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ferembed.cli import build_parser


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(action.choices)


PARSER = build_parser()
COMMANDS = _subcommands(PARSER)


def _summaries(parser: argparse.ArgumentParser) -> dict[str, str]:
    """Each command's one-line help in `ferembed --help`."""
    (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return {a.dest: a.help for a in action._choices_actions}


SUMMARIES = _summaries(PARSER)


def _undocumented(parser: argparse.ArgumentParser) -> list[str]:
    return [
        "/".join(a.option_strings) or a.dest
        for a in parser._actions
        if a.help is None or not str(a.help).strip() or a.help == argparse.SUPPRESS
    ]


def test_every_command_is_walked():
    # The commands this file checks; a new command is checked without being listed here.
    assert {"train", "embed", "import", "evaluate", "export", "compare", "zoo"} <= set(COMMANDS)


def test_global_options_have_help():
    assert _undocumented(PARSER) == []


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_option_has_help(name):
    missing = _undocumented(COMMANDS[name])
    assert not missing, f"`ferembed {name}`: options without help text: {missing}"


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_choices_are_listed_in_help(name):
    sp = COMMANDS[name]
    text = " ".join(sp.format_help().split())  # unwrap the columns
    for action in sp._actions:
        if action.choices is None or isinstance(action, argparse._SubParsersAction):
            continue
        absent = [str(c) for c in action.choices if str(c) not in text]
        flag = "/".join(action.option_strings) or action.dest
        assert not absent, f"`ferembed {name} --help` does not list {absent} for {flag}"


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_help_describes_and_gives_an_example(name):
    sp = COMMANDS[name]
    assert sp.description and sp.description != SUMMARIES[name], (
        f"`ferembed {name} --help` repeats its one-line summary instead of describing what it "
        "reads and writes"
    )
    assert sp.epilog and f"ferembed {name}" in sp.epilog, f"`ferembed {name}`: no example"


def test_help_prints_and_exits_zero(capsys):
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(["evaluate", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "metrics.json" in out and "examples:" in out
    assert "retrieval, classification" in " ".join(out.split())  # the metric groups


def test_registry_choices_are_the_librarys():
    from ferembed.data import list_datasets
    from ferembed.export import FORMATS
    from ferembed.index import KINDS
    from ferembed.metrics.evaluate import GROUPS

    def choices(cmd, flag):
        (action,) = [a for a in COMMANDS[cmd]._actions if flag in a.option_strings]
        return list(action.choices)

    assert choices("datasets", "--dataset") == [d.name for d in list_datasets()]
    assert choices("export", "--format") == list(FORMATS)
    assert choices("index", "--kind") == list(KINDS)
    assert choices("evaluate", "--include") == list(GROUPS)


def test_parsing_imports_no_registry():
    # `ferembed --help`, `--version` and a parse error stay instant: the registries behind the
    # choices (torch, scikit-learn, FAISS) are imported only when a command or its help needs them.
    repo = Path(__file__).resolve().parents[1]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(repo), os.environ.get("PYTHONPATH", "")]),
    }
    code = (
        "import sys\n"
        "from ferembed.cli import build_parser, main\n"
        "build_parser().format_help()\n"
        "assert main(['compare', 'a', 'b', '-k', '0']) == 2\n"
        "assert sys.modules['ferembed'].__file__.startswith(sys.argv[1])\n"
        "heavy = ('torch', 'sklearn', 'faiss', 'ferembed.metrics')\n"
        "print([m for m in heavy if m in sys.modules])\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(repo)], capture_output=True, text=True, env=env
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]", proc.stdout
