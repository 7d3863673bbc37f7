"""Argparse machinery shared by every ``ferembed`` command.

- :class:`Parser` turns every usage error into one line (``ferembed: error: ...``, exit 2) instead
  of argparse's usage block.
- :func:`int_at_least`, :func:`float_above` and :func:`port_number` are ``type=`` functions that
  reject out-of-range numbers with a message naming the valid range.
- :class:`LazyChoices` reads ``choices`` from a library registry on first use, so that
  ``ferembed --help`` and commands that never look at a registry do not import it (importing
  ``ferembed.metrics`` alone takes about 1.5 s).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from collections.abc import Callable, Iterable, Sequence

from ferembed._format import number
from ferembed.errors import FerembedError, UsageError


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors raise :class:`UsageError` (one line, pointing to --help)."""

    def error(self, message: str):
        raise UsageError(f"{message} (see `{self.prog} --help`)")


def add_command(
    sub: argparse._SubParsersAction,
    name: str,
    fn: Callable,
    help_: str,
    *,
    description: str | None = None,
    epilog: str | None = None,
) -> argparse.ArgumentParser:
    """Add subcommand ``name`` running ``fn(args)``: ``help_`` is its line in ``ferembed --help``,
    ``description`` (default ``help_``) and ``epilog`` (examples) are printed verbatim by
    ``ferembed NAME --help``."""
    sp = sub.add_parser(
        name,
        help=help_,
        description=description or help_,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sp.set_defaults(fn=fn)
    return sp


class LazyChoices(Sequence):
    """Choices loaded from the library on first use.

    Args:
        load: returns the valid names.
        csv: a value is a comma-separated list whose every item must be a valid name.
    """

    def __init__(self, load: Callable[[], Iterable[str]], *, csv: bool = False):
        self._load = load
        self._csv = csv
        self._names: tuple[str, ...] | None = None

    def _get(self) -> tuple[str, ...]:
        if self._names is None:
            self._names = tuple(self._load())
        return self._names

    def __getitem__(self, i):
        return self._get()[i]

    def __len__(self) -> int:
        return len(self._get())

    def __contains__(self, value) -> bool:
        if self._csv and isinstance(value, str):
            return all(item in self._get() for item in value.split(","))
        return value in self._get()


def int_at_least(low: int) -> Callable[[str], int]:
    """A ``type=`` function: an integer ``>= low``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be >= {low}, got {value}")
        return value

    return parse


def float_above(low: float) -> Callable[[str], float]:
    """A ``type=`` function: a finite number ``> low``."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not value > low or value == float("inf"):
            raise argparse.ArgumentTypeError(f"must be a finite number > {low:g}, got {text}")
        return value

    return parse


def port_number(text: str) -> int:
    """A ``type=`` function: a TCP port, 1..65535."""
    value = int_at_least(1)(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"must be a port in 1..65535, got {value}")
    return value


def kv_pairs(items: list[str] | None, flag: str) -> dict:
    """``["a=1", "b=x"]`` -> ``{"a": 1, "b": "x"}`` (values parsed as JSON when they parse)."""
    out = {}
    for item in items or []:
        key, sep, val = item.partition("=")
        if not sep or not key:
            raise FerembedError(f"{flag} expects KEY=VALUE, got {item!r}")
        try:
            out[key.strip()] = json.loads(val)
        except json.JSONDecodeError:
            out[key.strip()] = val
    return out


def command_line() -> str:
    """The command as typed (recorded in run.json and model cards)."""
    return "ferembed " + " ".join(shlex.quote(a) for a in sys.argv[1:])


def percent(v) -> str:
    """A fraction as ``"12.34%"``; ``"n/a"`` when missing."""
    return number(v, ".2f", percent=True, percent_sign=True)


# Registries the choices come from, imported on first use.
def dataset_names() -> list[str]:
    from ferembed.data import list_datasets

    return [info.name for info in list_datasets()]


def distance_names() -> tuple[str, ...]:
    from ferembed.metrics._validation import DISTANCES

    return DISTANCES


DATASET_CHOICES = LazyChoices(dataset_names)
DISTANCE_CHOICES = LazyChoices(distance_names)
DEVICE_HELP = "auto (a GPU when there is one), cpu, cuda, cuda:N or mps"
