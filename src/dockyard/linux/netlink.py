"""rtnetlink and libnftables for container networking, without starting a process.

Responsibility: the few kernel network calls the network layer makes on every container start
and stop, done in-process (a process start costs ~7 ms here, more than the kernel work):
- `Rtnl`: a NETLINK_ROUTE socket, bound to the network namespace it was opened in, with
  `add_veth` (host end enslaved to a bridge and up; peer created directly inside a target netns
  under its final name), `set_up`, `add_addr`, `add_default_route`, `del_link`, `index`;
- `in_netns(path, fn)`: run `fn` on a short-lived thread that has joined the namespace at `path`
  (the network namespace is per thread, so the rest of the process is unaffected);
- `nft_run(script)`: load an nft script through libnftables (`libnftables.so.1`), the library
  the `nft` tool is built on, in one transaction.

Invariants: every request asks for an ACK; a kernel error raises `OSError(errno)` naming the
operation; sockets and nft contexts are closed on every path.
"""

from __future__ import annotations

import contextlib
import os
import socket
import struct
import threading
from collections.abc import Callable
from ipaddress import IPv4Address, IPv6Address
from typing import Any, TypeVar

T = TypeVar("T")

NLM_F_REQUEST = 0x1
NLM_F_ACK = 0x4
NLM_F_REPLACE = 0x100
NLM_F_EXCL = 0x200
NLM_F_CREATE = 0x400
NLMSG_ERROR = 2
RTM_NEWLINK = 16
RTM_DELLINK = 17
RTM_NEWADDR = 20
RTM_NEWROUTE = 24
IFLA_ADDRESS = 1
IFLA_IFNAME = 3
IFLA_MTU = 4
IFLA_MASTER = 10
IFLA_LINKINFO = 18
IFLA_NET_NS_FD = 28
IFLA_INFO_KIND = 1
IFLA_INFO_DATA = 2
VETH_INFO_PEER = 1
IFA_ADDRESS = 1
IFA_LOCAL = 2
RTA_OIF = 4
RTA_GATEWAY = 5
IFF_UP = 0x1
IFA_F_NODAD = 0x02
RT_TABLE_MAIN = 254
RTPROT_BOOT = 3
RTN_UNICAST = 1
_CLONE_NEWNET = 0x40000000
_NLMSG_HDR = struct.Struct("=IHHII")
_IFINFO = struct.Struct("=BxHiII")


def _attr(kind: int, data: bytes) -> bytes:
    length = 4 + len(data)
    return struct.pack("=HH", length, kind) + data + b"\0" * ((4 - length % 4) % 4)


def _str(kind: int, value: str) -> bytes:
    return _attr(kind, value.encode() + b"\0")


def _u32(kind: int, value: int) -> bytes:
    return _attr(kind, struct.pack("=I", value))


def _mac(value: str) -> bytes:
    return bytes(int(x, 16) for x in value.split(":"))


def _ifinfo(index: int = 0, flags: int = 0, change: int = 0) -> bytes:
    return _IFINFO.pack(socket.AF_UNSPEC, 0, index, flags, change)


