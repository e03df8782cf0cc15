"""Pseudo-terminals for containers, and passing their master fd over a unix socket.

Responsibility: open a pty pair from the current /dev/ptmx (inside the container, after
pivot_root, so the pty belongs to the container's devpts), send the master to the
`--console-socket` peer with SCM_RIGHTS as runc does, make the slave the controlling
terminal and stdio of the calling process, and read or set a terminal's window size
(TIOCGWINSZ/TIOCSWINSZ; setting it on a master makes the kernel send SIGWINCH to the
foreground process group of its slave), and follow this process's own terminal size
(`watch_winsize`, on SIGWINCH). Invariant: the master never stays open in the
container process; every fd opened here is close-on-exec except the stdio dups.
"""

from __future__ import annotations

import fcntl
import os
import socket
import struct
import termios

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (imported in containers)
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

_WINSIZE = struct.Struct("HHHH")  # struct winsize: rows, cols, xpixel, ypixel
_MAX = 0xFFFF


def open_pty() -> tuple[int, str]:
    """(master fd, slave path) of a new pty from /dev/ptmx."""
    master, slave = os.openpty()
    name = os.ttyname(slave)
    os.close(slave)
    os.set_inheritable(master, False)
    return master, name


def send_fd(sock: socket.socket, fd: int, name: str) -> None:
    """Send `fd` with its name as the message, as runc's console socket protocol does."""
    socket.send_fds(sock, [name.encode()], [fd])


def recv_fd(sock: socket.socket) -> tuple[int, str]:
    """Receive one fd (and its name) sent by `send_fd`."""
    msg, fds, _flags, _addr = socket.recv_fds(sock, 4096, 1)
    if not fds:
        raise OSError("console socket: no file descriptor received")
    return fds[0], msg.decode(errors="replace")


def make_controlling(slave_path: str) -> None:
    """Start a session with the pty at `slave_path` as controlling terminal and stdio."""
    os.setsid()
    fd = os.open(slave_path, os.O_RDWR)
    fcntl.ioctl(fd, termios.TIOCSCTTY, 0)
    for target in (0, 1, 2):
        os.dup2(fd, target)
    if fd > 2:
        os.close(fd)


def get_winsize(fd: int) -> tuple[int, int] | None:
    """(rows, cols) of the terminal open on `fd`; None when `fd` is no terminal or its size
    is unknown (0x0, as a fresh pty has)."""
    try:
        raw = fcntl.ioctl(fd, termios.TIOCGWINSZ, bytes(_WINSIZE.size))
    except OSError:
        return None
    rows, cols, _x, _y = _WINSIZE.unpack(raw)
    if rows == 0 and cols == 0:
        return None
    return rows, cols


def set_winsize(fd: int, rows: int, cols: int) -> None:
    """Set the window size of the terminal on `fd` (a pty master or slave); raises OSError
    (ENOTTY, EBADF) as the ioctl does, ValueError for a size outside 0..65535."""
    if not (0 <= rows <= _MAX and 0 <= cols <= _MAX):
        raise ValueError(f"terminal size out of range: {rows}x{cols}")
    fcntl.ioctl(fd, termios.TIOCSWINSZ, _WINSIZE.pack(rows, cols, 0, 0))


def terminal_size(fds: tuple[int, ...] = (1, 0)) -> tuple[int, int] | None:
    """(rows, cols) of this process's terminal: the first of `fds` that is one (stdout
    first, as Docker's CLI); None when none is."""
    for fd in fds:
        size = get_winsize(fd)
        if size is not None:
            return size
    return None


def watch_winsize(apply: Callable[[int, int], object]) -> Callable[[], None]:
    """Call `apply(rows, cols)` with this process's terminal size now and on every SIGWINCH
    (errors in `apply` are its own to handle); return the function that stops it. Nothing
    is installed when there is no terminal or when not on the main thread."""
    import signal

    if terminal_size() is None:
        return lambda: None

    def update(_signum: int = 0, _frame: Any = None) -> None:
        size = terminal_size()
        if size is not None:
            apply(*size)

    try:
        old = signal.signal(signal.SIGWINCH, update)
    except ValueError:  # not the main thread: the initial size only
        update()
        return lambda: None
    update()

    def stop() -> None:
        signal.signal(signal.SIGWINCH, old)

    return stop
