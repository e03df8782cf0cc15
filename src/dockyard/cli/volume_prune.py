"""`dockyard volume prune`: remove unused anonymous (with -a, all unused) local volumes."""

from __future__ import annotations

import argparse

from dockyard.cli import Context
from dockyard.cli._output import confirm, parse_filters

HELP = "Remove unused local volumes"
_WARN = (
    "WARNING! This will remove {what} local volumes not used by at least one container.\n"
    "Are you sure you want to continue?"
)


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("-a", "--all", action="store_true", help="Remove all unused volumes")
    p.add_argument("-f", "--force", action="store_true", help="Do not prompt for confirmation")
    p.add_argument("--filter", action="append", help="Provide filter values")


def run(args: argparse.Namespace, ctx: Context) -> int:
    from dockyard.cli.volume_common import volumes
    from dockyard.units import human_size

    filters = parse_filters(args.filter)
    if args.all and "all" in filters:
        ctx.err.write("conflicting options: cannot specify both --all and --filter all=1\n")
        return 1
    if not args.force:
        what = "all" if args.all else "anonymous"
        if not confirm(_WARN.format(what=what), ctx.out):
            return 0
    deleted, freed = volumes(ctx).prune(all_volumes=args.all, filters=filters)
    if deleted:
        ctx.out.write("Deleted Volumes:\n" + "".join(n + "\n" for n in deleted) + "\n")
    ctx.out.write(f"Total reclaimed space: {human_size(freed)}\n")
    return 0
