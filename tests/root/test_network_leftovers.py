"""Networking leftovers, end to end through the CLI: IPv6 on user networks, `--add-host`
entries that survive hosts rewrites, and `network disconnect` freeing published ports.

Safety: the `env` fixture of test_container_network (a state root of its own with this run's
random names, a random 10.200-10.249 IPv4 pool start, everything removed at the end). IPv6
subnets are ULA (fd00::/8) /64s that the manager checks against the host's IPv6 routes, or a
random ULA /64 checked here; before a packet goes to a container address the test asserts the
host routes it via the test's bridge (`ip route get` / `ip -6 route get`).
"""

from __future__ import annotations

import json
import os
import secrets
from ipaddress import IPv6Address, IPv6Network

import pytest

from dockyard.network import iproute
from dockyard.network.manager import NetworkManager
from tests.root.test_container_network import (
    APP,
    Env,
    _assert_via,
    _free_port,
    _get,
    _port_free,
    env,
)

pytestmark = pytest.mark.root
__all__ = ["env"]


def _net6(env: Env, container: str, network: str) -> dict[str, object]:
    nets = json.loads(env.inspect(container, "{{json .NetworkSettings.Networks}}"))
    return dict(nets[network])


def _free_ula64() -> str:
    used = [IPv6Network(p, strict=False) for p in iproute.used_prefixes(6)]
    for _ in range(100):
        net = IPv6Network((int.from_bytes(b"\xfd" + secrets.token_bytes(7), "big") << 64, 64))
        if not any(net.overlaps(u) for u in used):
            return str(net)
    raise AssertionError("no free ULA /64")


def _hosts_of(env: Env, name: str) -> str:
    cid = env.inspect(name, "{{.Id}}")
    return (env.root / "containers" / cid / "hosts").read_text()


def test_ipv6_user_network(env: Env) -> None:
    env.dy("network", "create", "--ipv6", "six")
    info = json.loads(env.dy("network", "inspect", "six").out)[0]
    assert info["EnableIPv6"] is True
    v6 = info["IPAM"]["Config"][1]
    subnet = IPv6Network(v6["Subnet"])
    assert subnet.prefixlen == 64 and subnet.subnet_of(IPv6Network("fd00::/8"))
    assert v6["Gateway"] == str(subnet.network_address + 1)
    bridge = info["Options"]["com.docker.network.bridge.name"]
    assert env.dy("network", "ls", "--format", "{{.Name}} {{.IPv6}}", "-f", "name=six").out == (
        "six true\n"
    )
    env.dy("run", "-d", "--network", "six", "--name", "alpha", APP)
    env.dy("run", "-d", "--network", "six", "--name", "beta", APP)
    a, b = _net6(env, "alpha", "six"), _net6(env, "beta", "six")
    for ep in (a, b):
        assert IPv6Address(str(ep["GlobalIPv6Address"])) in subnet
        assert ep["GlobalIPv6PrefixLen"] == 64 and ep["IPv6Gateway"] == v6["Gateway"]
    assert a["GlobalIPv6Address"] != b["GlobalIPv6Address"]
    info = json.loads(env.dy("network", "inspect", "six").out)[0]
    addrs = {c["Name"]: c["IPv6Address"] for c in info["Containers"].values()}
    assert addrs == {
        "alpha": f"{a['GlobalIPv6Address']}/64",
        "beta": f"{b['GlobalIPv6Address']}/64",
    }
    ip_a6, ip_b6 = str(a["GlobalIPv6Address"]), str(b["GlobalIPv6Address"])
    _assert_via(ip_a6, bridge)
    _assert_via(ip_b6, bridge)
    hosts = _hosts_of(env, "alpha")
    assert f"{ip_b6}\tbeta" in hosts and f"{b['IPAddress']}\tbeta" in hosts
    # inside: the global address, a link-local one, the IPv6 default route
    out = env.dy("exec", "alpha", "ip", "-6", "addr", "show", "dev", "eth0").out
    assert f"inet6 {ip_a6}/64 scope global" in out and "inet6 fe80::" in out
    out = env.dy("exec", "alpha", "ip", "-6", "route").out
    assert f"default via {v6['Gateway']} dev eth0" in out
    # peers reach each other over IPv6 by name, and by address
    r = env.dy("exec", "alpha", "ping", "-6", "-c1", "-W2", "beta")
    assert ip_b6 in r.out
    probe = f"printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 2 {ip_b6} 3000"
    assert env.dy("exec", "alpha", "sh", "-c", probe).out.endswith("hello-from-app\n")
    # the host reaches the gateway's network (local delivery via the bridge)
    assert _get(f"http://[{ip_a6}]:3000/") == "hello-from-app\n"
    # leases: one IPv6 address per endpoint, a requested one is not handed out twice
    r = env.dy("run", "-d", "--network", "six", "--ip6", ip_b6, "--name", "dup", APP, check=False)
    assert r.rc != 0 and "Address already in use" in r.err
    mgr = NetworkManager(env.root, env.settings)
    try:
        nid = mgr.get("six").id
        v6_leases = lambda: sorted(ip for ip in mgr.ipam.leases(nid) if ":" in ip)  # noqa: E731
        assert v6_leases() == sorted([ip_a6, ip_b6])
        env.dy("rm", "-f", "beta")
        assert v6_leases() == [ip_a6]
        assert f"{ip_b6}\t" not in _hosts_of(env, "alpha")
        want = str(subnet.network_address + 0x99)
        env.dy("rm", "-f", "dup")
        env.dy("run", "-d", "--network", "six", "--ip6", want, "--name", "gamma", APP)
        assert _net6(env, "gamma", "six")["GlobalIPv6Address"] == want
        assert v6_leases() == sorted([ip_a6, want])
    finally:
        mgr.close()


