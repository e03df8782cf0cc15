"""`dockyard exec`: run a command in a running container."""

from __future__ import annotations

import argparse

from dockyard.cli import Context

HELP = "Execute a command in a running container"
USAGE_EXIT = 125


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("container", metavar="CONTAINER")
    p.add_argument("command", nargs=argparse.REMAINDER, metavar="COMMAND [ARG...]")
    p.add_argument("-d", "--detach", action="store_true")
    p.add_argument("-i", "--interactive", action="store_true")
    p.add_argument("-t", "--tty", action="store_true")
    p.add_argument("-e", "--env", action="append", default=[])
    p.add_argument("--env-file", action="append", default=[])
    p.add_argument("-u", "--user")
    p.add_argument("-w", "--workdir")
    p.add_argument("--privileged", action="store_true")


def run(args: argparse.Namespace, ctx: Context) -> int:
    from dockyard.cli._runopts import _env, _kv_files
    from dockyard.container.exec import exec_process
    from dockyard.container.supervisor import exit_code_for
    from dockyard.errors import DockyardError, NotFound
    from dockyard.linux.pty import terminal_size

    if not args.command:
        ctx.err.write('"dockyard exec" requires at least 2 arguments.\n')
        return 1
    try:
        return exec_process(
            ctx.engine.containers,
            args.container,
            list(args.command),
            env=_env([*_kv_files(args.env_file), *args.env]),
            user=args.user,
            workdir=args.workdir,
            tty=args.tty,
            privileged=args.privileged,
            detach=args.detach,
            console_size=terminal_size() if args.tty else None,
        )
    except NotFound as e:
        if "No such container" in str(e):
            raise
        ctx.err.write(
            "OCI runtime exec failed: exec failed: unable to start container process: "
            f"{e}: unknown\n"
        )
        return exit_code_for(e)
    except DockyardError as e:
        if e.exit_code == 1 and "permission denied" in str(e).lower():
            ctx.err.write(f"OCI runtime exec failed: {e}\n")
            return 126
        raise
