"""ferembed: metric-learning workbench for facial expression recognition."""

from ferembed._version import __version__

__all__ = ["__version__", "log_run"]


def __getattr__(name: str):
    # log_run pulls in pandas/pyarrow: import it on first use so `import ferembed` stays light.
    if name == "log_run":
        from ferembed.runs.log import log_run

        return log_run
    raise AttributeError(f"module 'ferembed' has no attribute {name!r}")
