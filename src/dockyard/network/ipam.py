"""IP address management: choosing subnets and leasing addresses, persisted in SQLite.

Responsibility:
- `pick_subnet`: the first subnet of a pool that overlaps none of the host's routes/addresses,
  the resolver addresses, the excluded ranges and the other networks' subnets (pure);
- `pick_subnet6`: an IPv6 /64 (by default) inside a ULA pool (fd00::/8), its free bits taken
  from a hash of a seed (the network id, as RFC 4193 asks for a pseudo-random global ID), that
  overlaps none of the host's IPv6 routes/addresses and the other networks' subnets (pure);
- `Ipam`: address pools per network and leases in the network database. Each allocation runs in
  one `BEGIN IMMEDIATE` transaction, so concurrent processes never get the same address. An
  IPv4 pool lives in `ipam_pools`, an IPv6 one in `ipam_pools6`; both lease into `leases`.

Invariants:
- the gateway is the first host address of a subnet and is never leased; neither are the network
  and broadcast addresses (IPv6: the subnet-router anycast and the all-ones address);
- allocation is sequential from the last address handed out (wrapping round), as Docker does, so
  a just-freed address is not reused at once (stale ARP entries);
- a lease belongs to an owner (an endpoint id) and disappears with `release`, `release_owner`
  or the pool.
"""

from __future__ import annotations

import hashlib
import ipaddress
import sqlite3
from collections.abc import Iterable, Iterator
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

from dockyard.errors import Conflict, FailedPrecondition, InvalidArgument, NotFound
from dockyard.network.db import tx

# Podman's default network; skipped so podman and dockyard can run side by side.
PODMAN_DEFAULT = IPv4Network("10.88.0.0/16")
DEFAULT_POOL_START = IPv4Address("10.89.0.0")
DEFAULT_POOL = IPv4Network("10.0.0.0/8")
ULA_POOL = IPv6Network("fd00::/8")

Net = IPv4Network | IPv6Network
Addr = IPv4Address | IPv6Address
_POOL_TABLE = {4: "ipam_pools", 6: "ipam_pools6"}


def parse_subnet(text: str) -> IPv4Network:
    try:
        net = IPv4Network(text, strict=False)
    except ValueError:
        raise InvalidArgument(
            f"invalid subnet {text!r}: expected an IPv4 CIDR such as 10.90.0.0/24"
        ) from None
    if net.prefixlen > 30:
        raise InvalidArgument(f"subnet {text} is too small: at most /30")
    return net


def parse_subnet6(text: str) -> IPv6Network:
    try:
        net = IPv6Network(text, strict=False)
    except ValueError:
        raise InvalidArgument(
            f"invalid subnet {text!r}: expected an IPv6 CIDR such as fd12:3456:789a::/64"
        ) from None
    if net.prefixlen > 126:
        raise InvalidArgument(f"subnet {text} is too small: at most /126")
    return net


def parse_any_subnet(text: str) -> Net:
    """An IPv4 or IPv6 subnet (`--subnet` may give either)."""
    return parse_subnet6(text) if ":" in text else parse_subnet(text)


def first_host(net: Net) -> Addr:
    return net.network_address + 1


def pick_subnet6(
    used: Iterable[str | IPv6Network],
    seed: str,
    prefixlen: int = 64,
    pool: IPv6Network = ULA_POOL,
    tries: int = 64,
) -> IPv6Network:
    """A `prefixlen` subnet of `pool`, its free bits from a hash of `seed` (then of seed+n),
    overlapping nothing in `used`."""
    if not pool.prefixlen <= prefixlen <= 126:
        raise InvalidArgument(f"cannot take a /{prefixlen} out of {pool}")
    taken: list[IPv6Network] = []
    for u in used:
        try:
            taken.append(u if isinstance(u, IPv6Network) else IPv6Network(u, strict=False))
        except ValueError:
            continue
    bits = prefixlen - pool.prefixlen
    for n in range(tries):
        h = int.from_bytes(hashlib.sha256(f"{seed}\0{n}".encode()).digest()[:16], "big")
        free = h & ((1 << bits) - 1)
        sub = IPv6Network((int(pool.network_address) | (free << (128 - prefixlen)), prefixlen))
        if not any(sub.overlaps(t) for t in taken):
            return sub
    raise FailedPrecondition(
        f"no free /{prefixlen} subnet found in {pool}: every try overlaps a host route or "
        "another network; pass --subnet"
    )


