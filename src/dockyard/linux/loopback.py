"""Bring the loopback interface up in the calling process's network namespace.

Responsibility: `up()` sets IFF_UP on `lo` with the classic SIOCGIFFLAGS/SIOCSIFFLAGS ioctls, as
runc and crun do for a new network namespace. It runs in a container's init between clone and
execve, on `dockyard-runtime`'s start path, so it imports only the C modules `_socket` and
`fcntl` (the netlink module with `socket`, `enum` and `typing` costs ~25 ms to import).
"""

from __future__ import annotations

SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1
_IFREQ_SIZE = 40  # struct ifreq: char ifr_name[16] + a 24-byte union


def up(name: str = "lo") -> None:
    import _socket
    import fcntl
    import sys

    s = _socket.socket(_socket.AF_INET, _socket.SOCK_DGRAM | _socket.SOCK_CLOEXEC)
    try:
        ifr = name.encode().ljust(16, b"\0") + bytes(_IFREQ_SIZE - 16)
        got = fcntl.ioctl(s.fileno(), SIOCGIFFLAGS, ifr)
        flags = int.from_bytes(got[16:18], sys.byteorder) | IFF_UP
        req = got[:16] + flags.to_bytes(2, sys.byteorder) + got[18:]
        fcntl.ioctl(s.fileno(), SIOCSIFFLAGS, req)
    finally:
        s.close()
