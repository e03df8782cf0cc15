"""`dockyard network inspect`: Docker-shaped JSON of networks, or a Go template per network."""

from __future__ import annotations

import argparse
from typing import Any

from dockyard.cli import Context

HELP = "Display detailed information on one or more networks"


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("networks", nargs="+", metavar="NETWORK")
    p.add_argument("-f", "--format", help="Format output using a custom template")
    p.add_argument("-v", "--verbose", action="store_true", help="Verbose output for diagnostics")


def run(args: argparse.Namespace, ctx: Context) -> int:
    from dockyard.cli._output import print_json, print_template
    from dockyard.cli.network_common import inspect_one
    from dockyard.errors import DockyardError

    found: list[dict[str, Any]] = []
    errors: list[str] = []
    for name in args.networks:
        try:
            found.append(inspect_one(ctx, name))
        except DockyardError as e:
            errors.append(str(e))
    if args.format:
        print_template(ctx.out, args.format, found)
    else:
        print_json(ctx.out, found)
    for msg in errors:
        ctx.err.write(f"Error response from daemon: {msg}\n")
    return 1 if errors else 0
