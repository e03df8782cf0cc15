"""`NetworkManager`: bridge networks, container attachments, and their persistent state.

Responsibility: the one object the engine calls to give a container a network. It owns the
network database (`db`), the namespace run dir (`netns`), the bridges (`bridge`), the firewall
table (`firewall`) and the containers' name-resolution files (`dns`), and keeps them consistent:

- networks: create (subnet picked by `ipam.pick_subnet` unless given; with IPv6, a second
  subnet, a ULA /64 from `ipam.pick_subnet6` unless given), list, inspect (Docker's shape),
  remove, prune; the default network `bridge` (bridge `dockyard0`, first free /16 from
  10.89.0.0, IPv4 only) is created on first use;
- `attach`: reserve host ports (all or nothing) → in one write transaction lease an address
  (and an IPv6 one on an IPv6 network), record the endpoint and its ports and load the
  firewall → plug the veth → write the files and refresh the other members' `/etc/hosts`. Any
  failure undoes the earlier steps;
- `detach`: the reverse; `repair`: drop endpoints whose namespace is gone (after a crash or
  reboot), orphan veths of ours, and reload the firewall;
- `release_detached`: in the process holding an endpoint's port reservations (the container's
  supervisor), close those of endpoints another process detached (`network disconnect`).

Invariants:
- the kernel's firewall table always equals `firewall.render` of the database: it is reloaded
  inside the same `BEGIN IMMEDIATE` transaction that changed networks or ports, so concurrent
  processes cannot interleave stale states; when the last network goes, the table goes;
- every name this manager creates (bridges, veths, table, namespaces) is derived from its
  parameters, so tests run with their own prefixes/pools beside a production instance.
"""

from __future__ import annotations

import builtins
import contextlib
import json
import os
import socket
import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from pathlib import Path
from typing import Any

from dockyard.errors import AlreadyExists, Conflict, InvalidArgument, NotFound, Unavailable
from dockyard.network import (
    bridge,
    db,
    dns,
    endpoints,
    firewall,
    ipam,
    iproute,
    netns,
    portmap,
    subnets,
)
from dockyard.network.model import (
    DEFAULT_NETWORK,
    PREDEFINED,
    Endpoint,
    Network,
    inspect_shape,
    validate_name,
)
from dockyard.network.ports import PortBinding


@dataclass(frozen=True)
class Settings:
    """Names and pools; production defaults, tests pass their own."""

    table: str = firewall.DEFAULT_TABLE
    default_bridge: str = "dockyard0"
    bridge_prefix: str = "dy-"
    veth_prefix: str = "dy"
    pool: IPv4Network = ipam.DEFAULT_POOL
    pool_start: IPv4Address = ipam.DEFAULT_POOL_START
    pool6: IPv6Network = ipam.ULA_POOL  # where `--ipv6` without `--subnet` takes its /64
    prefixlen6: int = 64
    default_prefixlen: int = 16
    user_prefixlen: int = 24
    default_host_ip: str = portmap.DEFAULT_HOST_IP
    mtu: int = 1500
    run_dir: Path = netns.DEFAULT_RUN_DIR
    firewall: str = "auto"  # "nft", "iptables" (fallback, chains DOCKYARD-*) or "auto"
    iptables: str = "iptables"  # the iptables flavour for the fallback (e.g. iptables-legacy)


