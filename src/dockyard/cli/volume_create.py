"""`dockyard volume create`: create a volume (or return the existing one) and print its name."""

from __future__ import annotations

import argparse

from dockyard.cli import Context

HELP = "Create a volume"


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("volume", nargs="?", metavar="VOLUME")
    p.add_argument("--name", dest="name_flag", help=argparse.SUPPRESS)
    p.add_argument("-d", "--driver", default="local", help="Specify volume driver name")
    p.add_argument("--label", action="append", help="Set metadata for a volume")
    p.add_argument("-o", "--opt", action="append", help="Set driver specific options")


def run(args: argparse.Namespace, ctx: Context) -> int:
    from dockyard.cli.volume_common import kv_map, volumes

    if args.volume and args.name_flag:
        ctx.err.write(
            "conflicting options: either specify --name or provide positional arg, not both\n"
        )
        return 1
    vol = volumes(ctx).create(
        args.volume or args.name_flag or None,
        driver=args.driver,
        labels=kv_map(args.label),
        options=kv_map(args.opt),
    )
    ctx.out.write(vol.name + "\n")
    return 0
