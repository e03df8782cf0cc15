"""Container networking on the real kernel: bridges, veths, netns, nftables, published ports.

Safety: every name (bridges, veths, nft table, namespaces) carries this run's random tag; subnets
come from a random start in 10.200-10.249 and are checked against the host's routes; before a
packet goes to a container address the test asserts the host routes it via the test's bridge.
Traffic goes only to loopback, the host's own address, or into namespaces made here. The fixture
removes everything (endpoints, networks, table, namespaces, processes, sysctl) even on failure.
"""

from __future__ import annotations

import contextlib
import random
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest

from dockyard.errors import Conflict
from dockyard.network import firewall, firewall_ipt, iproute, netns
from dockyard.network.manager import NetworkManager, Settings
from dockyard.network.ports import parse_port_specs

pytestmark = pytest.mark.root
BUSYBOX = "/bin/busybox"


@dataclass
class Harness:
    tag: str
    tmp: Path
    settings: Settings
    mgr: NetworkManager
    namespaces: list[Path] = field(default_factory=list)
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def ns(self, name: str) -> Path:
        p = self.mgr.create_netns(name)
        self.namespaces.append(p)
        return p

    def run_in(self, ns: Path, *argv: str, timeout: float = 10) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["nsenter", f"--net={ns}", "--", *argv],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def spawn_in(self, ns: Path, *argv: str) -> subprocess.Popen[bytes]:
        p = subprocess.Popen(
            ["nsenter", f"--net={ns}", "--", *argv],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.procs.append(p)
        return p

    def ping(self, ns: Path, target: str) -> bool:
        return self.run_in(ns, BUSYBOX, "ping", "-c", "1", "-W", "1", target).returncode == 0

    def new_manager(self) -> NetworkManager:
        return NetworkManager(self.tmp / "state", self.settings)

    def ports_rules(self) -> list[str]:
        if self.settings.firewall == "iptables":
            chain = firewall_ipt.chain(self.tag, "PORTS")
            argv = [self.settings.iptables, "-t", "nat", "-S", chain]
        else:
            argv = ["nft", "list", "chain", "inet", self.settings.table, "ports"]
        out = iproute.run(argv, check=False)
        return [ln.strip() for ln in out.splitlines() if "dnat" in ln.lower()]

    def flush_forward_rules(self) -> None:
        if self.settings.firewall == "iptables":
            chain = firewall_ipt.chain(self.tag, "FORWARD")
            iproute.run([self.settings.iptables, "-F", chain])
        else:
            iproute.run(["nft", "flush", "chain", "inet", self.settings.table, "forward"])

    def firewall_exists(self) -> bool:
        if self.settings.firewall == "iptables":
            return firewall_ipt.exists(self.tag, self.settings.iptables)
        return firewall.table_exists(self.settings.table)


def _assert_via_bridge(addr: str, bridge: str) -> None:
    dev = iproute.route_get_dev(addr)
    assert dev == bridge, f"{addr} would leave via {dev!r}, not the test bridge {bridge}"


def _links_with(prefix: str) -> list[str]:
    return sorted(n for n in iproute.link_names() if n.startswith(prefix))


def _iptables() -> str:
    """The iptables flavour for the fallback tests: legacy when present, so the nft-backed
    `ip filter`/`ip nat` tables that podman/netavark share stay untouched."""
    return "iptables-legacy" if shutil.which("iptables-legacy") else "iptables"


@pytest.fixture(params=["nft", "iptables"])
def h(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Harness]:
    backend = str(request.param)
    if backend == "iptables" and not shutil.which(_iptables() + "-restore"):
        pytest.skip("iptables is not installed")
    tag = "dyt" + secrets.token_hex(2)
    settings = Settings(
        table=tag,
        default_bridge=f"{tag}b0",
        bridge_prefix=f"{tag}n",
        veth_prefix=f"{tag}v",
        pool_start=IPv4Address(f"10.{random.randrange(200, 250)}.0.0"),
        default_prefixlen=24,
        run_dir=tmp_path / "netns",
        firewall=backend,
        iptables=_iptables(),
    )
    forward = iproute.read_sysctl("net.ipv4.ip_forward")
    harness = Harness(tag, tmp_path, settings, NetworkManager(tmp_path / "state", settings))
    try:
        yield harness
    finally:
        for p in harness.procs:
            with contextlib.suppress(OSError):
                p.kill()
            with contextlib.suppress(Exception):
                p.wait(5)
        with contextlib.suppress(Exception):
            harness.mgr.teardown()
        with contextlib.suppress(Exception):
            harness.mgr.close()
        for ns in harness.namespaces:
            netns.delete(ns)
        for name in _links_with(tag):
            iproute.delete_link(name)
        iproute.run(["nft", "delete", "table", "inet", tag], check=False)
        if backend == "iptables":
            firewall_ipt.delete(tag, settings.iptables)
        iproute.write_sysctl("net.ipv4.ip_forward", forward)
        assert _links_with(tag) == []


def test_two_namespaces_on_the_default_bridge_reach_each_other(h: Harness) -> None:
    a, b = h.ns("ca"), h.ns("cb")
    ea = h.mgr.attach("ca", a)
    eb = h.mgr.attach("cb", b)
    assert ea.network == eb.network == "bridge" and ea.ip != eb.ip
    assert ea.gateway == eb.gateway and ea.ifname == "eth0"
    _assert_via_bridge(eb.ip, h.settings.default_bridge)
    link = iproute.ip_json(["link", "show", "dev", "eth0"], a)[0]
    assert link["address"] == ea.mac and link["mtu"] == 1500
    assert h.ping(a, eb.ip) and h.ping(b, ea.ip)
    srv = h.spawn_in(b, BUSYBOX, "nc", "-l", "-p", "7000", "-e", "echo", "hi-from-b")
    for _ in range(50):
        r = h.run_in(a, BUSYBOX, "nc", "-w", "2", eb.ip, "7000")
        if r.stdout:
            break
        time.sleep(0.05)
    assert r.stdout == "hi-from-b\n"
    srv.wait(5)
    assert eb.resolv_path.read_text().count("nameserver") >= 1
    assert "127.0.0.53" not in eb.resolv_path.read_text()
    assert eb.hostname_path.read_text() == "cb\n"


def test_user_network_names_via_hosts_files(h: Harness) -> None:
    net = h.mgr.create_network("front")
    a, b = h.ns("ca"), h.ns("cb")
    ea = h.mgr.attach("ca", a, "front", name="alpha", aliases=["web"])
    eb = h.mgr.attach("cb", b, "front", name="beta")
    assert f"{eb.ip}\tbeta cb" in ea.hosts_path.read_text()
    assert f"{ea.ip}\talpha web ca" in eb.hosts_path.read_text()
    _assert_via_bridge(eb.ip, net.bridge)
    script = f"mount --bind {ea.hosts_path} /etc/hosts && exec {BUSYBOX} ping -c 1 -W 1 beta"
    r = h.run_in(a, "unshare", "-m", "sh", "-c", script)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"({eb.ip})" in r.stdout
    info = h.mgr.inspect("front")
    assert set(info["Containers"]) == {"ca", "cb"}
    assert info["Options"]["com.docker.network.bridge.name"] == net.bridge
    h.mgr.detach("cb")
    assert "beta" not in ea.hosts_path.read_text()
    with pytest.raises(Conflict, match="active endpoints"):
        h.mgr.remove_network("front")


def test_two_networks_are_isolated(h: Harness) -> None:
    n1 = h.mgr.create_network("one")
    n2 = h.mgr.create_network("two")
    assert n1.subnet != n2.subnet
    a, b = h.ns("ca"), h.ns("cb")
    h.mgr.attach("ca", a, "one")
    eb = h.mgr.attach("cb", b, "two")
    _assert_via_bridge(eb.ip, n2.bridge)
    assert iproute.read_sysctl("net.ipv4.ip_forward") == "1"
    assert not h.ping(a, eb.ip)
    # Control: without our forward rules the same packet gets through, so the drop did it.
    h.flush_forward_rules()
    assert h.ping(a, eb.ip)


def test_none_has_only_loopback(h: Harness) -> None:
    ns = h.ns("cn")
    h.mgr.setup_none(ns)
    links = iproute.links(ns)
    assert [li["ifname"] for li in links] == ["lo"]
    assert "UP" in links[0]["flags"]


def _host_address() -> str:
    for link in iproute.ip_json(["-4", "addr", "show"]):
        for a in link.get("addr_info", []):
            if a.get("scope") == "global" and not link["ifname"].startswith("dy"):
                return str(a["local"])
    pytest.skip("the host has no non-loopback IPv4 address")


def _get(url: str, deadline: float = 8.0) -> str:
    end = time.monotonic() + deadline
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                return str(r.read().decode())
        except OSError:
            if time.monotonic() > end:
                raise
            time.sleep(0.1)


def test_published_port_on_loopback_and_host_address(h: Harness) -> None:
    a = h.ns("ca")
    www = h.tmp / "www"
    www.mkdir()
    (www / "index.html").write_text("hello-dockyard")
    ep = h.mgr.attach("ca", a, ports=parse_port_specs(["8080"]))
    (m,) = ep.ports
    assert m.host_ip == "0.0.0.0" and m.container_port == 8080 and m.host_port > 0
    _assert_via_bridge(ep.ip, h.settings.default_bridge)
    host_ip = _host_address()
    assert iproute.route_get_dev(host_ip) == "lo"  # the host's own address stays local
    h.spawn_in(
        a, sys.executable, "-m", "http.server", "8080", "--bind", "0.0.0.0", "--directory", str(www)
    )
    assert _get(f"http://127.0.0.1:{m.host_port}/") == "hello-dockyard"
    assert _get(f"http://{host_ip}:{m.host_port}/") == "hello-dockyard"
    # Hairpin: the container reaches its own published port through the gateway address.
    url = f"http://{ep.gateway}:{m.host_port}/"
    fetch = f"import urllib.request as u; print(u.urlopen({url!r}, timeout=3).read().decode())"
    r = h.run_in(a, sys.executable, "-c", fetch)
    assert r.stdout == "hello-dockyard\n", r.stderr
    # Freed on detach and reusable.
    h.mgr.detach("ca")
    assert h.ports_rules() == []
    s = socket.socket()
    s.bind(("0.0.0.0", m.host_port))
    s.close()
    ep2 = h.mgr.attach("ca", a, ports=parse_port_specs([f"{m.host_port}:8080"]))
    assert ep2.ports[0].host_port == m.host_port
    assert len(h.ports_rules()) == 1
    assert _get(f"http://127.0.0.1:{m.host_port}/") == "hello-dockyard"


def test_port_in_use_gives_clear_error_and_leaves_nothing(h: Harness) -> None:
    a = h.ns("ca")
    h.mgr.get("bridge")  # the network exists already, as after earlier containers
    busy = socket.socket()
    busy.bind(("0.0.0.0", 0))
    busy.listen()
    port = busy.getsockname()[1]
    try:
        with pytest.raises(Conflict) as e:
            h.mgr.attach("ca", a, ports=parse_port_specs(["9000", f"{port}:80"]))
        assert str(e.value) == f"Bind for 0.0.0.0:{port} failed: port is already allocated"
    finally:
        busy.close()
    assert h.mgr.endpoints() == []
    assert h.ports_rules() == []
    assert h.mgr.ipam.leases(h.mgr.get("bridge").id) == {}
    assert _links_with(h.settings.veth_prefix) == []
    assert [li["ifname"] for li in iproute.links(a)] == ["lo"]


def test_repair_after_crash(h: Harness) -> None:
    a, b = h.ns("ca"), h.ns("cb")
    ea = h.mgr.attach("ca", a, ports=parse_port_specs(["8080"]))
    eb = h.mgr.attach("cb", b)
    bridge_name = h.settings.default_bridge
    orphan = f"{h.settings.veth_prefix}dead"
    iproute.ip_batch(
        [
            ["link", "add", "name", orphan, "type", "veth", "peer", "name", f"{h.tag}peer"],
            ["link", "set", "dev", orphan, "master", bridge_name],
        ]
    )
    # Crash: the process dies holding its reservations; the namespace goes away (reboot/rm).
    h.mgr.close()
    netns.delete(a)
    h.mgr = h.new_manager()
    removed = h.mgr.repair()
    assert ea.id in removed and orphan in removed
    assert [e.container_id for e in h.mgr.endpoints()] == ["cb"]
    assert h.ports_rules() == []
    assert list(h.mgr.ipam.leases(h.mgr.get("bridge").id)) == [eb.ip]
    assert _links_with(h.settings.veth_prefix) == [eb.veth]
    again = h.mgr.attach(
        "ca2", h.ns("ca2"), ports=parse_port_specs([f"{ea.ports[0].host_port}:80"])
    )
    assert again.ports[0].host_port == ea.ports[0].host_port


def test_last_network_removal_deletes_table(h: Harness) -> None:
    h.mgr.create_network("solo", internal=True)
    assert h.firewall_exists()
    h.mgr.remove_network("solo")
    assert h.mgr.prune() == []
    assert not h.firewall_exists()
    assert _links_with(h.tag) == []


def test_subnets_avoid_host_routes_and_each_other(h: Harness) -> None:
    before = [p for p in iproute.used_prefixes() if not p.startswith("127.")]
    n1 = h.mgr.create_network("one")
    default = h.mgr.get("bridge")
    for p in before:
        assert not IPv4Network(n1.subnet).overlaps(IPv4Network(p, strict=False))
        assert not IPv4Network(default.subnet).overlaps(IPv4Network(p, strict=False))
    assert not IPv4Network(n1.subnet).overlaps(IPv4Network(default.subnet))
    with pytest.raises(Conflict, match="Pool overlaps"):
        h.mgr.create_network("two", subnet=n1.subnet)
    n3 = h.mgr.create_network("three", subnet="10.251.77.0/24", gateway="10.251.77.254")
    assert h.mgr.inspect("three")["IPAM"]["Config"] == [
        {"Subnet": "10.251.77.0/24", "Gateway": "10.251.77.254"}
    ]
    assert iproute.route_get_dev("10.251.77.9") == n3.bridge


def test_connect_second_network(h: Harness) -> None:
    h.mgr.create_network("front")
    back = h.mgr.create_network("back")
    a = h.ns("ca")
    e0 = h.mgr.attach("ca", a, "front", name="alpha")
    e1 = h.mgr.attach("ca", a, "back", name="alpha")
    assert (e0.ifname, e1.ifname) == ("eth0", "eth1")
    routes = iproute.ip_json(["route", "show", "default"], a)
    assert [r["dev"] for r in routes] == ["eth0"]  # the first network keeps the default route
    hosts = e0.hosts_path.read_text()
    assert f"{e0.ip}\tca" in hosts and f"{e1.ip}\tca" in hosts
    h.mgr.detach("ca", "back")
    assert sorted(li["ifname"] for li in iproute.links(a)) == ["eth0", "lo"]
    assert h.mgr.inspect(back.id)["Containers"] == {}
    assert h.mgr.prune() == ["back"]


def test_setup_modes(h: Harness) -> None:
    from dockyard.errors import FailedPrecondition, InvalidArgument, NotFound
    from dockyard.network.setup import setup_container, teardown_container

    web = setup_container(h.mgr, "web", "bridge", name="web", ports=parse_port_specs(["80"]))
    h.namespaces.append(web.netns or Path("/nonexistent"))
    assert web.netns == h.mgr.netns_path("web") and netns.is_netns(web.netns)
    assert len(web.reservations) == 1 and web.endpoints[0].ports[0].container_port == 80
    assert web.hosts_path.read_text().endswith(f"{web.endpoints[0].ip}\tweb\n")
    side = setup_container(h.mgr, "side", "container:web")
    assert side.netns == web.netns and side.files_dir == web.files_dir
    with pytest.raises(InvalidArgument, match="conflicting options"):
        setup_container(h.mgr, "x", "container:web", ports=parse_port_specs(["81"]))
    with pytest.raises(FailedPrecondition, match="non running container: ghost"):
        setup_container(h.mgr, "x", "container:ghost")
    none = setup_container(h.mgr, "quiet", "none", hostname="q")
    assert none.netns is None and none.spec_netns == ""  # the runtime makes it (CLONE_NEWNET)
    assert not h.mgr.netns_path("quiet").exists()
    assert none.hostname_path.read_text() == "q\n"
    host = setup_container(h.mgr, "hostnet", "host")
    assert host.netns is None and host.spec_netns is None and host.resolv_path.exists()
    with pytest.raises(NotFound):  # an unknown network: nothing may be left behind
        setup_container(h.mgr, "lost", "no-such-net")
    assert not h.mgr.netns_path("lost").exists()
    teardown_container(h.mgr, "web")
    teardown_container(h.mgr, "quiet")
    teardown_container(h.mgr, "web")  # idempotent
    assert not netns.is_netns(h.mgr.netns_path("web")) and h.mgr.endpoints() == []
    assert h.ports_rules() == []


def test_internal_network(h: Harness) -> None:
    inner = h.mgr.create_network("inner", internal=True)
    other = h.mgr.create_network("other")
    a, b, c = h.ns("ca"), h.ns("cb"), h.ns("cc")
    ea = h.mgr.attach("ca", a, "inner", ports=parse_port_specs(["80"]))
    eb = h.mgr.attach("cb", b, "inner")
    ec = h.mgr.attach("cc", c, "other")
    assert iproute.ip_json(["route", "show", "default"], a) == []  # no way out
    assert ea.ports == () and h.ports_rules() == []  # internal: nothing is published
    _assert_via_bridge(eb.ip, inner.bridge)
    _assert_via_bridge(ec.ip, other.bridge)
    assert h.ping(a, eb.ip)  # members reach each other
    assert not h.ping(c, ea.ip)  # nothing from outside gets in (forwarding is on)