def candidates(
    pool: IPv4Network, prefixlen: int, start: IPv4Address | None
) -> Iterator[IPv4Network]:
    """Subnets of `pool` with `prefixlen`, from the one holding `start` onwards."""
    if prefixlen < pool.prefixlen:
        return
    step = 1 << (32 - prefixlen)
    base = int(pool.network_address)
    first = base
    if start is not None and start in pool:
        first = base + ((int(start) - base) // step) * step
    for addr in range(first, int(pool.broadcast_address) + 1, step):
        yield IPv4Network((addr, prefixlen))


def pick_subnet(
    used: Iterable[str | IPv4Network],
    prefixlen: int,
    pool: IPv4Network = DEFAULT_POOL,
    start: IPv4Address | None = DEFAULT_POOL_START,
    exclude: Iterable[IPv4Network] = (PODMAN_DEFAULT,),
) -> IPv4Network:
    """The first subnet of `pool` (from `start`) overlapping nothing in `used` or `exclude`."""
    taken: list[IPv4Network] = list(exclude)
    for u in used:
        try:
            net = u if isinstance(u, IPv4Network) else IPv4Network(u, strict=False)
        except ValueError:
            continue
        taken.append(net)
    for sub in candidates(pool, prefixlen, start):
        if not any(sub.overlaps(t) for t in taken):
            return sub
    raise FailedPrecondition(
        f"no free /{prefixlen} subnet left in {pool}: every one overlaps a host route or another "
        "network; pass --subnet"
    )


class Ipam:
    """Address pools and leases in the network database."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def add_pool(self, network_id: str, subnet: Net, gateway: Addr) -> None:
        """The network's IPv4 or IPv6 pool (the table follows the subnet's version)."""
        if gateway not in subnet or gateway in (subnet.network_address, subnet.broadcast_address):
            raise InvalidArgument(f"gateway {gateway} is not a host address of subnet {subnet}")
        with tx(self.conn) as c:
            c.execute(
                f"INSERT INTO {_POOL_TABLE[subnet.version]}(network_id, subnet, gateway)"
                " VALUES (?, ?, ?)",
                (network_id, str(subnet), str(gateway)),
            )

    def remove_pool(self, network_id: str) -> None:
        """Drop the network's pools (both versions) and their leases."""
        with tx(self.conn) as c:
            c.execute("DELETE FROM leases WHERE network_id = ?", (network_id,))
            c.execute("DELETE FROM ipam_pools6 WHERE network_id = ?", (network_id,))
            c.execute("DELETE FROM ipam_pools WHERE network_id = ?", (network_id,))

    def _pool(self, network_id: str, version: int) -> tuple[Net, Addr, int]:
        row = self.conn.execute(
            f"SELECT subnet, gateway, next_offset FROM {_POOL_TABLE[version]} WHERE network_id = ?",
            (network_id,),
        ).fetchone()
        if row is None:
            raise NotFound(f"no IPv{version} address pool for network {network_id}")
        net = ipaddress.ip_network(row[0])
        return net, ipaddress.ip_address(row[1]), int(row[2])

    def allocate(
        self, network_id: str, owner: str, ip: str | None = None, version: int = 4
    ) -> Addr:
        """Lease an address of the IPv`version` pool (the requested one, or the next free one)
        to `owner`."""
        with tx(self.conn) as c:
            subnet, gateway, offset = self._pool(network_id, version)
            used = {
                r[0] for r in c.execute("SELECT ip FROM leases WHERE network_id = ?", (network_id,))
            }
            addr = self._requested(subnet, gateway, used, ip) if ip else None
            if addr is None:
                addr = self._next_free(subnet, gateway, used, offset)
            c.execute(
                "INSERT INTO leases(network_id, ip, owner) VALUES (?, ?, ?)",
                (network_id, str(addr), owner),
            )
            c.execute(  # as text: an IPv6 offset may not fit SQLite's 64-bit integers
                f"UPDATE {_POOL_TABLE[version]} SET next_offset = ? WHERE network_id = ?",
                (str(int(addr) - int(subnet.network_address)), network_id),
            )
            return addr

    @staticmethod
    def _requested(subnet: Net, gateway: Addr, used: set[str], ip: str) -> Addr:
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            raise InvalidArgument(f"invalid IPv{subnet.version} address {ip!r}") from None
        if (
            addr.version != subnet.version
            or addr not in subnet
            or addr in (subnet.network_address, subnet.broadcast_address)
        ):
            raise InvalidArgument(f"address {ip} is not a host address of subnet {subnet}")
        if addr == gateway or str(addr) in used:
            raise Conflict(f"Address already in use: {ip}")
        return addr

    @staticmethod
    def _next_free(subnet: Net, gateway: Addr, used: set[str], offset: int) -> Addr:
        size = subnet.num_addresses
        base = int(subnet.network_address)
        for step in range(1, size + 1):
            off = (offset + step) % size
            if off == 0 or off == size - 1:
                continue
            addr: Addr = IPv6Address(base + off) if subnet.version == 6 else IPv4Address(base + off)
            if addr != gateway and str(addr) not in used:
                return addr
        raise FailedPrecondition(
            f"no available IPv{subnet.version} addresses on network subnet {subnet}"
        )

    def release(self, network_id: str, ip: str) -> None:
        with tx(self.conn) as c:
            c.execute("DELETE FROM leases WHERE network_id = ? AND ip = ?", (network_id, ip))

    def release_owner(self, owner: str) -> None:
        with tx(self.conn) as c:
            c.execute("DELETE FROM leases WHERE owner = ?", (owner,))

    def leases(self, network_id: str) -> dict[str, str]:
        """ip -> owner for one network."""
        rows = self.conn.execute(
            "SELECT ip, owner FROM leases WHERE network_id = ?", (network_id,)
        ).fetchall()
        return {str(r[0]): str(r[1]) for r in rows}


def is_ipv4(text: str) -> bool:
    try:
        ipaddress.IPv4Address(text)
    except ValueError:
        return False
    return True
