"""A terminal for foreground `run` without --console-socket, as runc provides one.

Responsibility: `ConsoleServer` listens on a private unix socket that the container's init
connects to (the same protocol as --console-socket), receives the pty master, and `proxy` copies
our stdin to it and its output to our stdout until the container's side closes, with our own
terminal in raw mode meanwhile. Invariants: the socket directory is private (0700) and removed
on close; our terminal mode is always restored.
"""

from __future__ import annotations

import os
import select
import shutil
import socket
import tempfile
from typing import Any


class ConsoleServer:
    """A listening console socket in a private temporary directory."""

    def __init__(self) -> None:
        self._dir = tempfile.mkdtemp(prefix="dockyard-console-")
        self.path = os.path.join(self._dir, "console.sock")
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.bind(self.path)
        self._sock.listen(1)

    def receive(self, timeout: float = 10.0) -> int:
        """The pty master fd the container sent."""
        from dockyard.linux.pty import recv_fd

        self._sock.settimeout(timeout)
        conn, _ = self._sock.accept()
        try:
            fd, _name = recv_fd(conn)
        finally:
            conn.close()
        return fd

    def close(self) -> None:
        self._sock.close()
        shutil.rmtree(self._dir, ignore_errors=True)


def proxy(master: int, stdin: int = 0, stdout: int = 1) -> None:
    """Copy stdin → master and master → stdout until the pty closes (all container fds gone)."""
    saved = _raw(stdin)
    try:
        inputs = [master, stdin]
        while True:
            ready, _, _ = select.select(inputs, [], [])
            if master in ready:
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: every slave fd is closed
                    return
                if not data:
                    return
                os.write(stdout, data)
            if stdin in ready:
                data = os.read(stdin, 65536)
                if data:
                    os.write(master, data)
                else:
                    inputs.remove(stdin)
    finally:
        _restore(stdin, saved)


def _raw(fd: int) -> list[Any] | None:
    if not os.isatty(fd):
        return None
    import termios
    import tty

    saved: list[Any] = termios.tcgetattr(fd)
    tty.setraw(fd)
    return saved


def _restore(fd: int, saved: list[Any] | None) -> None:
    if saved is not None:
        import termios

        termios.tcsetattr(fd, termios.TCSADRAIN, saved)