class NetworkManager:
    def __init__(
        self,
        state_dir: Path,
        settings: Settings | None = None,
        conn: sqlite3.Connection | None = None,
    ) -> None:
        self.state_dir = Path(state_dir)
        self.settings = settings or Settings()
        self.conn = conn or db.connect(self.state_dir / "network.db")
        self.ipam = ipam.Ipam(self.conn)
        self._held: dict[str, list[socket.socket]] = {}
        self.firewall = firewall.Firewall(
            self.settings.table, self.settings.firewall, self.settings.iptables
        )

    def close(self) -> None:
        for socks in list(self._held.values()):
            portmap.release(socks)
        self._held.clear()
        self.conn.close()

    def release_detached(self) -> None:
        """Close the port reservations this process holds for endpoints that are gone from the
        database (detached by another process). Safe to call from a signal handler."""
        if not self._held:
            return
        live = {r[0] for r in self._rows("SELECT id FROM endpoints")}
        for eid in [e for e in list(self._held) if e not in live]:
            portmap.release(self._held.pop(eid, []))

    # ---- namespaces -------------------------------------------------------------------------

    def netns_path(self, container_id: str) -> Path:
        return netns.path_for(self.settings.run_dir, container_id)

    def create_netns(self, container_id: str) -> Path:
        """A new persistent netns for a container (before its first process starts)."""
        return netns.create(self.netns_path(container_id))

    def delete_netns(self, container_id: str) -> None:
        netns.delete(self.netns_path(container_id))

    def setup_none(self, netns_path: Path) -> None:
        """`--network none`: only `lo`, up."""
        bridge.loopback_up(netns_path)

    # ---- networks ---------------------------------------------------------------------------

    def _rows(self, sql: str, args: Sequence[Any] = ()) -> builtins.list[sqlite3.Row]:
        return list(self.conn.execute(sql, tuple(args)).fetchall())

    def list(self) -> builtins.list[Network]:
        return [Network.from_row(r) for r in self._rows("SELECT * FROM networks ORDER BY created")]

    def get(self, name_or_id: str) -> Network:
        """By exact name, exact id, or unique id prefix (as Docker resolves)."""
        rows = self._rows(
            "SELECT * FROM networks WHERE name = ? OR id = ?", (name_or_id, name_or_id)
        )
        if not rows and name_or_id:
            rows = self._rows("SELECT * FROM networks WHERE id LIKE ?", (name_or_id + "%",))
        if len(rows) > 1:
            raise InvalidArgument(f"network {name_or_id} is ambiguous ({len(rows)} matches)")
        if not rows:
            if name_or_id == DEFAULT_NETWORK:
                return self._create_default()
            raise NotFound(f"network {name_or_id} not found")
        return Network.from_row(rows[0])

    def create_network(
        self,
        name: str,
        subnet: str | None = None,
        gateway: str | None = None,
        internal: bool = False,
        labels: dict[str, str] | None = None,
        mtu: int | None = None,
        ipv6: bool = False,
        subnet6: str | None = None,
        gateway6: str | None = None,
        _builtin: bool = False,
    ) -> Network:
        validate_name(name)
        if name in PREDEFINED and not _builtin:
            raise AlreadyExists(f"network with name {name} already exists")
        if ipv6:
            self._check_ipv6()
        s = self.settings
        nid = os.urandom(32).hex()
        pools = subnets.Pools(
            s.pool,
            s.pool_start,
            s.default_prefixlen if _builtin else s.user_prefixlen,
            s.pool6,
            s.prefixlen6,
        )
        with db.tx(self.conn):
            if self._rows("SELECT 1 FROM networks WHERE name = ?", (name,)):
                raise AlreadyExists(f"network with name {name} already exists")
            nets = subnets.choose(
                self.conn, nid, pools, subnet, gateway, subnet6, gateway6, ipv6=ipv6
            )
            br = (
                s.default_bridge
                if _builtin
                else f"{s.bridge_prefix}{nid[: 15 - len(s.bridge_prefix)]}"
            )
            self.ipam.add_pool(nid, nets.subnet, nets.gateway)
            if nets.subnet6 is not None and nets.gateway6 is not None:
                self.ipam.add_pool(nid, nets.subnet6, nets.gateway6)
            self.conn.execute(
                "INSERT INTO networks(id, name, bridge, subnet, gateway, subnet6, gateway6,"
                " internal, builtin, mtu, created, labels) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    nid,
                    name,
                    br,
                    str(nets.subnet),
                    str(nets.gateway),
                    str(nets.subnet6 or ""),
                    str(nets.gateway6 or ""),
                    int(internal),
                    int(_builtin),
                    mtu or s.mtu,
                    time.time(),
                    json.dumps(labels or {}),
                ),
            )
            network = self.get(nid)
            try:
                self._ensure_bridge(network)
                self._apply_firewall()
            except BaseException:
                bridge.delete_bridge(br)
                raise
        return network

    def _check_ipv6(self) -> None:
        if not Path("/proc/sys/net/ipv6").exists():
            raise Unavailable("IPv6 is not available on this host (no net.ipv6 sysctls)")
        if self.firewall.backend != "nft":
            raise InvalidArgument("IPv6 networks need the nftables firewall backend")

    def _create_default(self) -> Network:
        try:
            return self.create_network(DEFAULT_NETWORK, _builtin=True)
        except AlreadyExists:  # another process made it meanwhile
            return self.get(DEFAULT_NETWORK)

    def _ensure_bridge(self, n: Network) -> bool:
        """Create the bridge if missing (first use, or after a reboot); True if created."""
        net = IPv4Network(n.subnet)
        v6 = (IPv6Network(n.subnet6), IPv6Address(n.gateway6)) if n.ipv6 else None
        created = bridge.ensure_bridge(n.bridge, net, IPv4Address(n.gateway), n.mtu, v6)
        if created and not n.internal:
            firewall.enable_forwarding()
        return created

    def remove_network(self, name_or_id: str, force_builtin: bool = False) -> None:
        n = self.get(name_or_id)
        if n.builtin and not force_builtin:
            raise Conflict(f"{n.name} is a pre-defined network and cannot be removed")
        with db.tx(self.conn):
            if self._rows("SELECT 1 FROM endpoints WHERE network_id = ?", (n.id,)):
                raise Conflict(
                    f"error while removing network: network {n.name} id {n.id} has active endpoints"
                )
            self.ipam.remove_pool(n.id)
            self.conn.execute("DELETE FROM networks WHERE id = ?", (n.id,))
            self._apply_firewall()
            bridge.delete_bridge(n.bridge)

    def prune(self) -> builtins.list[str]:
        """Remove user-defined networks without endpoints; return their names."""
        removed: builtins.list[str] = []
        for n in self.list():
            if n.builtin:
                continue
            with contextlib.suppress(Conflict, NotFound):
                self.remove_network(n.id)
                removed.append(n.name)
        return removed

    def inspect(self, name_or_id: str) -> dict[str, Any]:
        """Docker's `NetworkResource` shape."""
        n = self.get(name_or_id)
        return inspect_shape(n, self.endpoints(network_id=n.id))

    # ---- endpoints --------------------------------------------------------------------------

    def endpoints(
        self, container_id: str | None = None, network_id: str | None = None
    ) -> builtins.list[Endpoint]:
        """Endpoints of a container, of a network, or all, in the order they were made."""
        return endpoints.query(self.conn, self._held, container_id, network_id)

    def attach(
        self,
        container_id: str,
        netns_path: Path,
        network: str = DEFAULT_NETWORK,
        aliases: Iterable[str] = (),
        ports: Sequence[PortBinding] = (),
        hostname: str = "",
        name: str = "",
        ip: str | None = None,
        files_dir: Path | None = None,
        ip6: str | None = None,
    ) -> Endpoint:
        """Connect a container's netns to a network; see the module docstring for the steps."""
        n = self.get(network)
        if self.endpoints(container_id, n.id):
            raise Conflict(
                f"endpoint with name {name or container_id} already exists in network {n.name}"
            )
        if self._ensure_bridge(n):
            with db.tx(self.conn):
                self._apply_firewall()
        # As Docker: ports are not published from internal networks (no way in or out).
        wanted = () if n.internal else ports
        mappings, socks = portmap.reserve(wanted, self.settings.default_host_ip)
        try:
            ep = self._record(
                n, container_id, netns_path, aliases, mappings, hostname, name, (ip, ip6), files_dir
            )
        except BaseException:
            portmap.release(socks)
            raise
        self._held[ep.id] = socks
        try:
            first = len(self.endpoints(container_id)) == 1
            bridge.plug(
                bridge.Plug(
                    bridge=n.bridge,
                    veth=ep.veth,
                    netns=netns_path,
                    ifname=ep.ifname,
                    ip=IPv4Address(ep.ip),
                    prefixlen=ep.prefixlen,
                    gateway=IPv4Address(ep.gateway),
                    mac=ep.mac,
                    mtu=n.mtu,
                    default_route=first and not n.internal,
                    ip6=IPv6Address(ep.ip6) if ep.ip6 else None,
                    prefixlen6=ep.prefixlen6,
                    gateway6=IPv6Address(ep.gateway6) if ep.ip6 else None,
                )
            )
            self._refresh_files(container_id, n.id)
        except BaseException:
            self._forget(ep)
            raise
        return self.endpoints(container_id, n.id)[0]

    def _record(
        self,
        n: Network,
        container_id: str,
        netns_path: Path,
        aliases: Iterable[str],
        mappings: Sequence[portmap.PortMapping],
        hostname: str,
        name: str,
        ips: tuple[str | None, str | None],
        files_dir: Path | None,
    ) -> Endpoint:
        if ips[1] and not n.ipv6:
            raise InvalidArgument(
                f"user specified IPv6 address {ips[1]}: network {n.name} has no IPv6"
            )
        eid = os.urandom(32).hex()
        veth = bridge.veth_name(self.settings.veth_prefix, container_id, n.id)
        used = {e.ifname for e in self.endpoints(container_id)}
        ifname = next(f"eth{i}" for i in range(len(used) + 1) if f"eth{i}" not in used)
        fdir = files_dir or self.state_dir / "containers" / container_id
        with db.tx(self.conn) as c:
            addr = self.ipam.allocate(n.id, eid, ips[0])
            assert isinstance(addr, IPv4Address)
            addr6 = self.ipam.allocate(n.id, eid, ips[1], version=6) if n.ipv6 else ""
            row = endpoints.Row(
                id=eid,
                network_id=n.id,
                container_id=container_id,
                name=name,
                hostname=hostname or container_id[:12],
                aliases=tuple(aliases),
                netns=netns_path,
                ifname=ifname,
                veth=veth,
                ip=str(addr),
                mac=bridge.mac_for(addr),
                files_dir=fdir,
                ip6=str(addr6),
            )
            endpoints.insert(c, row, mappings)
            if mappings:
                self._apply_firewall(ports_only=True)
        return self.endpoints(container_id, n.id)[0]

    def _forget(self, ep: Endpoint) -> None:
        """Remove an endpoint's rows, lease, rules, veth and held sockets."""
        with db.tx(self.conn) as c:
            had_ports = endpoints.delete(c, ep.id)
            self.ipam.release_owner(ep.id)
            if had_ports:
                self._apply_firewall(ports_only=True)
        bridge.unplug(ep.veth)
        portmap.release(self._held.pop(ep.id, []))

    def detach(self, container_id: str, network: str | None = None) -> None:
        """Disconnect a container from one network, or from all when `network` is None."""
        eps = self.endpoints(container_id)
        if network is not None:
            n = self.get(network)
            eps = [e for e in eps if e.network_id == n.id]
            if not eps:
                raise NotFound(f"container {container_id} is not connected to network {n.name}")
        for ep in eps:
            self._forget(ep)
            self._refresh_files(container_id, ep.network_id)

    # ---- files ------------------------------------------------------------------------------

    def _refresh_files(self, container_id: str, network_id: str) -> None:
        """Rewrite the files of `container_id` and of the other members of a user network."""
        n = self._rows("SELECT builtin FROM networks WHERE id = ?", (network_id,))
        members = {container_id}
        if n and not n[0]["builtin"]:
            members |= {e.container_id for e in self.endpoints(network_id=network_id)}
        for cid in members:
            self.write_files(cid)

    def write_files(self, container_id: str) -> None:
        """(Re)write hosts, hostname and resolv.conf of a container from its endpoints."""
        own = self.endpoints(container_id)
        if not own:
            return
        first = own[0]
        peers: builtins.list[tuple[str, Sequence[str]]] = []
        for ep in own:
            if self._rows("SELECT 1 FROM networks WHERE id = ? AND builtin = 0", (ep.network_id,)):
                peers += [
                    (addr, [o.name, *o.aliases, o.hostname])
                    for o in self.endpoints(network_id=ep.network_id)
                    if o.container_id != container_id
                    for addr in (o.ip, o.ip6)
                    if addr
                ]
        mine = [(a, [first.hostname, *ep.aliases]) for ep in own for a in (ep.ip, ep.ip6) if a]
        hosts = dns.render_hosts(mine, peers, dns.read_extra_hosts(first.files_dir))
        dns.write_file(first.hosts_path, hosts)
        dns.write_file(first.hostname_path, dns.render_hostname(first.hostname))
        if not first.resolv_path.exists():
            dns.write_file(first.resolv_path, dns.render_resolv(dns.host_resolv_text()))

    # ---- firewall, repair, teardown ---------------------------------------------------------

    def _apply_firewall(self, ports_only: bool = False) -> None:
        """Make the kernel's rules equal the database's state (call inside `db.tx`)."""
        bridges = [firewall.BridgeNet(n.bridge, n.subnet, n.internal) for n in self.list()]
        dnats = [
            firewall.Dnat(r["proto"], r["host_ip"], r["host_port"], r["ip"], r["container_port"])
            for r in self._rows(
                "SELECT p.*, e.ip FROM ports p JOIN endpoints e ON e.id = p.endpoint_id"
                " JOIN networks n ON n.id = e.network_id WHERE n.internal = 0 ORDER BY p.rowid"
            )
        ]
        self.firewall.apply(bridges, dnats, ports_only)

    def repair(self) -> builtins.list[str]:
        """Clean up after a crash; return what was removed (endpoint ids, link names)."""
        removed: builtins.list[str] = []
        for ep in self.endpoints():
            if not netns.is_netns(ep.netns):
                self._forget(ep)
                self._refresh_files(ep.container_id, ep.network_id)
                removed.append(ep.id)
        ours = {n.bridge for n in self.list()}
        known = {e.veth for e in self.endpoints()}
        for link in iproute.links():
            name = str(link.get("ifname", ""))
            kind = link.get("linkinfo", {}).get("info_kind")
            if (
                kind == "veth"
                and name.startswith(self.settings.veth_prefix)
                and link.get("master") in ours
                and name not in known
            ):
                bridge.unplug(name)
                removed.append(name)
        with db.tx(self.conn):
            self._apply_firewall()
        return removed

    def teardown(self) -> None:
        """Remove every endpoint and network of this manager, and the firewall table."""
        for ep in self.endpoints():
            self._forget(ep)
        for n in self.list():
            self.remove_network(n.id, force_builtin=True)
        self.firewall.delete()
