"""`dockyard kill`: send a signal (SIGKILL by default) to containers."""

from __future__ import annotations

import argparse

from dockyard.cli import Context
from dockyard.cli._each import each

HELP = "Kill one or more running containers"


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("containers", nargs="+", metavar="CONTAINER")
    p.add_argument("-s", "--signal", default="SIGKILL")


def run(args: argparse.Namespace, ctx: Context) -> int:
    svc = ctx.engine.containers
    return each(ctx, args.containers, lambda n: svc.kill(n, args.signal))
