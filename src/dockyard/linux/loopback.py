"""Bring the loopback interface up in the calling process's network namespace.

Responsibility: `up()` sets IFF_UP on `lo` with the classic SIOCGIFFLAGS/SIOCSIFFLAGS ioctls, as
runc and crun do for a new network namespace. It runs in a container's init between clone and
execve, on `dockyard-runtime`'s start path, so it calls libc through `linux.libc` (loaded before
the clone) and imports nothing: the netlink module (`socket`, `enum`, `typing`) costs ~25 ms to
import, even `_socket` ~2 ms (a shared library to load).
"""

from __future__ import annotations

import os
import sys

from dockyard.linux import libc

AF_INET = 2
SOCK_DGRAM = 2
SOCK_CLOEXEC = 0o2000000
SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1


def up(name: str = "lo") -> None:
    fd = libc.int_fn("socket")(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)
    if fd < 0:
        raise OSError(libc.get_errno(), f"socket for {name} up")
    try:
        ifr = libc.Bytes40()
        for i, b in enumerate(name.encode()[:15]):
            ifr[i] = b
        ioctl = libc.int_fn("ioctl")
        if ioctl(fd, libc.c_ulong(SIOCGIFFLAGS), ifr) < 0:
            raise OSError(libc.get_errno(), f"SIOCGIFFLAGS {name}")
        flags = int.from_bytes(bytes(ifr[16:18]), sys.byteorder) | IFF_UP
        ifr[16], ifr[17] = flags.to_bytes(2, sys.byteorder)
        if ioctl(fd, libc.c_ulong(SIOCSIFFLAGS), ifr) < 0:
            raise OSError(libc.get_errno(), f"SIOCSIFFLAGS {name}")
    finally:
        os.close(fd)
