"""`dockyard volume inspect`: Docker-shaped JSON of volumes, or a Go template per volume."""

from __future__ import annotations

import argparse
from typing import Any

from dockyard.cli import Context
from dockyard.cli._output import print_json, print_template

HELP = "Display detailed information on one or more volumes"


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("volumes", nargs="+", metavar="VOLUME")
    p.add_argument("-f", "--format", help="Format output using a custom template")


def run(args: argparse.Namespace, ctx: Context) -> int:
    from dockyard.cli.volume_common import volumes
    from dockyard.errors import NotFound

    svc = volumes(ctx)
    found: list[dict[str, Any]] = []
    errors: list[str] = []
    for name in args.volumes:
        try:
            found.append(svc.inspect(name))
        except NotFound as e:
            errors.append(str(e))
    if args.format:
        print_template(ctx.out, args.format, found)
    else:
        print_json(ctx.out, found)
    for msg in errors:
        ctx.err.write(f"Error response from daemon: {msg}\n")
    return 1 if errors else 0
