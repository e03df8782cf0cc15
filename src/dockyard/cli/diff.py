"""`dockyard diff`: the changes in a container's filesystem, as `A`, `C` or `D` lines."""

from __future__ import annotations

import argparse

from dockyard.cli import Context

HELP = "Inspect changes to files or directories on a container's filesystem"


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("container", metavar="CONTAINER")


def run(args: argparse.Namespace, ctx: Context) -> int:
    from dockyard.container.fsops import changes

    for kind, path in changes(ctx.engine.containers, args.container):
        ctx.out.write(f"{kind} {path}\n")
    return 0
