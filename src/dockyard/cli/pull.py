"""`dockyard pull`: download an image from a registry, with Docker's output and exit codes."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from dockyard.cli import Context

if TYPE_CHECKING:
    from dockyard.cli._progress import ProgressPrinter
    from dockyard.image.model import Image
    from dockyard.reference import Reference

HELP = "Download an image from a registry"


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", metavar="NAME[:TAG|@DIGEST]")
    p.add_argument("-a", "--all-tags", action="store_true", help="Download all tagged images")
    p.add_argument("--platform", help="Set platform if server is multi-platform capable")
    p.add_argument("-q", "--quiet", action="store_true", help="Suppress verbose output")
    p.add_argument("--disable-content-trust", action="store_true", help="Skip image verification")


def run(args: argparse.Namespace, ctx: Context) -> int:
    from dataclasses import replace

    from dockyard.cli._progress import ProgressPrinter
    from dockyard.errors import InvalidArgument
    from dockyard.image.distribution import list_tags
    from dockyard.reference import parse_reference

    ref = parse_reference(args.name, default_tag=False)
    printer = None if args.quiet else ProgressPrinter(ctx.out)
    if args.all_tags:
        if not ref.is_name_only:
            raise InvalidArgument("tag can't be used with --all-tags/-a")
        refs = [replace(ref, tag=t) for t in list_tags(ctx.engine, ref)]
    else:
        if ref.is_name_only and printer is not None:
            printer.line("Using default tag: latest")
        refs = [ref.pinned()]
    newer = False
    for r in refs:
        newer |= _pull_one(ctx, r, args.platform, printer, show_status=not args.all_tags)
    if args.all_tags and printer is not None:
        state = "Downloaded newer image" if newer else "Image is up to date"
        printer.line(f"Status: {state} for {ref.familiar_name}")
    ctx.out.write((ref.name if args.all_tags else refs[0].string()) + "\n")
    return 0


def _pull_one(
    ctx: Context,
    ref: Reference,
    platform: str | None,
    printer: ProgressPrinter | None,
    *,
    show_status: bool,
) -> bool:
    """Pull one reference; True when it brought a newer image than the name had."""
    from dockyard.image.distribution import pull_image
    from dockyard.oci.types import Platform

    before = _current(ctx, ref)
    if printer is not None:
        printer.line(f"{ref.tag or ref.digest}: Pulling from {ref.path}")
    plat = Platform.parse(platform) if platform else None
    img = pull_image(ctx.engine, ref, platform=plat, progress=printer)
    newer = before != str(img.id)
    if printer is not None:
        printer.line(f"Digest: {_digest(img)}")
        if show_status:
            state = "Downloaded newer image" if newer else "Image is up to date"
            printer.line(f"Status: {state} for {ref.familiar_string()}")
    return newer


def _current(ctx: Context, ref: Reference) -> str | None:
    meta = ctx.engine.meta
    if ref.digest:
        return meta.repo_digest(f"{ref.name}@{ref.digest}")
    return meta.tag(ref.string())


def _digest(img: Image) -> str:
    return str(img.index_digest or img.manifest_digest)
