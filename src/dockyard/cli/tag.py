"""`dockyard tag SOURCE TARGET`: another name for an image."""

from __future__ import annotations

import argparse

from dockyard.cli import Context

HELP = "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE"


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", metavar="SOURCE_IMAGE[:TAG]")
    p.add_argument("target", metavar="TARGET_IMAGE[:TAG]")


def run(args: argparse.Namespace, ctx: Context) -> int:
    from dockyard.reference import parse_tag_argument

    target = parse_tag_argument(args.target)
    ctx.engine.images.tag(args.source, target)
    return 0
