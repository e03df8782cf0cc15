"""`dockyard network connect`: connect a container to a network (now if it runs, else at its
next start)."""

from __future__ import annotations

import argparse

from dockyard.cli import Context

HELP = "Connect a container to a network"


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("network", metavar="NETWORK")
    p.add_argument("container", metavar="CONTAINER")
    p.add_argument("--alias", action="append", default=[], help="Add network-scoped alias")
    p.add_argument("--ip", help="IPv4 address (e.g., 172.30.100.104)")
    p.add_argument("--ip6", help="IPv6 address (e.g., 2001:db8::33)")


def run(args: argparse.Namespace, ctx: Context) -> int:
    from dockyard.container.networking import connect

    connect(ctx.engine, args.container, args.network, aliases=args.alias, ip=args.ip, ip6=args.ip6)
    return 0
