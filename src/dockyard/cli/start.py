"""`dockyard start`: start stopped containers (-a to attach to the first one)."""

from __future__ import annotations

import argparse

from dockyard.cli import Context

HELP = "Start one or more stopped containers"


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("containers", nargs="+", metavar="CONTAINER")
    p.add_argument("-a", "--attach", action="store_true", help="Attach STDOUT/STDERR")
    p.add_argument("-i", "--interactive", action="store_true", help="Attach container's STDIN")


def run(args: argparse.Namespace, ctx: Context) -> int:
    from dockyard.cli.run import attach_and_start
    from dockyard.errors import DockyardError

    svc = ctx.engine.containers
    if args.attach or args.interactive:
        if len(args.containers) > 1:
            ctx.err.write("Error: you cannot start and attach multiple containers at once\n")
            return 1
        c = svc.get(args.containers[0])
        return attach_and_start(
            ctx, c.id, interactive=args.interactive, tty=bool(c.config.get("Tty")), proxy="true"
        )
    rc = 0
    for name in args.containers:
        try:
            svc.start(name)
            ctx.out.write(name + "\n")
        except DockyardError as e:
            ctx.err.write(f"Error response from daemon: {e}\n")
            rc = 1
    if rc:
        ctx.err.write("Error: failed to start containers: " + ", ".join(args.containers) + "\n")
    return rc
