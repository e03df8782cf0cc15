"""`dockyard import`: a root filesystem tarball (file or `-` for stdin) becomes an image."""

from __future__ import annotations

import argparse
import sys

from dockyard.cli import Context

HELP = "Import the contents from a tarball to create a filesystem image"


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", metavar="file|-")
    p.add_argument("repository", nargs="?", metavar="REPOSITORY[:TAG]")
    p.add_argument(
        "-c", "--change", action="append", default=[], help="Apply Dockerfile instruction"
    )
    p.add_argument("-m", "--message", default="", help="Set commit message for imported image")
    p.add_argument("--platform", help="Set platform if server is multi-platform capable")


def run(args: argparse.Namespace, ctx: Context) -> int:
    from dockyard.errors import InvalidArgument
    from dockyard.image.importer import import_rootfs
    from dockyard.oci.types import Platform
    from dockyard.reference import repo_tag_reference

    ref = repo_tag_reference(args.repository) if args.repository else None
    plat = Platform.parse(args.platform) if args.platform else None
    if args.source == "-":
        stream = sys.stdin.buffer
        img = import_rootfs(
            ctx.engine.images, stream, ref=ref, changes=args.change, message=args.message,
            source="-", platform=plat,
        )  # fmt: skip
    else:
        if "://" in args.source:
            raise InvalidArgument("importing from a URL is not supported: download it first")
        try:
            f = open(args.source, "rb")  # noqa: SIM115
        except OSError as e:
            raise InvalidArgument(f"open {args.source}: {(e.strerror or str(e)).lower()}") from None
        with f:
            img = import_rootfs(
                ctx.engine.images, f, ref=ref, changes=args.change, message=args.message,
                source="-", platform=plat,
            )  # fmt: skip
    ctx.out.write(f"{img.id}\n")
    return 0
