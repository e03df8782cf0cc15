"""`dockyard cp`: copy files between a container and the host (or a tar on stdin/stdout)."""

from __future__ import annotations

import argparse
import os
import sys

from dockyard.cli import Context

HELP = "Copy files/folders between a container and the local filesystem"


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("src", metavar="SRC_PATH|CONTAINER:SRC_PATH|-")
    p.add_argument("dest", metavar="DEST_PATH|CONTAINER:DEST_PATH|-")
    p.add_argument("-a", "--archive", action="store_true", help="Archive mode (copy uid/gid)")
    p.add_argument(
        "-L", "--follow-link", action="store_true", help="Always follow symbol link in SRC_PATH"
    )
    p.add_argument("-q", "--quiet", action="store_true", help="Suppress progress output")


def split_arg(arg: str) -> tuple[str | None, str]:
    """Docker's rule: `NAME:PATH` names a container unless the argument is an absolute path or
    starts with `.` (so `./a:b` is a local file)."""
    if arg.startswith("/") or arg.startswith("."):
        return None, arg
    name, sep, path = arg.partition(":")
    if not sep or not name:
        return None, arg
    return name, path


def run(args: argparse.Namespace, ctx: Context) -> int:
    from dockyard.container.fsops import CopyOptions, copy_from_container, copy_to_container
    from dockyard.errors import InvalidArgument

    src_c, src = split_arg(args.src)
    dst_c, dst = split_arg(args.dest)
    if src_c and dst_c:
        raise InvalidArgument("copying between containers is not supported")
    if not src_c and not dst_c:
        raise InvalidArgument("must specify at least one container source")
    opts = CopyOptions(archive=args.archive, follow_link=args.follow_link)
    svc = ctx.engine.containers
    if src_c:
        if dst == "-":
            if os.isatty(sys.stdout.fileno()):
                raise InvalidArgument("cowardly refusing to write a tar archive to a terminal")
            copy_from_container(svc, src_c, src, sys.stdout.buffer, opts)
            sys.stdout.buffer.flush()
        else:
            copy_from_container(svc, src_c, src, dst, opts)
        return 0
    assert dst_c is not None
    copy_to_container(svc, dst_c, sys.stdin.buffer if src == "-" else src, dst, opts)
    return 0
