"""Pseudo-terminals for containers, and passing their master fd over a unix socket.

Responsibility: open a pty pair from the current /dev/ptmx (inside the container, after
pivot_root, so the pty belongs to the container's devpts), send the master to the
`--console-socket` peer with SCM_RIGHTS as runc does, and make the slave the controlling
terminal and stdio of the calling process. Invariant: the master never stays open in the
container process; every fd opened here is close-on-exec except the stdio dups.
"""

from __future__ import annotations

import fcntl
import os
import socket
import termios


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
