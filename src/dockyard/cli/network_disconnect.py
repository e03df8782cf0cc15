"""`dockyard network disconnect`: disconnect a container from a network."""

from __future__ import annotations

import argparse

from dockyard.cli import Context

HELP = "Disconnect a container from a network"


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("network", metavar="NETWORK")
    p.add_argument("container", metavar="CONTAINER")
    p.add_argument("-f", "--force", action="store_true", help="Force the container to disconnect")


def run(args: argparse.Namespace, ctx: Context) -> int:
    from dockyard.container.networking import disconnect

    disconnect(ctx.engine, args.container, args.network)
    return 0
