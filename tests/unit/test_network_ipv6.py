"""IPv6 on user networks without the kernel: ULA subnet choice, IPv6 pools and leases, the
schema upgrade of an older network database, subnet/gateway choice, inspect shapes, and the
`--add-host` record that every hosts rendering includes."""

from __future__ import annotations

import json
import sqlite3
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from pathlib import Path

import pytest

from dockyard.errors import Conflict, FailedPrecondition, InvalidArgument
from dockyard.network import db, dns, subnets
from dockyard.network.ipam import Ipam, parse_subnet6, pick_subnet6
from dockyard.network.model import Endpoint, Network, inspect_shape, network_settings

NET6 = IPv6Network("fd12:3456:789a:1::/64")


def test_pick_subnet6_is_ula_seeded_and_avoids_used() -> None:
    a = pick_subnet6([], "net-a")
    assert a.prefixlen == 64 and a.subnet_of(IPv6Network("fd00::/8"))
    assert pick_subnet6([], "net-a") == a  # deterministic for one seed
    assert pick_subnet6([], "net-b") != a
    b = pick_subnet6([a, "fd00::/64", "not a prefix"], "net-a")
    assert b != a and not b.overlaps(a)
    small = pick_subnet6([], "x", prefixlen=80, pool=IPv6Network("fd99::/64"))
    assert small.prefixlen == 80 and small.subnet_of(IPv6Network("fd99::/64"))
    with pytest.raises(FailedPrecondition, match="pass --subnet"):
        pick_subnet6(["fd00::/8"], "x")


def test_parse_subnet6() -> None:
    assert parse_subnet6("fd12:3456:789a:1::5/64") == NET6
    for bad in ("10.0.0.0/24", "nope", "fd00::/127"):
        with pytest.raises(InvalidArgument):
            parse_subnet6(bad)


def _ipam(tmp_path: Path) -> Ipam:
    ipam = Ipam(db.connect(tmp_path / "n.db"))
    ipam.add_pool("n1", IPv4Network("10.201.0.0/29"), IPv4Address("10.201.0.1"))
    ipam.add_pool("n1", NET6, IPv6Address("fd12:3456:789a:1::1"))
    return ipam


def test_ipv6_leases_beside_ipv4(tmp_path: Path) -> None:
    ipam = _ipam(tmp_path)
    assert str(ipam.allocate("n1", "e1")) == "10.201.0.2"
    assert str(ipam.allocate("n1", "e1", version=6)) == "fd12:3456:789a:1::2"
    assert str(ipam.allocate("n1", "e2", version=6)) == "fd12:3456:789a:1::3"
    far = "fd12:3456:789a:1:ffff:ffff:ffff:fff0"  # an offset beyond SQLite's signed 64 bits
    assert str(ipam.allocate("n1", "e3", far, version=6)) == far
    assert str(ipam.allocate("n1", "e4", version=6)) == "fd12:3456:789a:1:ffff:ffff:ffff:fff1"
    with pytest.raises(Conflict, match="Address already in use"):
        ipam.allocate("n1", "e5", "fd12:3456:789a:1:0::2", version=6)  # same address, other text
    with pytest.raises(Conflict):
        ipam.allocate("n1", "e5", "fd12:3456:789a:1::1", version=6)  # the gateway
    for bad in ("fd12:3456:789a:2::9", "10.201.0.5", "fd12:3456:789a:1::"):
        with pytest.raises(InvalidArgument):
            ipam.allocate("n1", "e5", bad, version=6)
    ipam.release_owner("e1")
    assert sorted(ipam.leases("n1")) == sorted(
        ["fd12:3456:789a:1::3", far, "fd12:3456:789a:1:ffff:ffff:ffff:fff1"]
    )
    ipam.remove_pool("n1")
    assert ipam.leases("n1") == {}
    assert ipam.conn.execute("SELECT COUNT(*) FROM ipam_pools6").fetchone()[0] == 0


_OLD_SCHEMA = """
CREATE TABLE networks(id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, bridge TEXT NOT NULL UNIQUE,
    subnet TEXT NOT NULL, gateway TEXT NOT NULL, internal INTEGER NOT NULL,
    builtin INTEGER NOT NULL, mtu INTEGER NOT NULL, created REAL NOT NULL,
    labels TEXT NOT NULL DEFAULT '{}');
CREATE TABLE endpoints(id TEXT PRIMARY KEY, network_id TEXT NOT NULL, container_id TEXT NOT NULL,
    name TEXT NOT NULL, hostname TEXT NOT NULL, aliases TEXT NOT NULL, netns TEXT NOT NULL,
    ifname TEXT NOT NULL, veth TEXT NOT NULL UNIQUE, ip TEXT NOT NULL, mac TEXT NOT NULL,
    files_dir TEXT NOT NULL);
INSERT INTO networks VALUES ('n1', 'old', 'br1', '10.9.0.0/24', '10.9.0.1', 0, 0, 1500, 0, '{}');
"""


