"""`dockyard image prune`: remove dangling (or, with -a, unused) images and free their space."""

from __future__ import annotations

import argparse

from dockyard.cli import Context
from dockyard.cli._output import confirm

HELP = "Remove unused images"


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("-a", "--all", action="store_true", help="Remove all unused images")
    p.add_argument("-f", "--force", action="store_true", help="Do not prompt for confirmation")
    p.add_argument("--filter", action="append", help="Provide filter values")


def run(args: argparse.Namespace, ctx: Context) -> int:
    from dockyard.units import human_size

    if not args.force:
        what = (
            "all images without at least one container associated to them"
            if args.all
            else "all dangling images"
        )
        if not confirm(
            f"WARNING! This will remove {what}.\nAre you sure you want to continue?", ctx.out
        ):
            return 0
    events, freed = ctx.engine.images.prune(all_images=args.all)
    if events:
        ctx.out.write("Deleted Images:\n")
        for ev in events:
            ctx.out.write(f"{ev.kind}: {ev.value}\n")
        ctx.out.write("\n")
    ctx.out.write(f"Total reclaimed space: {human_size(freed)}\n")
    return 0
