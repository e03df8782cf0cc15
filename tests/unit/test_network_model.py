"""Network modes, names, veth naming, MACs, firewall rendering (pure parts)."""

from __future__ import annotations

from ipaddress import IPv4Address

import pytest

from dockyard.errors import InvalidArgument
from dockyard.network import firewall
from dockyard.network.bridge import mac_for, veth_name
from dockyard.network.model import NetworkMode, validate_name


@pytest.mark.parametrize(
    ("text", "kind", "target"),
    [
        ("", "bridge", "bridge"),
        ("default", "bridge", "bridge"),
        ("bridge", "bridge", "bridge"),
        ("host", "host", ""),
        ("none", "none", ""),
        ("container:abc", "container", "abc"),
        ("mynet", "network", "mynet"),
    ],
)
def test_mode_parse(text: str, kind: str, target: str) -> None:
    m = NetworkMode.parse(text)
    assert (m.kind, m.target) == (kind, target)
    assert m.own_netns == (kind in ("bridge", "none", "network"))


def test_mode_errors() -> None:
    with pytest.raises(InvalidArgument):
        NetworkMode.parse("container:")
    with pytest.raises(InvalidArgument):
        validate_name("-bad")
    with pytest.raises(InvalidArgument):
        validate_name("a b")
    assert validate_name("my_net.1-x") == "my_net.1-x"


def test_veth_name() -> None:
    host = veth_name("dy", "c" * 64, "n" * 64)
    assert host.startswith("dy") and len(host) == 15
    assert veth_name("dy", "c" * 64, "n" * 64) == host
    assert veth_name("dy", "d" * 64, "n" * 64) != host
    assert len(veth_name("dyt1a2bv", "c", "n")) == 15


def test_mac() -> None:
    assert mac_for(IPv4Address("10.89.0.2")) == "02:42:0a:59:00:02"


def test_firewall_render() -> None:
    bridges = [
        firewall.BridgeNet("b1", "10.1.0.0/24"),
        firewall.BridgeNet("b2", "10.2.0.0/24"),
        firewall.BridgeNet("b3", "10.3.0.0/24", internal=True),
    ]
    dnats = [
        firewall.Dnat("tcp", "0.0.0.0", 8080, "10.1.0.2", 80),
        firewall.Dnat("udp", "127.0.0.1", 5353, "10.2.0.2", 53),
    ]
    text = firewall.render("t", bridges, dnats)
    assert text.startswith("table inet t\ndelete table inet t\ntable inet t {")
    assert 'iifname "b1" oifname { "b2", "b3" } drop' in text
    assert 'iifname "b3" oifname != "b3" drop' in text
    assert 'oifname "b3" iifname != "b3" drop' in text
    assert 'ip saddr 10.1.0.0/24 oifname != "b1" masquerade' in text
    assert "10.3.0.0/24" not in text  # internal: no NAT at all
    assert "meta nfproto ipv4 tcp dport 8080 dnat ip to 10.1.0.2:80" in text
    assert "ip daddr 127.0.0.1 udp dport 5353 dnat ip to 10.2.0.2:53" in text
    assert text.count("fib daddr type local jump ports") == 2


def test_firewall_render_empty_deletes() -> None:
    assert firewall.render("t", [], []) == "table inet t\ndelete table inet t\n"


def test_firewall_render_ports_only() -> None:
    text = firewall.render_ports("t", [firewall.Dnat("tcp", "", 1, "10.0.0.2", 2)])
    assert text.splitlines() == [
        "flush chain inet t ports",
        "add rule inet t ports meta nfproto ipv4 tcp dport 1 dnat ip to 10.0.0.2:2",
    ]


def test_iptables_render() -> None:
    from dockyard.network import firewall_ipt

    bridges = [
        firewall.BridgeNet("b1", "10.1.0.0/24"),
        firewall.BridgeNet("b2", "10.2.0.0/24", True),
    ]
    dnats = [firewall.Dnat("tcp", "", 8080, "10.1.0.2", 80)]
    text = firewall_ipt.render("dockyard", bridges, dnats)
    lines = text.splitlines()
    assert lines[:2] == ["*filter", ":DOCKYARD-FORWARD - [0:0]"]
    assert "-A DOCKYARD-FORWARD -i b1 -o b2 -j DROP" in lines
    assert "-A DOCKYARD-FORWARD -i b2 ! -o b2 -j DROP" in lines
    assert "-A DOCKYARD-OUTPUT -m addrtype --dst-type LOCAL -j DOCKYARD-PORTS" in lines
    assert (
        "-A DOCKYARD-PORTS -p tcp -m tcp --dport 8080 -j DNAT --to-destination 10.1.0.2:80"
    ) in lines
    assert "-A DOCKYARD-POSTROUTING -s 10.1.0.0/24 ! -o b1 -j MASQUERADE" in lines
    assert "10.2.0.0/24" not in text
    assert lines.count("COMMIT") == 2
    # Only our chains are declared (a declaration flushes the chain under --noflush).
    assert all(ln.startswith(":DOCKYARD-") for ln in lines if ln.startswith(":"))
    assert firewall_ipt.render_ports("dockyard", []).splitlines() == [
        "*nat",
        ":DOCKYARD-PORTS - [0:0]",
        "COMMIT",
    ]


def test_network_settings_shape() -> None:
    from pathlib import Path

    from dockyard.network.model import Endpoint, network_settings
    from dockyard.network.portmap import PortMapping

    ep = Endpoint(
        id="e1",
        network="bridge",
        network_id="n1",
        container_id="c1",
        name="web",
        hostname="c1",
        aliases=(),
        netns=Path("/run/dockyard/netns/c1"),
        ifname="eth0",
        veth="dyabc",
        ip="10.89.0.2",
        prefixlen=16,
        gateway="10.89.0.1",
        mac="02:42:0a:59:00:02",
        files_dir=Path("/x"),
        ports=(PortMapping("tcp", "0.0.0.0", 8080, 80), PortMapping("tcp", "127.0.0.1", 8081, 80)),
    )
    ns = network_settings([ep])
    assert ns["Ports"] == {
        "80/tcp": [
            {"HostIp": "0.0.0.0", "HostPort": "8080"},
            {"HostIp": "127.0.0.1", "HostPort": "8081"},
        ]
    }
    assert ns["IPAddress"] == "10.89.0.2" and ns["SandboxKey"] == "/run/dockyard/netns/c1"
    assert ns["Networks"]["bridge"]["Gateway"] == "10.89.0.1"
    assert ns["Networks"]["bridge"]["DNSNames"] == ["web", "c1"]
    assert network_settings([])["Networks"] == {}
