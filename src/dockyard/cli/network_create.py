"""`dockyard network create`: a user-defined bridge network (prints its ID).

`--subnet`/`--gateway` may each be given once per address family; an IPv6 one needs `--ipv6`,
which without an IPv6 `--subnet` gives the network a ULA /64."""

from __future__ import annotations

import argparse

from dockyard.cli import Context

HELP = "Create a network"


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", metavar="NETWORK")
    p.add_argument("-d", "--driver", default="bridge", help="Driver to manage the Network")
    p.add_argument("--subnet", action="append", default=[], help="Subnet in CIDR format")
    p.add_argument("--gateway", action="append", default=[], help="IPv4 or IPv6 Gateway")
    p.add_argument("--internal", action="store_true", help="Restrict external access")
    p.add_argument("--label", action="append", default=[], help="Set metadata on a network")
    p.add_argument("-o", "--opt", action="append", default=[], help="Driver specific options")
    p.add_argument("--attachable", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--ipv6", action="store_true", help="Enable IPv6 networking")


def run(args: argparse.Namespace, ctx: Context) -> int:
    from dockyard.errors import InvalidArgument
    from dockyard.network.subnets import split_by_family

    if args.driver != "bridge":
        raise InvalidArgument(f"plugin {args.driver} not found")
    subnet, subnet6 = split_by_family(args.subnet, "subnet")
    gateway, gateway6 = split_by_family(args.gateway, "gateway")
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
        subnet=subnet,
        gateway=gateway,
        internal=args.internal,
        labels=labels,
        mtu=mtu,
        ipv6=args.ipv6,
        subnet6=subnet6,
        gateway6=gateway6,
    )
    ctx.out.write(n.id + "\n")
    return 0
