"""`dockyard rename CONTAINER NEW_NAME`."""

from __future__ import annotations

import argparse

from dockyard.cli import Context

HELP = "Rename a container"


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("container", metavar="CONTAINER")
    p.add_argument("new_name", metavar="NEW_NAME")


def run(args: argparse.Namespace, ctx: Context) -> int:
    ctx.engine.containers.rename(args.container, args.new_name)
    return 0
