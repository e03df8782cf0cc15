"""Published ports: host-port reservation and the resolved mappings.

Responsibility: turn `PortBinding`s (from `ports.parse_port_specs`) into concrete
`PortMapping`s by reserving each host port with a bound socket, so that (a) a random port is
chosen by the kernel among free ones, (b) a port some other program uses gives Docker's error
`Bind for 0.0.0.0:8080 failed: port is already allocated` before any rule is made, and (c) no
other program can take the port while the mapping exists. Traffic never reaches these sockets:
the DNAT rules (see `firewall`) rewrite it first; TCP sockets are bound, not listening.

Who holds the sockets: whoever calls `NetworkManager.attach` gets them in
`Endpoint.reservations` and must keep them open for the life of the mapping — the engine's
per-container supervisor does (pass the fds to it when it is spawned). `detach` closes them when
they are still owned by the calling process. If the holder dies, the port rows in the database
still prevent a second mapping of the same port, and `repair()` frees them with the endpoint.

Default bind address (`DEFAULT_HOST_IP`): 0.0.0.0, as Docker — `-p 8080:80` is reachable from
other hosts, which is what users and compose files expect. Because DNAT happens at the
prerouting hook, before the host's INPUT filter, such a port bypasses a host firewall (ufw,
firewalld), the long-standing Docker complaint. `NetworkManager(default_host_ip="127.0.0.1")`
(dockerd's `--ip`) makes unqualified `-p` local-only; `-p 127.0.0.1:8080:80` does it per port.

Invariants: `reserve` either returns one socket per mapping or closes every socket it opened.
Only IPv4 is published (the DNAT rules are IPv4).
"""

from __future__ import annotations

import contextlib
import errno
import socket
from collections.abc import Sequence
from dataclasses import dataclass

from dockyard.errors import Conflict, InvalidArgument
from dockyard.network.ports import PortBinding

DEFAULT_HOST_IP = "0.0.0.0"


@dataclass(frozen=True)
class PortMapping:
    """A published port with its host port chosen."""

    proto: str
    host_ip: str
    host_port: int
    container_port: int

    def __str__(self) -> str:
        return f"{self.host_ip}:{self.host_port}->{self.container_port}/{self.proto}"


def _socket(proto: str) -> socket.socket:
    if proto == "tcp":
        return socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if proto == "udp":
        return socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    return socket.socket(socket.AF_INET, socket.SOCK_SEQPACKET, socket.IPPROTO_SCTP)


def _bind_one(proto: str, ip: str, port: int) -> socket.socket:
    s = _socket(proto)
    try:
        s.bind((ip, port))
    except OSError as e:
        s.close()
        if e.errno == errno.EADDRINUSE:
            raise Conflict(f"Bind for {ip}:{port} failed: port is already allocated") from None
        if e.errno == errno.EADDRNOTAVAIL:
            raise InvalidArgument(
                f"listen {proto}4 {ip}:{port}: bind: cannot assign requested address"
            ) from None
        raise
    return s


def _reserve_binding(b: PortBinding, ip: str) -> tuple[PortMapping, socket.socket]:
    if b.host_port_end > b.host_port:
        for port in range(b.host_port, b.host_port_end + 1):
            with contextlib.suppress(Conflict):
                s = _bind_one(b.proto, ip, port)
                return PortMapping(b.proto, ip, port, b.container_port), s
        raise Conflict(
            f"Bind for {ip}:{b.host_port}-{b.host_port_end} failed: port is already allocated"
        )
    s = _bind_one(b.proto, ip, b.host_port)
    return PortMapping(b.proto, ip, s.getsockname()[1], b.container_port), s


def reserve(
    bindings: Sequence[PortBinding], default_host_ip: str = DEFAULT_HOST_IP
) -> tuple[list[PortMapping], list[socket.socket]]:
    """Bind one socket per binding; all or nothing."""
    mappings: list[PortMapping] = []
    socks: list[socket.socket] = []
    try:
        for b in bindings:
            ip = b.host_ip or default_host_ip
            if ":" in ip:
                raise InvalidArgument(f"publishing on IPv6 address {ip} is not supported")
            m, s = _reserve_binding(b, ip)
            mappings.append(m)
            socks.append(s)
    except BaseException:
        release(socks)
        raise
    return mappings, socks


def release(socks: Sequence[socket.socket]) -> None:
    for s in socks:
        with contextlib.suppress(OSError):
            s.close()
