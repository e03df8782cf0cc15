"""`dockyard network prune`: remove user-defined networks no container is connected to."""

from __future__ import annotations

import argparse

from dockyard.cli import Context

HELP = "Remove all unused networks"
_WARN = (
    "WARNING! This will remove all custom networks not used by at least one container.\n"
    "Are you sure you want to continue?"
)


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("-f", "--force", action="store_true", help="Do not prompt for confirmation")
    p.add_argument("--filter", action="append", help="Provide filter values")


def run(args: argparse.Namespace, ctx: Context) -> int:
    from dockyard.cli._output import confirm, parse_filters
    from dockyard.errors import InvalidArgument

    filters = parse_filters(args.filter)
    for k in filters:
        if k != "label":
            raise InvalidArgument(f"invalid filter '{k}'")
    if not args.force and not confirm(_WARN, ctx.out):
        return 0
    ctx.engine.repair_networks()
    mgr = ctx.engine.networks
    keep = set()
    for n in mgr.list():
        for want in filters.get("label", []):
            k, sep, v = want.partition("=")
            if k not in n.labels or (sep and n.labels[k] != v):
                keep.add(n.id)
    removed = [name for name in _prune(ctx, keep)]
    if removed:
        ctx.out.write("Deleted Networks:\n" + "".join(n + "\n" for n in removed))
    return 0


def _prune(ctx: Context, keep: set[str]) -> list[str]:
    import contextlib

    from dockyard.errors import Conflict, NotFound

    mgr = ctx.engine.networks
    if not keep:
        return mgr.prune()
    out: list[str] = []
    for n in mgr.list():
        if n.builtin or n.id in keep:
            continue
        with contextlib.suppress(Conflict, NotFound):
            mgr.remove_network(n.id)
            out.append(n.name)
    return out
