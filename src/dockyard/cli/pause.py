"""`dockyard pause` / `unpause`: freeze and thaw all processes of containers."""

from __future__ import annotations

import argparse

from dockyard.cli import Context
from dockyard.cli._each import each

HELP = "Pause all processes within one or more containers"


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("containers", nargs="+", metavar="CONTAINER")


def run(args: argparse.Namespace, ctx: Context) -> int:
    svc = ctx.engine.containers
    fn = svc.unpause if ctx.command.endswith("unpause") else svc.pause
    return each(ctx, args.containers, fn)
