"""`dockyard push`: upload an image to a registry, with Docker's output and exit codes."""

from __future__ import annotations

import argparse

from dockyard.cli import Context

HELP = "Upload an image to a registry"


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", metavar="NAME[:TAG]")
    p.add_argument("-a", "--all-tags", action="store_true", help="Push all tags of an image")
    p.add_argument("-q", "--quiet", action="store_true", help="Suppress verbose output")
    p.add_argument("--disable-content-trust", action="store_true", help="Skip image signing")


def run(args: argparse.Namespace, ctx: Context) -> int:
    from dockyard.cli._progress import ProgressPrinter
    from dockyard.errors import InvalidArgument, NotFound
    from dockyard.image.distribution_push import push_image
    from dockyard.reference import parse_reference

    ref = parse_reference(args.name, default_tag=False)
    if ref.digest:
        raise InvalidArgument(f"cannot push a digest reference: {args.name}")
    printer = None if args.quiet else ProgressPrinter(ctx.out)
    if args.all_tags:
        if ref.tag:
            raise InvalidArgument("tag can't be used with --all-tags/-a")
        names = _local_tags(ctx, ref.name)
        if not names:
            raise NotFound(f"An image does not exist locally with the tag: {ref.familiar_name}")
        refs = [parse_reference(n) for n in names]
    else:
        if ref.is_name_only and printer is not None:
            printer.line("Using default tag: latest")
        refs = [ref.with_default_tag()]
    if printer is not None:
        printer.line(f"The push refers to repository [{ref.name}]")
    for r in refs:
        digest = push_image(ctx.engine, r, progress=printer)
        if printer is not None:
            size = ctx.engine.content.size(digest)
            printer.line(f"{r.tag}: digest: {digest} size: {size}")
    return 0


def _local_tags(ctx: Context, name: str) -> list[str]:
    tags = ctx.engine.meta.all_tags()
    return sorted(t for ts in tags.values() for t in ts if t.rpartition(":")[0] == name)
