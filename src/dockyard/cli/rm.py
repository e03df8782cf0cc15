"""`dockyard rm`: remove containers (-f kills running ones first)."""

from __future__ import annotations

import argparse

from dockyard.cli import Context
from dockyard.cli._each import each

HELP = "Remove one or more containers"


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("containers", nargs="+", metavar="CONTAINER")
    p.add_argument("-f", "--force", action="store_true")
    p.add_argument("-v", "--volumes", action="store_true")
    p.add_argument("-l", "--link", action="store_true")


def run(args: argparse.Namespace, ctx: Context) -> int:
    svc = ctx.engine.containers
    return each(
        ctx, args.containers, lambda n: svc.remove(n, force=args.force, volumes=args.volumes)
    )
