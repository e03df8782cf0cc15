"""Port publishing specs (`-p`, `-P`) parsed into `PortBinding`s — pure, no I/O.

Responsibility: turn Docker's `-p [ip:][hostPort:]containerPort[/proto]` strings (with ranges,
`8080-8081:80-81`, bracketed IPv6 host addresses) into bindings, with the exact error texts of
Docker's parser (go-connections `nat.ParsePortSpec`), and `-P` (every exposed port) into bindings on
random host ports.

Invariants:
- a `PortBinding` names one container port; a container range expands into one binding per port;
- `host_port == 0` means "any free port"; `host_port_end > host_port` (only when the container
  port is a single port and the host part is a range) means "any free port in that range";
- `host_ip == ""` means "the engine's default bind address" (see `portmap.DEFAULT_HOST_IP`);
- errors are `InvalidArgument` with Docker's messages, so the CLI prints what `docker` prints.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from dockyard.errors import InvalidArgument

PROTOCOLS = ("tcp", "udp", "sctp")


@dataclass(frozen=True)
class PortBinding:
    """One container port published on the host (possibly with a host port still to choose)."""

    container_port: int
    proto: str = "tcp"
    host_ip: str = ""
    host_port: int = 0
    host_port_end: int = 0

    @property
    def key(self) -> str:
        """Docker's `PortMap` key, e.g. `80/tcp`."""
        return f"{self.container_port}/{self.proto}"


def _split_parts(raw: str) -> tuple[str, str, str]:
    parts = raw.split(":")
    n = len(parts)
    if n == 1:
        return "", "", parts[0]
    if n == 2:
        return "", parts[0], parts[1]
    if n == 3:
        return parts[0], parts[1], parts[2]
    return ":".join(parts[: n - 2]), parts[n - 2], parts[n - 1]


def split_proto_port(raw: str) -> tuple[str, str]:
    """`80/udp` -> ("udp", "80"); `80` -> ("tcp", "80"); "" -> ("", "")."""
    parts = raw.split("/")
    if not raw or not parts[0]:
        return "", ""
    if len(parts) == 1:
        return "tcp", raw
    if not parts[1]:
        return "tcp", parts[0]
    return parts[1], parts[0]


def _parse_port(text: str) -> int:
    if not text.isdigit() or not text.isascii():
        raise ValueError(text)
    value = int(text)
    if value > 65535:
        raise ValueError(text)
    return value


def parse_port_range(ports: str) -> tuple[int, int]:
    """`80` -> (80, 80); `80-81` -> (80, 81). Raises ValueError."""
    if not ports:
        raise ValueError("empty string specified for ports")
    if "-" not in ports:
        p = _parse_port(ports)
        return p, p
    start_s, _, end_s = ports.partition("-")
    start, end = _parse_port(start_s), _parse_port(end_s)
    if end < start:
        raise ValueError(f"invalid range specified for port: {ports}")
    return start, end


def _parse_ip(ip: str) -> str:
    if ip.startswith("["):
        if not ip.endswith("]"):
            raise InvalidArgument(f"invalid IP address {ip}: missing ']' in address")
        ip = ip[1:-1]
    if ip:
        try:
            ipaddress.ip_address(ip)
        except ValueError:
            raise InvalidArgument(f"invalid IP address: {ip}") from None
    return ip


def parse_port_spec(raw: str) -> list[PortBinding]:
    """Parse one `-p` value into bindings (one per container port)."""
    ip, host_port, container_port = _split_parts(raw)
    proto, container_port = split_proto_port(container_port)
    ip = _parse_ip(ip)
    if not container_port:
        raise InvalidArgument(f"no port specified: {raw}<empty>")
    try:
        start, end = parse_port_range(container_port)
    except ValueError:
        raise InvalidArgument(f"invalid containerPort: {container_port}") from None
    hstart = hend = 0
    if host_port:
        try:
            hstart, hend = parse_port_range(host_port)
        except ValueError:
            raise InvalidArgument(f"invalid hostPort: {host_port}") from None
    if host_port and (end - start) != (hend - hstart) and end != start:
        raise InvalidArgument(
            "invalid ranges specified for container and host Ports: "
            f"{container_port} and {host_port}"
        )
    if proto.lower() not in PROTOCOLS:
        raise InvalidArgument(f"invalid proto: {proto}")
    proto = proto.lower()
    out: list[PortBinding] = []
    for i in range(end - start + 1):
        if not host_port:
            out.append(PortBinding(start + i, proto, ip))
        elif end - start == hend - hstart:
            out.append(PortBinding(start + i, proto, ip, hstart + i))
        else:  # one container port, a host range to pick from
            out.append(PortBinding(start + i, proto, ip, hstart, hend))
    return out


def parse_port_specs(specs: Iterable[str]) -> list[PortBinding]:
    """Parse every `-p` value; duplicates (same container port, ip and host port) collapse."""
    out: list[PortBinding] = []
    for spec in specs:
        for b in parse_port_spec(spec):
            if b not in out:
                out.append(b)
    return out


def publish_all(exposed: Iterable[str], host_ip: str = "") -> list[PortBinding]:
    """`-P`: every exposed port (`80`, `80/tcp`, `53/udp`, `8000-8001/tcp`) on random host ports."""
    out: list[PortBinding] = []
    for item in exposed:
        proto, port = split_proto_port(item)
        if proto.lower() not in PROTOCOLS:
            raise InvalidArgument(f"invalid proto: {proto}")
        try:
            start, end = parse_port_range(port)
        except ValueError:
            raise InvalidArgument(f"invalid containerPort: {port}") from None
        for p in range(start, end + 1):
            b = PortBinding(p, proto.lower(), host_ip)
            if b not in out:
                out.append(b)
    return out
