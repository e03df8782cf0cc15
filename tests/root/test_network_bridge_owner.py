"""A bridge that exists under our name but without our gateway address is not ours
(`network.bridge.ensure_bridge`): Conflict, never a container on a subnet the host has no
route for."""

from __future__ import annotations

import secrets
from ipaddress import IPv4Network

import pytest

from dockyard.errors import Conflict
from dockyard.network import bridge, iproute

pytestmark = pytest.mark.root


def _free_subnet() -> IPv4Network:
    used = [IPv4Network(p, strict=False) for p in iproute.used_prefixes(4)]
    for third in range(100, 250):
        net = IPv4Network(f"10.252.{third}.0/24")
        if not any(net.overlaps(u) for u in used):
            return net
    pytest.skip("no free 10.252.x.0/24 here")


def test_a_bridge_without_our_address_is_refused() -> None:
    name = "dq" + secrets.token_hex(3)
    theirs = _free_subnet()
    iproute.ip_batch(
        [
            ["link", "add", "name", name, "type", "bridge"],
            ["addr", "add", f"{next(theirs.hosts())}/{theirs.prefixlen}", "dev", name],
        ]
    )
    try:
        ours = IPv4Network(f"{theirs.network_address + 256}/24")
        with pytest.raises(Conflict, match=f"bridge {name} exists with {next(theirs.hosts())}"):
            bridge.ensure_bridge(name, ours, next(ours.hosts()), 1500)
        # the owner itself: the bridge is there already, nothing to do
        assert bridge.ensure_bridge(name, theirs, next(theirs.hosts()), 1500) is False
    finally:
        iproute.delete_link(name)
    assert not iproute.link_exists(name)
