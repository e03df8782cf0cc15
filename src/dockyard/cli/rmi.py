"""`dockyard rmi`: untag and remove images."""

from __future__ import annotations

import argparse

from dockyard.cli import Context

HELP = "Remove one or more images"


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument("-f", "--force", action="store_true", help="Force removal of the image")
    p.add_argument("--no-prune", action="store_true", help="Do not delete untagged parents")


def run(args: argparse.Namespace, ctx: Context) -> int:
    from dockyard.errors import DockyardError

    rc = 0
    for name in args.images:
        try:
            for ev in ctx.engine.images.remove(name, force=args.force):
                ctx.out.write(f"{ev.kind}: {ev.value}\n")
        except DockyardError as e:
            ctx.err.write(f"Error response from daemon: {e}\n")
            rc = e.exit_code
    return rc
