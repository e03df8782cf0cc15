"""`dockyard network create`: a user-defined bridge network (prints its ID)."""

from __future__ import annotations

import argparse

from dockyard.cli import Context

HELP = "Create a network"


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", metavar="NETWORK")
    p.add_argument("-d", "--driver", default="bridge", help="Driver to manage the Network")
    p.add_argument("--subnet", action="append", default=[], help="Subnet in CIDR format")
    p.add_argument("--gateway", action="append", default=[], help="IPv4 Gateway")
    p.add_argument("--internal", action="store_true", help="Restrict external access")
    p.add_argument("--label", action="append", default=[], help="Set metadata on a network")
    p.add_argument("-o", "--opt", action="append", default=[], help="Driver specific options")
    p.add_argument("--attachable", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--ipv6", action="store_true", help="Enable IPv6 networking")


def run(args: argparse.Namespace, ctx: Context) -> int:
    from dockyard.errors import InvalidArgument

    if args.driver != "bridge":
        raise InvalidArgument(f"plugin {args.driver} not found")
    if args.ipv6:
        raise InvalidArgument("IPv6 networks are not supported")
    if len(args.subnet) > 1 or len(args.gateway) > 1:
        raise InvalidArgument("only one --subnet and one --gateway are supported")
    if args.gateway and not args.subnet:
        raise InvalidArgument("every ip-range or gateway must have a corresponding subnet")
    labels: dict[str, str] = {}
    for lab in args.label:
        k, _, v = lab.partition("=")
        labels[k] = v
    mtu: int | None = None
    for o in args.opt:
        k, _, v = o.partition("=")
        if k != "com.docker.network.driver.mtu":
            raise InvalidArgument(f"unsupported network option {k}")
        try:
            mtu = int(v)
        except ValueError:
            raise InvalidArgument(f"invalid MTU {v!r}") from None
    n = ctx.engine.networks.create_network(
        args.name,
        subnet=args.subnet[0] if args.subnet else None,
        gateway=args.gateway[0] if args.gateway else None,
        internal=args.internal,
        labels=labels,
        mtu=mtu,
    )
    ctx.out.write(n.id + "\n")
    return 0