class Rtnl:
    """A NETLINK_ROUTE socket in the calling thread's network namespace."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
        self.sock.bind((0, 0))
        self.seq = 0

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Rtnl:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(self, msg_type: int, flags: int, body: bytes, what: str) -> None:
        """Send one request and wait for its ACK; raise OSError on a kernel error."""
        self.seq += 1
        hdr = _NLMSG_HDR.pack(
            16 + len(body), msg_type, flags | NLM_F_REQUEST | NLM_F_ACK, self.seq, 0
        )
        self.sock.send(hdr + body)
        while True:
            data = self.sock.recv(65536)
            off = 0
            while off + 16 <= len(data):
                length, mtype, _, seq, _ = _NLMSG_HDR.unpack_from(data, off)
                if mtype == NLMSG_ERROR and seq == self.seq:
                    (err,) = struct.unpack_from("=i", data, off + 16)
                    if err:
                        raise OSError(-err, f"{what}: {os.strerror(-err)}")
                    return
                off += (length + 3) & ~3

    def index(self, name: str) -> int:
        return socket.if_nametoindex(name)

    def add_veth(
        self, name: str, peer: str, peer_netns_fd: int, mtu: int, peer_mac: str, master: int
    ) -> None:
        """Create a veth pair: `name` here (enslaved to `master`, up), `peer` in the netns."""
        peer_body = _ifinfo() + _str(IFLA_IFNAME, peer) + _u32(IFLA_MTU, mtu)
        peer_body += _attr(IFLA_ADDRESS, _mac(peer_mac)) + _u32(IFLA_NET_NS_FD, peer_netns_fd)
        info = _str(IFLA_INFO_KIND, "veth") + _attr(
            IFLA_INFO_DATA, _attr(VETH_INFO_PEER, peer_body)
        )
        body = _ifinfo(flags=IFF_UP, change=IFF_UP) + _str(IFLA_IFNAME, name)
        body += _u32(IFLA_MTU, mtu) + _u32(IFLA_MASTER, master) + _attr(IFLA_LINKINFO, info)
        self.request(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, body, f"create veth {name}")

    def set_up(self, index: int) -> None:
        self.request(RTM_NEWLINK, 0, _ifinfo(index, IFF_UP, IFF_UP), f"set link {index} up")

    def add_addr(self, index: int, addr: IPv4Address | IPv6Address, prefixlen: int) -> None:
        """Add an address; an IPv6 one without duplicate address detection (usable at once)."""
        v6 = addr.version == 6
        family, flags = (socket.AF_INET6, IFA_F_NODAD) if v6 else (socket.AF_INET, 0)
        body = struct.pack("=BBBBI", family, prefixlen, flags, 0, index)
        body += _attr(IFA_LOCAL, addr.packed) + _attr(IFA_ADDRESS, addr.packed)
        self.request(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, body, f"add address {addr}")

    def add_default_route(self, gateway: IPv4Address | IPv6Address, index: int) -> None:
        family = socket.AF_INET6 if gateway.version == 6 else socket.AF_INET
        body = struct.pack(
            "=BBBBBBBBI", family, 0, 0, 0, RT_TABLE_MAIN, RTPROT_BOOT, 0, RTN_UNICAST, 0
        )
        body += _attr(RTA_GATEWAY, gateway.packed) + _u32(RTA_OIF, index)
        self.request(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE, body, f"default via {gateway}")

    def del_link(self, name: str) -> None:
        self.request(RTM_DELLINK, 0, _ifinfo() + _str(IFLA_IFNAME, name), f"delete link {name}")


def in_netns(path: str, fn: Callable[[], T]) -> T:
    """Run `fn` on a new thread that has joined the network namespace at `path`."""
    from dockyard.linux.kernel import RealKernel

    result: list[T] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                RealKernel().setns(fd, _CLONE_NEWNET)
            finally:
                os.close(fd)
            result.append(fn())
        except BaseException as e:  # re-raised in the caller's thread
            errors.append(e)

    t = threading.Thread(target=work, name="dockyard-netns")
    t.start()
    t.join()
    if errors:
        raise errors[0]
    return result[0]


_nft_lib: Any = None


def _libnftables() -> Any:
    global _nft_lib
    if _nft_lib is None:
        import ctypes

        lib = ctypes.CDLL("libnftables.so.1", use_errno=True)
        lib.nft_ctx_new.restype = ctypes.c_void_p
        lib.nft_ctx_new.argtypes = [ctypes.c_uint32]
        lib.nft_ctx_free.argtypes = [ctypes.c_void_p]
        lib.nft_ctx_buffer_output.argtypes = [ctypes.c_void_p]
        lib.nft_ctx_buffer_error.argtypes = [ctypes.c_void_p]
        lib.nft_ctx_get_error_buffer.argtypes = [ctypes.c_void_p]
        lib.nft_ctx_get_error_buffer.restype = ctypes.c_char_p
        lib.nft_run_cmd_from_buffer.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        _nft_lib = lib
    return _nft_lib


def have_libnftables() -> bool:
    with contextlib.suppress(OSError):
        _libnftables()
        return True
    return False


def nft_run(script: str) -> None:
    """Run an nft script in one transaction; raise OSError with nft's message on failure."""
    lib = _libnftables()
    ctx = lib.nft_ctx_new(0)
    if not ctx:
        raise OSError("nft_ctx_new failed")
    try:
        lib.nft_ctx_buffer_output(ctx)
        lib.nft_ctx_buffer_error(ctx)
        if lib.nft_run_cmd_from_buffer(ctx, script.encode()) != 0:
            err = lib.nft_ctx_get_error_buffer(ctx) or b""
            raise OSError(f"nft: {err.decode(errors='replace').strip()}")
    finally:
        lib.nft_ctx_free(ctx)
