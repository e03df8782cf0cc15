"""Choosing a new network's subnets and gateways, IPv4 and (with `--ipv6`) IPv6.

Responsibility: from what the user gave (`--subnet`, `--gateway`, once per address family) and
the networks that already exist, decide the new network's address space:
- a given subnet must overlap no other network's subnet of its family (Docker's "Pool overlaps"
  error); the host's routes are not checked, as Docker does not;
- a missing IPv4 subnet is the first free one of the pool (`ipam.pick_subnet`), avoiding the
  host's routes and addresses and its nameservers;
- a missing IPv6 subnet is a ULA /64 (`ipam.pick_subnet6`, seeded by the network id) avoiding
  the host's IPv6 routes and addresses;
- a missing gateway is the subnet's first host address.

Invariants: reads only (the caller runs it inside the transaction that inserts the network, so
two processes cannot pick the same subnet); every address returned is of its family.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from typing import Any

from dockyard.errors import Conflict, InvalidArgument
from dockyard.network import dns, ipam, iproute


@dataclass(frozen=True)
class Pools:
    """Where subnets are taken from when none is given."""

    pool: IPv4Network = ipam.DEFAULT_POOL
    pool_start: IPv4Address = ipam.DEFAULT_POOL_START
    prefixlen: int = 24
    pool6: IPv6Network = ipam.ULA_POOL
    prefixlen6: int = 64


@dataclass(frozen=True)
class Subnets:
    subnet: IPv4Network
    gateway: IPv4Address
    subnet6: IPv6Network | None = None
    gateway6: IPv6Address | None = None


def split_by_family(values: Sequence[str], what: str) -> tuple[str | None, str | None]:
    """`--subnet`/`--gateway` values → (the IPv4 one, the IPv6 one); at most one of each."""
    v4 = [v for v in values if ":" not in v]
    v6 = [v for v in values if ":" in v]
    if len(v4) > 1 or len(v6) > 1:
        raise InvalidArgument(f"only one IPv4 and one IPv6 --{what} are supported")
    return (v4[0] if v4 else None), (v6[0] if v6 else None)


def choose(
    conn: sqlite3.Connection,
    network_id: str,
    pools: Pools,
    subnet: str | None = None,
    gateway: str | None = None,
    subnet6: str | None = None,
    gateway6: str | None = None,
    ipv6: bool = False,
) -> Subnets:
    """The new network's subnets and gateways (IPv6 ones only when `ipv6`)."""
    if (subnet6 or gateway6) and not ipv6:
        raise InvalidArgument("an IPv6 subnet or gateway needs --ipv6 (IPv6 is disabled)")
    if (gateway and not subnet) or (gateway6 and not subnet6):
        raise InvalidArgument("every ip-range or gateway must have a corresponding subnet")
    net = _v4(conn, pools, subnet)
    gw = _gateway(gateway, 4) if gateway else ipam.first_host(net)
    if not ipv6:
        return Subnets(net, _in(gw, net, IPv4Address))
    net6 = _v6(conn, network_id, pools, subnet6)
    gw6 = _gateway(gateway6, 6) if gateway6 else ipam.first_host(net6)
    return Subnets(net, _in(gw, net, IPv4Address), net6, _in(gw6, net6, IPv6Address))


def _in(gw: ipam.Addr, net: ipam.Net, kind: type[Any]) -> Any:
    if not isinstance(gw, kind) or gw not in net:
        raise InvalidArgument(f"gateway {gw} is not a host address of subnet {net}")
    return gw


def _v4(conn: sqlite3.Connection, pools: Pools, subnet: str | None) -> IPv4Network:
    others = [IPv4Network(r[0]) for r in conn.execute("SELECT subnet FROM networks")]
    if subnet:
        net = ipam.parse_subnet(subnet)
        _no_overlap(net, others)
        return net
    used: list[str | IPv4Network] = [*others, *iproute.used_prefixes()]
    used += [f"{ns}/32" for ns in dns.host_nameservers()]
    return ipam.pick_subnet(used, pools.prefixlen, pools.pool, pools.pool_start)


def _v6(
    conn: sqlite3.Connection, network_id: str, pools: Pools, subnet6: str | None
) -> IPv6Network:
    others = [
        IPv6Network(r[0]) for r in conn.execute("SELECT subnet6 FROM networks WHERE subnet6 != ''")
    ]
    if subnet6:
        net = ipam.parse_subnet6(subnet6)
        _no_overlap(net, others)
        return net
    used: list[str | IPv6Network] = [*others, *iproute.used_prefixes(6)]
    return ipam.pick_subnet6(used, network_id, pools.prefixlen6, pools.pool6)


def _no_overlap(net: ipam.Net, others: Sequence[ipam.Net]) -> None:
    for o in others:
        if net.overlaps(o):
            raise Conflict(f"Pool overlaps with other one on this address space: {o}")


def _gateway(text: str, version: int) -> ipam.Addr:
    try:
        return IPv6Address(text) if version == 6 else IPv4Address(text)
    except ValueError:
        raise InvalidArgument(f"invalid IPv{version} gateway address {text!r}") from None
