"""``--ray``, ``--ray-address`` and ``--ray-workers`` for ``embed`` and ``evaluate``.

Each command gets the options with one call (:func:`add_ray_embed_options`,
:func:`add_ray_evaluate_options`), which also wraps the command: with ``--ray`` it runs inside a
Ray context (``ferembed.runs.distributed.ray_embedding`` / ``ferembed._ray.ray_search``), so the
command itself, and the run it writes, are the ones without Ray. Ray starts at the first batch or
search, after the command has checked its input.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable

from ferembed._cli.args import int_at_least
from ferembed.errors import UsageError

_RAY_HELP = (
    "run on Ray (pip install -e .[ray]): a local Ray on this machine, or the cluster of "
    "--ray-address (docs/scale.md)"
)
_ADDRESS_HELP = (
    "a running Ray cluster to join (HOST:6379 from `ray start --head`, ray://HOST:10001, or "
    "auto); the data, checkpoint and run must be on a filesystem every node sees"
)


def _add(sp, workers_help: str, wrap: Callable) -> None:
    sp.add_argument("--ray", action="store_true", help=_RAY_HELP)
    sp.add_argument("--ray-address", metavar="ADDR", help=_ADDRESS_HELP)
    sp.add_argument("--ray-workers", type=int_at_least(1), metavar="N", help=workers_help)
    sp.set_defaults(fn=functools.partial(wrap, sp.get_default("fn")))


def _check(args) -> bool:
    """Whether ``--ray`` is on; its sub-options alone are a usage error."""
    if not args.ray:
        given = [f for f, v in (("--ray-address", args.ray_address), ("--ray-workers",
                 args.ray_workers)) if v is not None]  # fmt: skip
        if given:
            raise UsageError(f"{', '.join(given)}: only with --ray")
    return bool(args.ray)


def _embed(command: Callable, args) -> int:
    if not _check(args):
        return command(args)
    from ferembed._ray import import_ray
    from ferembed.runs.distributed import ModelRecipe, ray_embedding

    import_ray()  # the missing extra is named before anything is read
    # Absolute paths: a worker on another node does not share this process's directory.
    if args.checkpoint is not None:
        recipe = ModelRecipe(checkpoint=os.path.abspath(args.checkpoint))
    else:
        from ferembed.models.external import Preprocess

        pre = Preprocess.from_options(args.input_size, args.channels, args.mean, args.std)
        recipe = ModelRecipe(
            spec=_absolute_spec(args.model),
            options=dict(
                weights=args.weights and os.path.abspath(args.weights),
                embedding_layer=args.embedding_layer,
                head_layer=args.head_layer,
                preprocess=pre,
            ),
        )
    with ray_embedding(
        recipe, args.out, address=args.ray_address, workers=args.ray_workers, device=args.device
    ):
        return command(args)


def _absolute_spec(spec: str) -> str:
    """``spec`` with its file made absolute (``python:pkg.module:FUNC`` has none)."""
    kind, _, target = spec.partition(":")
    if kind == "python":
        where, sep, func = target.rpartition(":")
        if where.endswith(".py"):
            return f"python:{os.path.abspath(where)}{sep}{func}"
        return spec
    return f"{kind}:{os.path.abspath(target)}" if target else spec


def _evaluate(command: Callable, args) -> int:
    if not _check(args):
        return command(args)
    from ferembed._ray import import_ray, ray_search

    import_ray()
    with ray_search(args.ray_address, args.ray_workers):
        return command(args)


def add_ray_embed_options(sp) -> None:
    """``--ray``/``--ray-address``/``--ray-workers`` on ``embed``: one actor per GPU, else one
    per CPU worker; a rerun after an interruption embeds only the batches not saved yet."""
    _add(
        sp,
        "actors that embed (default: one per GPU of the cluster, else one per CPU; without "
        "--ray-address also the CPUs of the local Ray)",
        _embed,
    )


def add_ray_evaluate_options(sp) -> None:
    """``--ray``/``--ray-address``/``--ray-workers`` on ``evaluate``: the exact kNN search in
    query blocks on Ray workers."""
    _add(
        sp,
        "workers that search query blocks (default: the cluster's CPUs; without --ray-address "
        "also the CPUs of the local Ray)",
        _evaluate,
    )