def test_ipv6_given_subnet_and_errors(env: Env) -> None:
    sub = _free_ula64()
    gw = str(IPv6Network(sub).network_address + 0x10)
    env.dy("network", "create", "--ipv6", "--subnet", sub, "--gateway", gw, "given")
    info = json.loads(env.dy("network", "inspect", "given").out)[0]
    assert info["IPAM"]["Config"][1] == {"Subnet": sub, "Gateway": gw}
    assert info["IPAM"]["Config"][0]["Subnet"].count(".") == 3  # an IPv4 subnet too
    r = env.dy("network", "create", "--ipv6", "--subnet", sub, "again", check=False)
    assert r.rc != 0 and "overlaps" in r.err
    r = env.dy("network", "create", "--subnet", sub, "nov6", check=False)
    assert r.rc != 0 and "--ipv6" in r.err
    env.dy("run", "-d", "--network", "given", "--name", "one", APP)
    ip6 = str(_net6(env, "one", "given")["GlobalIPv6Address"])
    assert ip6 == str(IPv6Network(sub).network_address + 1)  # the gateway is ::10 here
    _assert_via(ip6, env.bridge_of("given"))
    # IPv4-only networks stay IPv4-only
    env.dy("network", "create", "plain")
    env.dy("run", "-d", "--network", "plain", "--name", "two", APP)
    assert _net6(env, "two", "plain")["GlobalIPv6Address"] == ""
    r = env.dy("network", "connect", "--ip6", ip6, "plain", "one", check=False)
    assert r.rc != 0
    env.dy("rm", "-f", "one", "two")
    env.dy("network", "rm", "given", "plain")
    assert env.dy("network", "ls", "-q", "-f", "type=custom").out == ""


def test_add_host_survives_peer_changes(env: Env) -> None:
    env.dy("network", "create", "front")
    env.dy("run", "-d", "--network", "front", "--add-host", "extra.example:10.1.2.3",
           "--add-host", "six.example:fd00:1::7", "--name", "a1", APP)  # fmt: skip
    want = ("10.1.2.3\textra.example\n", "fd00:1::7\tsix.example\n")
    assert all(w in _hosts_of(env, "a1") for w in want)
    env.dy("run", "-d", "--network", "front", "--name", "a2", APP)  # a1's hosts is rewritten
    hosts = _hosts_of(env, "a1")
    assert all(w in hosts for w in want) and "\ta2" in hosts
    inside = env.dy("exec", "a1", "cat", "/etc/hosts").out
    assert inside == hosts
    env.dy("rm", "-f", "a2")  # and again
    hosts = _hosts_of(env, "a1")
    assert all(w in hosts for w in want) and "\ta2" not in hosts
    env.dy("network", "connect", "bridge", "a1")  # and on connect
    assert all(w in _hosts_of(env, "a1") for w in want)
    # --network none and host have them too
    out = env.dy("run", "--rm", "--network", "none", "--add-host", "n.example:10.9.9.9", APP,
                 "cat", "/etc/hosts").out  # fmt: skip
    assert "10.9.9.9\tn.example\n" in out


def test_disconnect_first_network_frees_its_ports(env: Env) -> None:
    env.dy("network", "create", "front")
    env.dy("network", "create", "back")
    port = _free_port()
    env.dy("run", "-d", "--network", "front", "-p", f"{port}:3000", "--name", "pub", APP)
    env.dy("network", "connect", "back", "pub")
    assert _get(f"http://127.0.0.1:{port}/") == "hello-from-app\n"
    assert not _port_free(port) and env.dnat_rules()
    env.dy("network", "disconnect", "front", "pub")
    assert _port_free(port)  # the supervisor closed its reservation
    assert env.dnat_rules() == []
    assert env.dy("port", "pub").out == ""
    assert env.inspect("pub", "{{.State.Status}}") == "running"
    # the port is usable by another container at once; `pub` still works on `back`
    env.dy("run", "-d", "-p", f"{port}:3000", "--name", "next", APP)
    assert _get(f"http://127.0.0.1:{port}/") == "hello-from-app\n"
    ip = env.ip_of("pub", "back")
    _assert_via(ip, env.bridge_of("back"))
    probe = f"printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 2 {ip} 3000"
    r = env.dy("run", "--rm", "--network", "back", APP, "sh", "-c", probe)
    assert r.out.endswith("hello-from-app\n")


def test_files_dir_has_no_leftover(env: Env) -> None:
    """`--add-host` is recorded beside the files; a container without it has no record."""
    env.dy("run", "-d", "--name", "plain", APP)
    cid = env.inspect("plain", "{{.Id}}")
    assert not (env.root / "containers" / cid / "extra-hosts").exists()


def test_none_container_and_joining_it(env: Env) -> None:
    """`none`: the runtime makes the namespace (no netns file of ours) with `lo` up, and a
    `container:` container can still join it."""
    env.dy("run", "-d", "--network", "none", "--name", "quiet", APP)
    run_dir = env.settings.run_dir
    assert not run_dir.exists() or list(run_dir.iterdir()) == []  # no netns file of ours
    out = env.dy("exec", "quiet", "ip", "-o", "link").out.splitlines()
    assert len(out) == 1 and ": lo:" in out[0] and "UP" in out[0].split(">")[0]
    r = env.dy("run", "--rm", "--network", "container:quiet", APP, "wget", "-q", "-O-",
               "http://127.0.0.1:3000/")  # fmt: skip
    assert r.out == "hello-from-app\n"
    pid = env.inspect("quiet", "{{.State.Pid}}")
    mine = os.readlink(f"/proc/{pid}/ns/net")
    assert mine != os.readlink("/proc/self/ns/net")
