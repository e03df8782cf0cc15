"""`dockyard export`: a container's filesystem as a tar archive (to a file or stdout)."""

from __future__ import annotations

import argparse
import os
import sys

from dockyard.cli import Context

HELP = "Export a container's filesystem as a tar archive"


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("container", metavar="CONTAINER")
    p.add_argument("-o", "--output", help="Write to a file, instead of STDOUT")


def run(args: argparse.Namespace, ctx: Context) -> int:
    from dockyard.container.fsops import export
    from dockyard.errors import InvalidArgument

    svc = ctx.engine.containers
    if not args.output:
        if os.isatty(sys.stdout.fileno()):
            raise InvalidArgument(
                "cowardly refusing to save to a terminal. Use the -o flag or redirect"
            )
        export(svc, args.container, sys.stdout.buffer)
        sys.stdout.buffer.flush()
        return 0
    svc.get(args.container)  # fail before creating the file
    tmp = f"{args.output}.{os.getpid()}.tmp"
    try:
        with open(tmp, "wb") as f:
            export(svc, args.container, f)
        os.replace(tmp, args.output)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return 0
