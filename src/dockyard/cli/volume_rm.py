"""`dockyard volume rm`: remove volumes, printing each name removed."""

from __future__ import annotations

import argparse

from dockyard.cli import Context

HELP = "Remove one or more volumes"


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("volumes", nargs="+", metavar="VOLUME")
    p.add_argument(
        "-f", "--force", action="store_true", help="Force the removal of one or more volumes"
    )


def run(args: argparse.Namespace, ctx: Context) -> int:
    from dockyard.cli.volume_common import volumes
    from dockyard.errors import DockyardError

    svc = volumes(ctx)
    rc = 0
    for name in args.volumes:
        try:
            svc.remove(name, force=args.force)
        except DockyardError as e:
            ctx.err.write(f"Error response from daemon: {e}\n")
            rc = 1
            continue
        ctx.out.write(name + "\n")
    return rc
