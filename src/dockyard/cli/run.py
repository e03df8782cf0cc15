"""`dockyard run`: create a container from an image and start it, attached or detached (-d).

With `-t` and a terminal, the container's pty gets this terminal's size from the start
(HostConfig.ConsoleSize, as Docker's CLI sets it), and, attached, every later size (SIGWINCH)
through the supervisor's resize socket (`container.attachserve`)."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
from typing import TYPE_CHECKING, Any

from dockyard.cli import Context
from dockyard.cli._runopts import USAGE_EXIT, add_run_flags, build_config, ensure_image

if TYPE_CHECKING:
    from collections.abc import Callable

    from dockyard.container.supervisor import Attach

HELP = "Create and run a new container from an image"


def configure(p: argparse.ArgumentParser) -> None:
    add_run_flags(p)
    p.add_argument("-d", "--detach", action="store_true", help="Run container in background")
    p.add_argument("--rm", action="store_true", help="Remove the container when it exits")
    p.add_argument("--sig-proxy", default="true")
    p.add_argument("-a", "--attach", action="append", default=[])


def run(args: argparse.Namespace, ctx: Context) -> int:
    from dockyard.container.prefork import Prefork
    from dockyard.errors import DockyardError

    pre = ctx.early if isinstance(ctx.early, Prefork) else Prefork(ctx.root)
    try:
        try:
            config, host = build_config(args)
            if args.tty:
                _console_size(host)
            ensure_image(ctx, args.image, args.pull, args.platform)
            c = ctx.engine.containers.create(
                args.image, config, host, name=args.name, container_id=pre.container_id
            )
        except DockyardError as e:
            ctx.err.write(
                f"dockyard: Error response from daemon: {e}\nSee 'dockyard run --help'.\n"
            )
            return USAGE_EXIT if e.exit_code == 1 else e.exit_code
        attached = not args.detach

        def go(cid: str) -> None:
            pre.go(cid, attach=attached, stdin=attached and bool(args.interactive))

        if not attached:
            try:
                ctx.engine.containers.start(c.id, go=go)
            except DockyardError as e:
                ctx.err.write(f"dockyard: Error response from daemon: {e}\n")
                return e.exit_code if e.exit_code != 1 else USAGE_EXIT
            ctx.out.write(c.id + "\n")
            return 0
        pipes = _Pipes(pre.out, pre.err, pre.status, stdin=bool(args.interactive))
        pre.out = pre.err = pre.status = -1  # the pipes own them now
        try:
            start = lambda: ctx.engine.containers.start(c.id, go=go)  # noqa: E731
            return _attached(ctx, c.id, pipes, tty=args.tty, proxy=args.sig_proxy, start=start)
        finally:
            pipes.close()
    finally:
        pre.close()


class _Pipes:
    """The CLI's read ends of an attached container's stdout, stderr and exit status."""

    def __init__(self, out_r: int, err_r: int, st_r: int, *, stdin: bool) -> None:
        self.out_r, self.err_r, self.st_r = out_r, err_r, st_r
        self.stdin = stdin

    @classmethod
    def with_attach(cls, interactive: bool) -> tuple[_Pipes, Attach]:
        """New pipes, and the `Attach` with their write ends for a supervisor to own."""
        from dockyard.container.supervisor import Attach

        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        st_r, st_w = os.pipe()
        attach = Attach(stdout=out_w, stderr=err_w, status=st_w, stdin=interactive)
        return cls(out_r, err_r, st_r, stdin=interactive), attach

    def close(self) -> None:
        for name in ("out_r", "err_r", "st_r"):
            fd = getattr(self, name)
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
                setattr(self, name, -1)


def attach_and_start(ctx: Context, cid: str, *, interactive: bool, tty: bool, proxy: str) -> int:
    """Start `cid` with its output relayed here; return its exit code (Docker's `run`)."""
    pipes, attach = _Pipes.with_attach(interactive)
    try:
        return _attached(
            ctx, cid, pipes, tty=tty, proxy=proxy,
            start=lambda: ctx.engine.containers.start(cid, attach),
        )  # fmt: skip
    finally:
        pipes.close()


def _attached(ctx: Context, cid: str, pipes: _Pipes, *, tty: bool, proxy: str, start: Any) -> int:
    """Run `start()` (which hands the pipes' write ends to the supervisor), relay the output,
    return the exit code the supervisor reports."""
    from dockyard.errors import DockyardError

    interactive = pipes.stdin
    restore = _raw_terminal() if tty and interactive and os.isatty(0) else None
    unwatch = None
    try:
        try:
            start()
        except DockyardError as e:
            ctx.err.write(f"dockyard: Error response from daemon: {e}\n")
            return e.exit_code if e.exit_code != 1 else USAGE_EXIT
        if proxy != "false" and not tty:
            _proxy_signals(ctx, cid)
        if tty:
            unwatch = follow_terminal_size(ctx, cid)
        _relay(pipes.out_r, pipes.err_r)
        pipes.out_r = pipes.err_r = -1
        with os.fdopen(pipes.st_r, "rb") as f:
            pipes.st_r = -1
            data = f.read().strip()
    finally:
        if unwatch is not None:
            unwatch()
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


def _console_size(host: dict[str, Any]) -> None:
    """HostConfig.ConsoleSize ([rows, cols]) from this terminal, as Docker's CLI sets it."""
    from dockyard.linux.pty import terminal_size

    size = terminal_size()
    if size is not None:
        host["ConsoleSize"] = list(size)


def follow_terminal_size(ctx: Context, cid: str) -> Callable[[], None]:
    """Send this terminal's size to the `-t` container `cid` now and on every SIGWINCH;
    return the function that stops it."""
    from dockyard.container.attachserve import send_size
    from dockyard.linux.pty import watch_winsize

    directory = ctx.engine.containers.dir(cid)
    return watch_winsize(lambda rows, cols: send_size(directory, rows, cols))


def _raw_terminal() -> Any:
    import termios
    import tty

    old = termios.tcgetattr(0)
    tty.setraw(0)
    return lambda: termios.tcsetattr(0, termios.TCSADRAIN, old)
