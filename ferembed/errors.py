"""User-facing errors.

Anything a user can cause (a bad path, a corrupt image, a NaN in an imported array) raises
:class:`FerembedError` with a one-line message naming the file, row or parameter. The CLI prints
that line and exits non-zero; it never shows a traceback for these.
"""

from __future__ import annotations


class FerembedError(Exception):
    """An error caused by user input; its message is shown as one line, without a traceback."""


class UsageError(FerembedError):
    """A command line the parser rejects: an unknown option, a missing argument, a value out of
    range or not among the choices."""


class DataError(FerembedError):
    """A dataset, image, manifest or label problem."""


class RunFormatError(FerembedError):
    """A run directory that is missing, incomplete or malformed."""


class CheckpointError(FerembedError):
    """A checkpoint that is missing, malformed or incompatible."""


class ConfigError(FerembedError, ValueError):
    """A bad training config file, key or value (a ValueError the CLI shows as one line)."""
