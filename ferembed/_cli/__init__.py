"""The pieces of the ``ferembed`` command line; the entry point is :func:`ferembed.cli.main`.

``args`` holds the argparse machinery every command shares (one-line usage errors, range-checked
numbers, choices read lazily from the library's registries); ``data``, ``runs``, ``studies`` and
``app`` each define a few commands: a ``cmd_*`` function per command and one function that adds
their subparsers. Nothing here is public API.
"""
