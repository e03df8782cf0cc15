"""`dockyard stop`: SIGTERM (or the stop signal), then SIGKILL after the timeout."""

from __future__ import annotations

import argparse

from dockyard.cli import Context
from dockyard.cli._each import each

HELP = "Stop one or more running containers"


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("containers", nargs="+", metavar="CONTAINER")
    p.add_argument("-t", "--time", "--timeout", type=int, default=None, dest="time")
    p.add_argument("-s", "--signal", default=None)


def run(args: argparse.Namespace, ctx: Context) -> int:
    svc = ctx.engine.containers
    return each(ctx, args.containers, lambda n: svc.stop(n, args.time, args.signal))
