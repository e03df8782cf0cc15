"""`dockyard attach`: follow a running container's output, feed it this terminal's input, until
it exits (exit with its code) or the detach keys are typed (exit 1, as Docker).

Output comes from the container's json log (what the supervisor records), from the moment of
attaching, on stdout and stderr as the container wrote them. Signals received are forwarded
to the container (`--sig-proxy`, default true, not with a tty). Standard input (unless
`--no-stdin`) goes to the container when it was started with `-i`: to the supervisor's
`attach.sock` (`container.attachserve`), which writes it to the container's stdin. With `-t` the
terminal is put in raw mode and the detach keys (`--detach-keys`, default ctrl-p,ctrl-q) leave
the container running; without `-t` every byte is passed on, as Docker does. With `-t` and a
terminal, its size is sent to the container's pty on attaching and on every SIGWINCH.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
from typing import TYPE_CHECKING

from dockyard.cli import Context

if TYPE_CHECKING:
    import socket
    from collections.abc import Callable

HELP = "Attach local standard input, output, and error streams to a running container"
DEFAULT_DETACH_KEYS = "ctrl-p,ctrl-q"
ESCAPE_MESSAGE = "read escape sequence"


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("container", metavar="CONTAINER")
    p.add_argument("--no-stdin", action="store_true", help="Do not attach STDIN")
    p.add_argument("--sig-proxy", default="true", help="Proxy all received signals to the process")
    p.add_argument("--detach-keys", help="Override the key sequence for detaching a container")


def detach_keys(text: str) -> bytes:
    """Docker's detach key syntax: comma-separated single characters or `ctrl-<x>`, where x
    is a letter or one of @ [ \\ ] ^ _ (ctrl-a = 0x01 ... ctrl-_ = 0x1f)."""
    from dockyard.errors import InvalidArgument

    out = bytearray()
    for key in text.split(","):
        low = key.lower()
        if len(key) == 1:
            out.append(ord(key))
        elif low.startswith("ctrl-") and len(key) == 6:
            c = low[5]
            if "a" <= c <= "z":
                out.append(ord(c) - ord("a") + 1)
            elif c in "@[\\]^_":
                out.append(ord(c) - ord("@"))
            else:
                raise InvalidArgument(f"Invalid escape keys ({text}) provided")
        else:
            raise InvalidArgument(f"Invalid escape keys ({text}) provided")
    if not out:
        raise InvalidArgument(f"Invalid escape keys ({text}) provided")
    return bytes(out)


class EscapeFilter:
    """Holds back a prefix of the detach sequence until it is complete (detach) or broken
    (the held bytes go on, as typed)."""

    def __init__(self, keys: bytes) -> None:
        self.keys = keys
        self._held = b""
        self.detached = False

    def feed(self, data: bytes) -> bytes:
        """The bytes to pass on; sets `detached` (and passes nothing after) on a match."""
        out = bytearray()
        for b in data:
            if self.detached:
                break
            held = self._held + bytes([b])
            if self.keys.startswith(held):
                self._held = held
                if held == self.keys:
                    self.detached = True
                continue
            out += self._held
            self._held = b""
            if self.keys.startswith(bytes([b])):
                self._held = bytes([b])
            else:
                out.append(b)
        return bytes(out)


def run(args: argparse.Namespace, ctx: Context) -> int:
    from dockyard.cli.run import _proxy_signals, _raw_terminal, follow_terminal_size
    from dockyard.container import attachserve
    from dockyard.container.logs import follow
    from dockyard.errors import Conflict

    svc = ctx.engine.containers
    c = svc.get(args.container)
    if c.state.status == "paused":
        raise Conflict("You cannot attach to a paused container, unpause it first")
    if not c.state.running:
        raise Conflict("You cannot attach to a stopped container, start it first")
    tty = bool(c.config.get("Tty"))
    keys = detach_keys(args.detach_keys or DEFAULT_DETACH_KEYS) if tty else b""
    if str(args.sig_proxy).lower() not in ("false", "0") and not tty:
        _proxy_signals(ctx, c.id)
    conn = None
    if not args.no_stdin and c.config.get("OpenStdin"):
        conn = attachserve.connect(svc.dir(c.id))
    path = svc.dir(c.id) / f"{c.id}-json.log"
    following = threading.Event()  # the log's starting point is taken: input may go now
    feeder = _StdinFeeder(conn, keys, following) if conn is not None else None

    unwatch: list[Callable[[], None]] = []

    def alive() -> bool:
        following.set()
        if tty and not unwatch:  # once output is followed: a redraw it causes is seen
            unwatch.append(follow_terminal_size(ctx, c.id))
        return not (feeder and feeder.detached.is_set()) and svc.supervisor_alive(c.id)

    restore = _raw_terminal() if tty and feeder is not None and os.isatty(0) else None
    try:
        if feeder is not None:
            feeder.start()
        out, err = sys.stdout.buffer, sys.stderr.buffer
        for line in follow(path, alive):
            sink = err if line.stream == "stderr" else out
            sink.write(line.data)
            sink.flush()
    finally:
        for stop in unwatch:
            stop()
        if restore is not None:
            restore()
        if conn is not None:
            conn.close()
    if feeder is not None and feeder.detached.is_set():
        ctx.err.write(f"{ESCAPE_MESSAGE}\n")
        return 1
    return svc.wait(c.id)


class _StdinFeeder:
    """A thread copying fd 0 to the container's attach socket (through the escape filter
    with a tty); at EOF it half-closes the socket, so StdinOnce can close the container's."""

    def __init__(self, conn: socket.socket, keys: bytes, following: threading.Event) -> None:
        self.conn = conn
        self.filter = EscapeFilter(keys) if keys else None
        self.following = following
        self.detached = threading.Event()
        self.thread = threading.Thread(target=self._copy, name="attach-stdin", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def _copy(self) -> None:
        self.following.wait(5.0)
        try:
            while True:
                data = os.read(0, 65536)
                if not data:
                    self._shutdown()
                    return
                if self.filter is not None:
                    data = self.filter.feed(data)
                if data:
                    self.conn.sendall(data)
                if self.filter is not None and self.filter.detached:
                    self.detached.set()
                    return
        except OSError:
            return

    def _shutdown(self) -> None:
        import contextlib
        import socket

        with contextlib.suppress(OSError):
            self.conn.shutdown(socket.SHUT_WR)
