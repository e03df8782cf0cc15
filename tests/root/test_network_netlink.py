"""linux.netlink on the real kernel: veth into a namespace, addresses, routes, errors, nft."""

from __future__ import annotations

import errno
import os
import secrets
from collections.abc import Iterator
from ipaddress import IPv4Address
from pathlib import Path

import pytest

from dockyard.linux import netlink
from dockyard.network import iproute, netns

pytestmark = pytest.mark.root


@pytest.fixture
def env(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    tag = "dyt" + secrets.token_hex(2)
    ns = netns.create(tmp_path / "ns")
    try:
        iproute.ip_batch([["link", "add", "name", f"{tag}br", "type", "bridge"]])
        yield tag, ns
    finally:
        netns.delete(ns)
        for name in iproute.link_names():
            if name.startswith(tag):
                iproute.delete_link(name)
        iproute.run(["nft", "delete", "table", "inet", tag], check=False)


def test_veth_address_route(env: tuple[str, Path]) -> None:
    tag, ns = env
    fd = os.open(ns, os.O_RDONLY)
    try:
        with netlink.Rtnl() as rt:
            rt.add_veth(f"{tag}v", "eth3", fd, 1400, "02:42:0a:00:00:09", rt.index(f"{tag}br"))
            with pytest.raises(OSError) as e:
                rt.add_veth(f"{tag}v", "eth4", fd, 1400, "02:42:0a:00:00:0a", 0)
            assert e.value.errno == errno.EEXIST
    finally:
        os.close(fd)

    def inside() -> None:
        with netlink.Rtnl() as rt:
            idx = rt.index("eth3")
            rt.set_up(1)
            rt.add_addr(idx, IPv4Address("10.250.7.9"), 24)
            rt.set_up(idx)
            rt.add_default_route(IPv4Address("10.250.7.1"), idx)

    netlink.in_netns(str(ns), inside)
    host = iproute.ip_json(["-d", "link", "show", "dev", f"{tag}v"])[0]
    assert host["master"] == f"{tag}br" and host["mtu"] == 1400
    link = iproute.ip_json(["link", "show", "dev", "eth3"], ns)[0]
    assert link["address"] == "02:42:0a:00:00:09" and link["mtu"] == 1400
    addrs = iproute.ip_json(["-4", "addr", "show", "dev", "eth3"], ns)[0]["addr_info"]
    assert [(a["local"], a["prefixlen"]) for a in addrs] == [("10.250.7.9", 24)]
    routes = iproute.ip_json(["route", "show", "default"], ns)
    assert routes[0]["gateway"] == "10.250.7.1" and routes[0]["dev"] == "eth3"
    with netlink.Rtnl() as rt:
        rt.del_link(f"{tag}v")
        with pytest.raises(OSError) as e:
            rt.del_link(f"{tag}v")
        assert e.value.errno == errno.ENODEV
    assert [li["ifname"] for li in iproute.links(ns)] == ["lo"]


def test_nft_run(env: tuple[str, Path]) -> None:
    tag, _ = env
    if not netlink.have_libnftables():
        pytest.skip("libnftables is not installed")
    netlink.nft_run(f"table inet {tag} {{\n\tchain c {{\n\t}}\n}}\n")
    assert f"table inet {tag}" in iproute.run(["nft", "list", "tables"])
    with pytest.raises(OSError, match="No such file or directory"):
        netlink.nft_run(f"flush chain inet {tag} nope\n")
    netlink.nft_run(f"delete table inet {tag}\n")
    assert f"table inet {tag}" not in iproute.run(["nft", "list", "tables"])
