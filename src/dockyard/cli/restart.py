"""`dockyard restart`: stop (with the timeout) then start."""

from __future__ import annotations

import argparse

from dockyard.cli import Context
from dockyard.cli._each import each

HELP = "Restart one or more containers"


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("containers", nargs="+", metavar="CONTAINER")
    p.add_argument("-t", "--time", "--timeout", type=int, default=None, dest="time")
    p.add_argument("-s", "--signal", default=None)


def run(args: argparse.Namespace, ctx: Context) -> int:
    svc = ctx.engine.containers

    def restart(name: str) -> None:
        svc.stop(name, args.time, args.signal)
        svc.start(name)

    return each(ctx, args.containers, restart)
