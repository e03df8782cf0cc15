"""`dockyard run`: create a container from an image and start it, attached or detached (-d)."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
from typing import Any

from dockyard.cli import Context
from dockyard.cli._runopts import USAGE_EXIT, add_run_flags, build_config, ensure_image

HELP = "Create and run a new container from an image"


def configure(p: argparse.ArgumentParser) -> None:
    add_run_flags(p)
    p.add_argument("-d", "--detach", action="store_true", help="Run container in background")
    p.add_argument("--rm", action="store_true", help="Remove the container when it exits")
    p.add_argument("--sig-proxy", default="true")
    p.add_argument("-a", "--attach", action="append", default=[])


def run(args: argparse.Namespace, ctx: Context) -> int:
    from dockyard.errors import DockyardError

    try:
        config, host = build_config(args)
        ensure_image(ctx, args.image, args.pull, args.platform)
        c = ctx.engine.containers.create(args.image, config, host, name=args.name)
    except DockyardError as e:
        ctx.err.write(f"dockyard: Error response from daemon: {e}\nSee 'dockyard run --help'.\n")
        return USAGE_EXIT if e.exit_code == 1 else e.exit_code
    if args.detach:
        try:
            ctx.engine.containers.start(c.id)
        except DockyardError as e:
            ctx.err.write(f"dockyard: Error response from daemon: {e}\n")
            return e.exit_code if e.exit_code != 1 else USAGE_EXIT
        ctx.out.write(c.id + "\n")
        return 0
    return attach_and_start(
        ctx, c.id, interactive=args.interactive, tty=args.tty, proxy=args.sig_proxy
    )


def attach_and_start(ctx: Context, cid: str, *, interactive: bool, tty: bool, proxy: str) -> int:
    """Start `cid` with its output relayed here; return its exit code (Docker's `run`)."""
    from dockyard.container.supervisor import Attach
    from dockyard.errors import DockyardError

    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    st_r, st_w = os.pipe()
    attach = Attach(stdout=out_w, stderr=err_w, status=st_w, stdin=interactive)
    restore = _raw_terminal() if tty and interactive and os.isatty(0) else None
    try:
        try:
            ctx.engine.containers.start(cid, attach)
        except DockyardError as e:
            for fd in (out_r, err_r, st_r):
                os.close(fd)
            ctx.err.write(f"dockyard: Error response from daemon: {e}\n")
            return e.exit_code if e.exit_code != 1 else USAGE_EXIT
        if proxy != "false" and not tty:
            _proxy_signals(ctx, cid)
        _relay(out_r, err_r)
        with os.fdopen(st_r, "rb") as f:
            data = f.read().strip()
    finally:
        if restore:
            restore()
    if not data:
        return ctx.engine.containers.wait(cid)
    return int(data)


def _relay(out_r: int, err_r: int) -> None:
    import selectors

    sel = selectors.DefaultSelector()
    sinks = {out_r: sys.stdout.buffer, err_r: sys.stderr.buffer}
    for fd in sinks:
        sel.register(fd, selectors.EVENT_READ)
    sys.stdout.flush()
    while sinks:
        for key, _ in sel.select():
            data = os.read(key.fd, 65536)
            if not data:
                sel.unregister(key.fd)
                os.close(key.fd)
                del sinks[key.fd]
                continue
            sink = sinks[key.fd]
            try:
                sink.write(data)
                sink.flush()
            except BrokenPipeError:
                pass
    sel.close()


def _proxy_signals(ctx: Context, cid: str) -> None:
    def forward(signum: int, _frame: Any) -> None:
        from dockyard.errors import DockyardError

        with contextlib.suppress(DockyardError):
            ctx.engine.containers.runtime_for(cid).kill(cid, signum)

    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(s, forward)


def _raw_terminal() -> Any:
    import termios
    import tty

    old = termios.tcgetattr(0)
    tty.setraw(0)
    return lambda: termios.tcsetattr(0, termios.TCSADRAIN, old)
