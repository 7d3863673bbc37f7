"""ferembed: metric-learning workbench for facial expression recognition."""

from ferembed._version import __version__

__all__ = ["__version__"]
