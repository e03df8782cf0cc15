"""Endpoint rows of the network database: a container's attachment to one network, with its
addresses and published ports.

Responsibility: insert an endpoint with its ports, read endpoints back as `Endpoint`s (joined
with their network for the prefix lengths and gateways), delete one. The manager decides what
to insert and runs these inside its transactions; nothing here touches the kernel.

Invariants: a host port is recorded once (`ports` is UNIQUE on proto, host IP and port), so a
second mapping of it fails with Docker's "port is already allocated"; deleting an endpoint
deletes its ports in the same statement group.
"""

from __future__ import annotations

import json
import socket
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Network, IPv6Network
from pathlib import Path

from dockyard.errors import Conflict
from dockyard.network.model import Endpoint
from dockyard.network.portmap import PortMapping

_SELECT = (
    "SELECT e.*, n.name AS network, n.subnet, n.gateway, n.subnet6, n.gateway6"
    " FROM endpoints e JOIN networks n ON n.id = e.network_id WHERE 1=1"
)


@dataclass(frozen=True)
class Row:
    """A new endpoint's columns."""

    id: str
    network_id: str
    container_id: str
    name: str
    hostname: str
    aliases: tuple[str, ...]
    netns: Path
    ifname: str
    veth: str
    ip: str
    mac: str
    files_dir: Path
    ip6: str = ""


def insert(conn: sqlite3.Connection, r: Row, mappings: Sequence[PortMapping]) -> None:
    """Record an endpoint and its published ports (call inside a transaction)."""
    conn.execute(
        "INSERT INTO endpoints(id, network_id, container_id, name, hostname, aliases, netns,"
        " ifname, veth, ip, mac, files_dir, ip6) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
        (
            r.id,
            r.network_id,
            r.container_id,
            r.name,
            r.hostname,
            json.dumps(list(r.aliases)),
            str(r.netns),
            r.ifname,
            r.veth,
            r.ip,
            r.mac,
            str(r.files_dir),
            r.ip6,
        ),
    )
    for m in mappings:
        try:
            conn.execute(
                "INSERT INTO ports(endpoint_id, proto, host_ip, host_port, container_port)"
                " VALUES (?,?,?,?,?)",
                (r.id, m.proto, m.host_ip, m.host_port, m.container_port),
            )
        except sqlite3.IntegrityError:
            raise Conflict(
                f"Bind for {m.host_ip}:{m.host_port} failed: port is already allocated"
            ) from None


def delete(conn: sqlite3.Connection, endpoint_id: str) -> bool:
    """Delete an endpoint and its ports (call inside a transaction); True if it had ports."""
    had_ports = bool(
        conn.execute("SELECT 1 FROM ports WHERE endpoint_id = ?", (endpoint_id,)).fetchone()
    )
    conn.execute("DELETE FROM ports WHERE endpoint_id = ?", (endpoint_id,))
    conn.execute("DELETE FROM endpoints WHERE id = ?", (endpoint_id,))
    return had_ports


def query(
    conn: sqlite3.Connection,
    held: Mapping[str, Sequence[socket.socket]],
    container_id: str | None = None,
    network_id: str | None = None,
) -> list[Endpoint]:
    """Endpoints (of a container, of a network, or all) in the order they were made; `held`
    gives the port reservations this process holds, by endpoint id."""
    sql = _SELECT
    args: list[str] = []
    if container_id is not None:
        sql += " AND e.container_id = ?"
        args.append(container_id)
    if network_id is not None:
        sql += " AND e.network_id = ?"
        args.append(network_id)
    rows = conn.execute(sql + " ORDER BY e.rowid", args).fetchall()
    return [_endpoint(conn, r, held) for r in rows]


def _endpoint(
    conn: sqlite3.Connection, r: sqlite3.Row, held: Mapping[str, Sequence[socket.socket]]
) -> Endpoint:
    ports = tuple(
        PortMapping(p["proto"], p["host_ip"], p["host_port"], p["container_port"])
        for p in conn.execute("SELECT * FROM ports WHERE endpoint_id = ?", (r["id"],)).fetchall()
    )
    return Endpoint(
        id=r["id"],
        network=r["network"],
        network_id=r["network_id"],
        container_id=r["container_id"],
        name=r["name"],
        hostname=r["hostname"],
        aliases=tuple(json.loads(r["aliases"])),
        netns=Path(r["netns"]),
        ifname=r["ifname"],
        veth=r["veth"],
        ip=r["ip"],
        prefixlen=IPv4Network(r["subnet"]).prefixlen,
        gateway=r["gateway"],
        mac=r["mac"],
        files_dir=Path(r["files_dir"]),
        ip6=r["ip6"],
        prefixlen6=IPv6Network(r["subnet6"]).prefixlen if r["ip6"] else 0,
        gateway6=r["gateway6"] if r["ip6"] else "",
        ports=ports,
        reservations=tuple(held.get(r["id"], ())),
    )
