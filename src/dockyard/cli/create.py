"""`dockyard create`: create a container without starting it; prints its ID."""

from __future__ import annotations

import argparse

from dockyard.cli import Context
from dockyard.cli._runopts import add_run_flags, build_config, ensure_image

HELP = "Create a new container"


def configure(p: argparse.ArgumentParser) -> None:
    add_run_flags(p)
    p.add_argument("--rm", action="store_true", help="Remove the container when it exits")


def run(args: argparse.Namespace, ctx: Context) -> int:
    config, host = build_config(args)
    ensure_image(ctx, args.image, args.pull, args.platform)
    c = ctx.engine.containers.create(args.image, config, host, name=args.name)
    ctx.out.write(c.id + "\n")
    return 0
