"""`dockyard container prune`: remove all stopped containers."""

from __future__ import annotations

import argparse

from dockyard.cli import Context
from dockyard.cli._output import confirm, parse_filters

HELP = "Remove all stopped containers"


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("-f", "--force", action="store_true", help="Do not prompt for confirmation")
    p.add_argument("--filter", action="append", help='Provide filter values (e.g. "until=<ts>")')


def run(args: argparse.Namespace, ctx: Context) -> int:
    from dockyard.container.fsops import prune
    from dockyard.units import human_size

    filters = parse_filters(args.filter)
    if not args.force and not confirm(
        "WARNING! This will remove all stopped containers.\nAre you sure you want to continue?",
        ctx.out,
    ):
        return 0
    removed, freed = prune(ctx.engine.containers, filters)
    if removed:
        ctx.out.write("Deleted Containers:\n" + "".join(cid + "\n" for cid in removed) + "\n")
    ctx.out.write(f"Total reclaimed space: {human_size(freed)}\n")
    return 0
