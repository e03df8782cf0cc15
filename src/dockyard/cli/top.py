"""`dockyard top`: the processes running in a container."""

from __future__ import annotations

import argparse

from dockyard.cli import Context

HELP = "Display the running processes of a container"


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("container", metavar="CONTAINER")
    p.add_argument("ps_args", nargs=argparse.REMAINDER, metavar="[ps OPTIONS]")


def run(args: argparse.Namespace, ctx: Context) -> int:
    from dockyard.container.stats import top
    from dockyard.gotemplate import tabwrite_text

    titles, rows = top(ctx.engine.containers, args.container, list(args.ps_args))
    if titles:
        text = "".join("\t".join(r) + "\n" for r in [titles, *rows])
        ctx.out.write(tabwrite_text(text, minwidth=20, padding=3))  # Docker's top table
    return 0
