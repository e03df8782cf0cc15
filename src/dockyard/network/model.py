"""Network data types: networks, endpoints, network modes (pure data).

Invariants: `Network` and `Endpoint` are immutable snapshots of database rows; an `Endpoint`'s
`reservations` (the host-port sockets, see `portmap`) are live objects, excluded from equality.
IPv6 is optional: a network without it has `subnet6 == ""`, and so have its endpoints `ip6`.
"""

from __future__ import annotations

import json
import re
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dockyard.errors import InvalidArgument
from dockyard.network.portmap import PortMapping

DEFAULT_NETWORK = "bridge"
PREDEFINED = ("bridge", "host", "none")
_NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")


def validate_name(name: str) -> str:
    if not _NAME_RE.match(name):
        raise InvalidArgument(
            f'invalid network name "{name}": only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed'
        )
    return name


@dataclass(frozen=True)
class Network:
    id: str
    name: str
    bridge: str
    subnet: str
    gateway: str
    internal: bool
    builtin: bool
    mtu: int
    created: float
    labels: dict[str, str] = field(default_factory=dict)
    subnet6: str = ""
    gateway6: str = ""

    @property
    def ipv6(self) -> bool:
        return bool(self.subnet6)

    @classmethod
    def from_row(cls, r: Any) -> Network:
        return cls(
            id=r["id"],
            name=r["name"],
            bridge=r["bridge"],
            subnet=r["subnet"],
            gateway=r["gateway"],
            internal=bool(r["internal"]),
            builtin=bool(r["builtin"]),
            mtu=int(r["mtu"]),
            created=float(r["created"]),
            labels=json.loads(r["labels"]),
            subnet6=r["subnet6"],
            gateway6=r["gateway6"],
        )


class EtcFiles:
    """Where an attachment's /etc/hosts, /etc/hostname and /etc/resolv.conf live."""

    files_dir: Path

    @property
    def hosts_path(self) -> Path:
        return self.files_dir / "hosts"

    @property
    def hostname_path(self) -> Path:
        return self.files_dir / "hostname"

    @property
    def resolv_path(self) -> Path:
        return self.files_dir / "resolv.conf"


@dataclass(frozen=True)
class Endpoint(EtcFiles):
    """A container's interface on one network."""

    id: str
    network: str
    network_id: str
    container_id: str
    name: str
    hostname: str
    aliases: tuple[str, ...]
    netns: Path
    ifname: str
    veth: str
    ip: str
    prefixlen: int
    gateway: str
    mac: str
    files_dir: Path
    ip6: str = ""  # "" when the network has no IPv6
    prefixlen6: int = 0
    gateway6: str = ""
    ports: tuple[PortMapping, ...] = ()
    reservations: tuple[socket.socket, ...] = field(default=(), compare=False, repr=False)


@dataclass(frozen=True)
class NetworkMode:
    """`--network` value: kind is bridge|host|none|container|network (user-defined)."""

    kind: str
    target: str = ""

    @classmethod
    def parse(cls, text: str) -> NetworkMode:
        text = text or "default"
        if text in ("default", "bridge"):
            return cls("bridge", DEFAULT_NETWORK)
        if text in ("host", "none"):
            return cls(text)
        if text.startswith("container:"):
            target = text.split(":", 1)[1]
            if not target:
                raise InvalidArgument("--network: container: needs a container name or id")
            return cls("container", target)
        return cls("network", validate_name(text))

    @property
    def own_netns(self) -> bool:
        """True if the container gets a network namespace of its own."""
        return self.kind in ("bridge", "none", "network")


def inspect_shape(n: Network, endpoints: Sequence[Endpoint]) -> dict[str, Any]:
    """Docker's `NetworkResource` (`docker network inspect`) for a network and its endpoints."""
    containers = {
        e.container_id: {
            "Name": e.name,
            "EndpointID": e.id,
            "MacAddress": e.mac,
            "IPv4Address": f"{e.ip}/{e.prefixlen}",
            "IPv6Address": f"{e.ip6}/{e.prefixlen6}" if e.ip6 else "",
        }
        for e in endpoints
    }
    config = [{"Subnet": n.subnet, "Gateway": n.gateway}]
    if n.ipv6:
        config.append({"Subnet": n.subnet6, "Gateway": n.gateway6})
    return {
        "Name": n.name,
        "Id": n.id,
        "Created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(n.created)),
        "Scope": "local",
        "Driver": "bridge",
        "EnableIPv6": n.ipv6,
        "IPAM": {"Driver": "default", "Options": None, "Config": config},
        "Internal": n.internal,
        "Attachable": False,
        "Ingress": False,
        "ConfigFrom": {"Network": ""},
        "ConfigOnly": False,
        "Containers": containers,
        "Options": {
            "com.docker.network.bridge.name": n.bridge,
            "com.docker.network.driver.mtu": str(n.mtu),
        },
        "Labels": n.labels,
    }


def network_settings(endpoints: Sequence[Endpoint]) -> dict[str, Any]:
    """Docker's `NetworkSettings` of a container (`docker inspect`), from its endpoints."""
    ports: dict[str, list[dict[str, str]]] = {}
    networks: dict[str, Any] = {}
    for e in endpoints:
        for m in e.ports:
            binding = {"HostIp": m.host_ip, "HostPort": str(m.host_port)}
            ports.setdefault(f"{m.container_port}/{m.proto}", []).append(binding)
        networks[e.network] = {
            "IPAMConfig": None,
            "Links": None,
            "Aliases": list(e.aliases) or None,
            "MacAddress": e.mac,
            "NetworkID": e.network_id,
            "EndpointID": e.id,
            "Gateway": e.gateway,
            "IPAddress": e.ip,
            "IPPrefixLen": e.prefixlen,
            "IPv6Gateway": e.gateway6,
            "GlobalIPv6Address": e.ip6,
            "GlobalIPv6PrefixLen": e.prefixlen6,
            "DNSNames": [n for n in (e.name, *e.aliases, e.hostname) if n] or None,
        }
    first = endpoints[0] if endpoints else None
    return {
        "SandboxKey": str(first.netns) if first else "",
        "Ports": ports,
        "Gateway": first.gateway if first and first.network == DEFAULT_NETWORK else "",
        "IPAddress": first.ip if first and first.network == DEFAULT_NETWORK else "",
        "IPPrefixLen": first.prefixlen if first and first.network == DEFAULT_NETWORK else 0,
        "MacAddress": first.mac if first and first.network == DEFAULT_NETWORK else "",
        "Networks": networks,
    }
