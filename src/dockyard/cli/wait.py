"""`dockyard wait`: block until containers stop; print their exit codes."""

from __future__ import annotations

import argparse

from dockyard.cli import Context

HELP = "Block until one or more containers stop, then print their exit codes"


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("containers", nargs="+", metavar="CONTAINER")


def run(args: argparse.Namespace, ctx: Context) -> int:
    from dockyard.errors import DockyardError

    rc = 0
    for name in args.containers:
        try:
            ctx.out.write(f"{ctx.engine.containers.wait(name)}\n")
            ctx.out.flush()
        except DockyardError as e:
            ctx.err.write(f"Error response from daemon: {e}\n")
            rc = 1
    return rc
