"""`dockyard network rm`: remove networks (prints each name removed)."""

from __future__ import annotations

import argparse

from dockyard.cli import Context

HELP = "Remove one or more networks"


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("networks", nargs="+", metavar="NETWORK")
    p.add_argument("-f", "--force", action="store_true", help="Do not error if missing")


def run(args: argparse.Namespace, ctx: Context) -> int:
    from dockyard.cli.network_common import PSEUDO
    from dockyard.errors import Conflict, DockyardError, NotFound

    ctx.engine.repair_networks()  # endpoints of containers that died do not count
    rc = 0
    for name in args.networks:
        try:
            if name in PSEUDO:
                raise Conflict(f"{name} is a pre-defined network and cannot be removed")
            ctx.engine.networks.remove_network(name)
            ctx.out.write(name + "\n")
        except NotFound as e:
            if not args.force:
                ctx.err.write(f"Error response from daemon: {e}\n")
                rc = 1
        except DockyardError as e:
            ctx.err.write(f"Error response from daemon: {e}\n")
            rc = 1
    return rc