def test_old_database_is_upgraded(tmp_path: Path) -> None:
    path = tmp_path / "network.db"
    old = sqlite3.connect(path)
    old.executescript(_OLD_SCHEMA)
    old.close()
    conn = db.connect(path)
    n = Network.from_row(conn.execute("SELECT * FROM networks").fetchone())
    assert n.name == "old" and n.subnet6 == "" and not n.ipv6
    cols = {r[1] for r in conn.execute("PRAGMA table_info(endpoints)")}
    assert "ip6" in cols
    assert conn.execute("PRAGMA user_version").fetchone()[0] == db.VERSION
    conn.close()
    db.connect(path).close()  # a second open finds nothing to do


def test_choose_subnets(tmp_path: Path) -> None:
    conn = db.connect(tmp_path / "n.db")
    conn.execute(
        "INSERT INTO networks(id, name, bridge, subnet, gateway, subnet6, gateway6, internal,"
        " builtin, mtu, created) VALUES ('x', 'x', 'bx', '10.7.0.0/24', '10.7.0.1', ?, ?,"
        " 0, 0, 1500, 0)",
        (str(NET6), "fd12:3456:789a:1::1"),
    )
    pools = subnets.Pools()
    got = subnets.choose(conn, "n", pools, "10.8.0.0/24", None, "fd77::/64", "fd77::9", ipv6=True)
    assert got == subnets.Subnets(
        IPv4Network("10.8.0.0/24"),
        IPv4Address("10.8.0.1"),
        IPv6Network("fd77::/64"),
        IPv6Address("fd77::9"),
    )
    with pytest.raises(Conflict, match="overlaps"):
        subnets.choose(conn, "n", pools, "10.8.0.0/24", None, str(NET6), ipv6=True)
    with pytest.raises(InvalidArgument, match="--ipv6"):
        subnets.choose(conn, "n", pools, "10.8.0.0/24", None, "fd77::/64")
    with pytest.raises(InvalidArgument, match="not a host address"):
        subnets.choose(conn, "n", pools, "10.8.0.0/24", None, "fd77::/64", "fd78::1", ipv6=True)
    with pytest.raises(InvalidArgument, match="corresponding subnet"):
        subnets.choose(conn, "n", pools, "10.8.0.0/24", None, None, "fd77::1", ipv6=True)
    assert subnets.split_by_family(["fd77::/64", "10.8.0.0/24"], "subnet") == (
        "10.8.0.0/24",
        "fd77::/64",
    )
    with pytest.raises(InvalidArgument, match="one IPv4 and one IPv6"):
        subnets.split_by_family(["10.1.0.0/24", "10.2.0.0/24"], "subnet")


def test_inspect_shapes_with_ipv6() -> None:
    n = Network(
        "n1", "six", "br", "10.8.0.0/24", "10.8.0.1", False, False, 1500, 0.0, {},
        str(NET6), "fd12:3456:789a:1::1",
    )  # fmt: skip
    ep = Endpoint(
        id="e1", network="six", network_id="n1", container_id="c1", name="web", hostname="c1",
        aliases=(), netns=Path("/ns"), ifname="eth0", veth="v", ip="10.8.0.2", prefixlen=24,
        gateway="10.8.0.1", mac="02:42:0a:08:00:02", files_dir=Path("/x"),
        ip6="fd12:3456:789a:1::2", prefixlen6=64, gateway6="fd12:3456:789a:1::1",
    )  # fmt: skip
    shape = inspect_shape(n, [ep])
    assert shape["EnableIPv6"] is True
    assert shape["IPAM"]["Config"] == [
        {"Subnet": "10.8.0.0/24", "Gateway": "10.8.0.1"},
        {"Subnet": str(NET6), "Gateway": "fd12:3456:789a:1::1"},
    ]
    assert shape["Containers"]["c1"]["IPv6Address"] == "fd12:3456:789a:1::2/64"
    net = network_settings([ep])["Networks"]["six"]
    assert (net["GlobalIPv6Address"], net["GlobalIPv6PrefixLen"], net["IPv6Gateway"]) == (
        "fd12:3456:789a:1::2",
        64,
        "fd12:3456:789a:1::1",
    )
    json.dumps(shape)


def test_extra_hosts_record(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dns, "HOST_RESOLV", tmp_path / "absent")
    d = tmp_path / "c1"
    dns.write_extra_hosts(d, ["a.example:10.1.2.3", "b.example=fd00::7", "c.example:[fd00::8]"])
    pairs = dns.read_extra_hosts(d)
    assert pairs == [("a.example", "10.1.2.3"), ("b.example", "fd00::7"), ("c.example", "fd00::8")]
    hosts = dns.render_hosts([("10.0.0.2", ["c1"])], [], pairs)
    assert "10.1.2.3\ta.example\n" in hosts and "fd00::7\tb.example\n" in hosts
    dns.write_standalone(d, "c1", host_mode=False)
    assert "fd00::8\tc.example\n" in (d / "hosts").read_text()
    dns.write_extra_hosts(d, [])
    assert dns.read_extra_hosts(d) == [] and not (d / dns.EXTRA_HOSTS).exists()
