"""Containers on networks, end to end through the `dockyard` CLI: published ports (Docker's
two-app example), user networks with names and aliases, isolation, `none`, `host`,
`container:`, connect/disconnect, the network commands, and repair after a crash.

Safety: each test has a state root of its own whose config.json gives the network manager this
run's random names (bridges, veths, nft table) and a netns dir under tmp_path; subnets come from
a random start in 10.200-10.249 (checked against the host's routes by the manager). Traffic goes
to 127.0.0.1 or between namespaces made here; before a packet goes to a container address the
test asserts the host routes it via the test's bridge. The fixture removes every container,
network, veth, netns, nft table and process, and restores ip_forward, even on failure.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import random
import secrets
import socket
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from ipaddress import IPv4Address
from pathlib import Path

import pytest

from dockyard.network import iproute, netns
from dockyard.network.manager import NetworkManager, Settings
from tests.cli import Result, dy, stop_server
from tests.images import BASE_CHANGES, write_busybox_rootfs

pytestmark = pytest.mark.root
APP = "app:1"
APP_CMD = (
    "trap 'exit 0' TERM; mkdir -p /www; echo hello-from-app > /www/index.html; "
    "httpd -f -p 3000 -h /www & wait"
)


@dataclass
class Env:
    root: Path
    tag: str
    settings: Settings

    def dy(self, *args: str, check: bool = True) -> Result:
        return dy(self.root, *args, check=check)

    def inspect(self, name: str, fmt: str) -> str:
        return self.dy("inspect", "-f", fmt, name).out.strip()

    def ip_of(self, name: str, network: str) -> str:
        fmt = f"{{{{(index .NetworkSettings.Networks {json.dumps(network)}).IPAddress}}}}"
        return self.inspect(name, fmt)

    def dnat_rules(self) -> list[str]:
        out = iproute.run(["nft", "list", "chain", "inet", self.tag, "ports"], check=False)
        return [ln.strip() for ln in out.splitlines() if "dnat" in ln]

    def bridge_of(self, network: str) -> str:
        out = self.dy("network", "inspect", network).out
        return str(json.loads(out)[0]["Options"]["com.docker.network.bridge.name"])

    def links(self) -> list[str]:
        return sorted(n for n in iproute.link_names() if n.startswith(self.tag))


def _settings(tag: str, run_dir: Path) -> tuple[Settings, dict[str, object]]:
    start = f"10.{random.randrange(200, 250)}.{random.randrange(0, 200)}.0"
    raw: dict[str, object] = {
        "table": tag,
        "default-bridge": f"{tag}b0",
        "bridge-prefix": f"{tag}n",
        "veth-prefix": f"{tag}v",
        "pool-start": start,
        "default-prefixlen": 24,
        "run-dir": str(run_dir),
    }
    s = Settings(
        table=tag,
        default_bridge=f"{tag}b0",
        bridge_prefix=f"{tag}n",
        veth_prefix=f"{tag}v",
        pool_start=IPv4Address(start),
        default_prefixlen=24,
        run_dir=run_dir,
    )
    return s, raw


def _import_app(root: Path) -> None:
    from dockyard.engine import Engine
    from dockyard.image.importer import import_rootfs
    from dockyard.reference import parse_reference

    buf = io.BytesIO()
    write_busybox_rootfs(buf)
    buf.seek(0)
    changes = [*BASE_CHANGES[:1], f"CMD {json.dumps(['sh', '-c', APP_CMD])}", "EXPOSE 3000"]
    with Engine.open(root) as engine:
        import_rootfs(engine.images, buf, ref=parse_reference(APP), changes=changes, source="-")


def _processes_using(root: Path) -> list[int]:
    out = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            with contextlib.suppress(OSError):
                if str(root).encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                    out.append(int(pid))
    return out


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    tag = "dyc" + secrets.token_hex(2)
    root = tmp_path / "root"
    root.mkdir()
    run_dir = tmp_path / "netns"
    settings, raw = _settings(tag, run_dir)
    (root / "config.json").write_text(json.dumps({"network": raw}))
    forward = iproute.read_sysctl("net.ipv4.ip_forward")
    e = Env(root, tag, settings)
    try:
        _import_app(root)
        yield e
    finally:
        ids = dy(root, "ps", "-aq", "--no-trunc", check=False).out.split()
        if ids:
            dy(root, "rm", "-f", *ids, check=False)
        mgr = NetworkManager(root, settings)
        with contextlib.suppress(Exception):
            mgr.teardown()
        mgr.close()
        if run_dir.exists():
            for p in run_dir.iterdir():
                netns.delete(p)
        for name in e.links():
            iproute.delete_link(name)
        iproute.run(["nft", "delete", "table", "inet", tag], check=False)
        iproute.write_sysctl("net.ipv4.ip_forward", forward)
        stop_server(root)
        assert e.links() == []
        assert not run_dir.exists() or list(run_dir.iterdir()) == []
        deadline = time.monotonic() + 10  # a `--rm` supervisor may still be removing files
        while _processes_using(root) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _processes_using(root) == []


def _free_port() -> int:
    s = socket.socket()
    s.bind(("0.0.0.0", 0))
    port = int(s.getsockname()[1])
    s.close()
    return port


def _get(url: str, deadline: float = 8.0) -> str:
    end = time.monotonic() + deadline
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                return str(r.read().decode())
        except OSError:
            if time.monotonic() > end:
                raise
            time.sleep(0.05)


def _port_free(port: int) -> bool:
    s = socket.socket()
    try:
        s.bind(("0.0.0.0", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def _assert_via(addr: str, bridge: str) -> None:
    dev = iproute.route_get_dev(addr)
    assert dev == bridge, f"{addr} would leave via {dev!r}, not the test bridge {bridge}"


def test_two_apps_on_published_ports(env: Env) -> None:
    p1, p2 = _free_port(), _free_port()
    env.dy("run", "-d", "-p", f"{p1}:3000", "--name", "my-running-app", APP)
    env.dy("run", "-d", "-p", f"{p2}:3000", "--name", "my-second-app", APP)
    assert _get(f"http://127.0.0.1:{p1}/") == "hello-from-app\n"
    assert _get(f"http://127.0.0.1:{p2}/") == "hello-from-app\n"
    ps = env.dy("ps", "--format", "{{.Names}} {{.Ports}}").out.splitlines()
    assert sorted(ps) == sorted(
        [f"my-running-app 0.0.0.0:{p1}->3000/tcp", f"my-second-app 0.0.0.0:{p2}->3000/tcp"]
    )
    assert f"0.0.0.0:{p1}->3000/tcp" in env.dy("ps").out
    assert env.dy("port", "my-running-app").out == f"3000/tcp -> 0.0.0.0:{p1}\n"
    assert env.dy("port", "my-running-app", "3000/tcp").out == f"0.0.0.0:{p1}\n"
    ports = json.loads(env.inspect("my-running-app", "{{json .NetworkSettings.Ports}}"))
    assert ports == {"3000/tcp": [{"HostIp": "0.0.0.0", "HostPort": str(p1)}]}
    bindings = json.loads(env.inspect("my-running-app", "{{json .HostConfig.PortBindings}}"))
    assert bindings == {"3000/tcp": [{"HostIp": "", "HostPort": str(p1)}]}
    # stop frees the port; start takes it again
    assert not _port_free(p1)
    env.dy("stop", "my-running-app")
    assert _port_free(p1)
    assert env.dy("ps", "-a", "--format", "{{.Names}}:{{.Ports}}", "-f", "name=my-running").out == (
        "my-running-app:\n"
    )
    assert env.dy("port", "my-running-app").out == ""
    assert _get(f"http://127.0.0.1:{p2}/") == "hello-from-app\n"
    env.dy("start", "my-running-app")
    assert not _port_free(p1)
    assert _get(f"http://127.0.0.1:{p1}/") == "hello-from-app\n"


def test_port_in_use_fails_cleanly(env: Env) -> None:
    busy = socket.socket()
    busy.bind(("0.0.0.0", 0))
    busy.listen()
    port = busy.getsockname()[1]
    try:
        veths = [n for n in env.links() if n.startswith(env.settings.veth_prefix)]
        r = env.dy("run", "-d", "-p", f"{port}:3000", "--name", "late", APP, check=False)
        assert r.rc == 125
        assert f"Bind for 0.0.0.0:{port} failed: port is already allocated" in r.err
    finally:
        busy.close()
    assert env.inspect("late", "{{.State.Status}}") == "created"
    assert env.dy("ps", "-q").out == ""
    assert [n for n in env.links() if n.startswith(env.settings.veth_prefix)] == veths == []
    assert [p.name for p in env.settings.run_dir.iterdir()] == []
    assert env.dnat_rules() == []
    env.dy("start", "late")  # the port is free now: the same record starts
    assert _get(f"http://127.0.0.1:{port}/") == "hello-from-app\n"


def test_publish_all_and_random_ports(env: Env) -> None:
    env.dy("run", "-d", "-P", "-p", "127.0.0.1::5000/udp", "--name", "pa", APP)
    out = env.dy("port", "pa").out.splitlines()
    assert len(out) == 2 and out[0].startswith("3000/tcp -> 0.0.0.0:")
    assert out[1].startswith("5000/udp -> 127.0.0.1:")
    port = int(out[0].rsplit(":", 1)[1])
    assert _get(f"http://127.0.0.1:{port}/") == "hello-from-app\n"
    ps = env.dy("ps", "--format", "{{.Ports}}").out.strip()
    assert ps == f"0.0.0.0:{port}->3000/tcp, {out[1].split(' -> ')[1]}->5000/udp"


def test_user_network_names_and_isolation(env: Env) -> None:
    env.dy("network", "create", "front")
    env.dy("network", "create", "back")
    for name, net, extra in (
        ("alpha", "front", ["--network-alias", "web"]),
        ("beta", "front", []),
        ("gamma", "back", []),
    ):
        env.dy("run", "-d", "--network", net, *extra, "--name", name, APP)
    front, back = env.bridge_of("front"), env.bridge_of("back")
    ip_a, ip_b = env.ip_of("alpha", "front"), env.ip_of("beta", "front")
    ip_g = env.ip_of("gamma", "back")
    _assert_via(ip_a, front)
    _assert_via(ip_b, front)
    _assert_via(ip_g, back)
    # nc, not wget: the static busybox's wget crashes resolving names (glibc NSS, statically)
    probe = "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 2 {} 3000"
    r = env.dy("run", "--rm", "--network", "front", APP, "sh", "-c", probe.format("beta"))
    assert r.out.endswith("\r\n\r\nhello-from-app\n")
    r = env.dy("run", "--rm", "--network", "front", APP, "sh", "-c", probe.format("web"))
    assert r.out.endswith("hello-from-app\n")
    hosts = env.dy("run", "--rm", "--network", "front", APP, "cat", "/etc/hosts").out
    assert f"{ip_a}\talpha web" in hosts and f"{ip_b}\tbeta" in hosts
    # different networks: no route by name, and the address is not reachable
    r = env.dy("run", "--rm", "--network", "back", APP, "sh", "-c", probe.format(ip_b), check=False)
    assert r.rc != 0 and "hello" not in r.out
    r = env.dy("run", "--rm", "--network", "back", APP, "ping", "-c1", "-W1", "beta", check=False)
    assert r.rc != 0
    # connect gamma to front: it reaches beta by name now; disconnect: it does not
    env.dy("network", "connect", "--alias", "gam", "front", "gamma")
    nets = json.loads(env.inspect("gamma", "{{json .NetworkSettings.Networks}}"))
    assert set(nets) == {"back", "front"} and nets["front"]["Aliases"] == ["gam"]
    _assert_via(nets["front"]["IPAddress"], front)
    r = env.dy("exec", "gamma", "sh", "-c", probe.format("beta"), check=False)
    if r.rc == 0 or "not a dockyard command" not in r.err:  # exec may not exist yet
        assert r.out.endswith("hello-from-app\n")
    r = env.dy("run", "--rm", "--network", "front", APP, "sh", "-c", probe.format("gam"))
    assert r.out.endswith("hello-from-app\n")
    env.dy("network", "disconnect", "front", "gamma")
    nets = json.loads(env.inspect("gamma", "{{json .NetworkSettings.Networks}}"))
    assert set(nets) == {"back"}
    rm = env.dy("network", "rm", "front", check=False)
    assert rm.rc == 1 and "has active endpoints" in rm.err


def test_none_has_only_loopback_up(env: Env) -> None:
    out = env.dy("run", "--rm", "--network", "none", APP, "ip", "-o", "link").out
    lines = out.splitlines()
    assert len(lines) == 1 and ": lo:" in lines[0] and "UP" in lines[0].split(">")[0]
    r = env.dy("run", "--rm", "--network", "none", APP, "ping", "-c1", "-W1", "127.0.0.1")
    assert r.rc == 0


def test_host_and_container_modes(env: Env) -> None:
    out = env.dy("run", "--rm", "--network", "host", APP, "ip", "-o", "link").out
    inside = {line.split(":")[1].strip().split("@")[0] for line in out.splitlines()}
    assert len(inside & iproute.link_names()) > 1  # the host's links, not just a new lo
    env.dy("run", "-d", "--name", "main", APP)
    ip = env.ip_of("main", "bridge")
    _assert_via(ip, env.settings.default_bridge)
    r = env.dy("run", "--rm", "--network", "container:main", APP, "wget", "-q", "-O-",
               "http://127.0.0.1:3000/")  # fmt: skip
    assert r.out == "hello-from-app\n"
    r = env.dy("run", "--rm", "--network", "container:main", "-p", "80", APP, check=False)
    assert r.rc == 125 and "conflicting options" in r.err


def test_network_commands(env: Env) -> None:
    nid = env.dy("network", "create", "--subnet", "10.252.13.0/24", "--label", "k=v", "n1").out
    assert len(nid.strip()) == 64
    ls = env.dy("network", "ls", "--format", "{{.Name}} {{.Driver}}").out.splitlines()
    assert ls == ["bridge bridge", "host host", "n1 bridge", "none null"]
    assert env.dy("network", "ls", "-q", "-f", "label=k=v").out == nid.strip()[:12] + "\n"
    info = json.loads(env.dy("network", "inspect", "n1").out)[0]
    assert info["IPAM"]["Config"] == [{"Subnet": "10.252.13.0/24", "Gateway": "10.252.13.1"}]
    assert info["Labels"] == {"k": "v"}
    env.dy("create", "--network", "n1", "--name", "idle", APP)
    r = env.dy("network", "create", "n1", check=False)
    assert r.rc != 0 and "already exists" in r.err
    r = env.dy("network", "rm", "bridge", check=False)
    assert r.rc == 1 and "pre-defined" in r.err
    assert env.dy("network", "prune", "-f").out == "Deleted Networks:\nn1\n"
    r = env.dy("start", "idle", check=False)
    assert r.rc != 0 and "network n1 not found" in r.err
    assert env.dy("network", "ls", "-q", "-f", "type=custom").out == ""


def test_supervisor_crash_is_repaired(env: Env) -> None:
    port = _free_port()
    env.dy("run", "-d", "-p", f"{port}:3000", "--name", "victim", APP)
    assert _get(f"http://127.0.0.1:{port}/") == "hello-from-app\n"
    pid = int(env.inspect("victim", "{{.State.Pid}}"))
    sup = [p for p in _processes_using(env.root) if p != pid]
    for p in [*sup, pid]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(p, 9)
    time.sleep(0.2)
    assert env.dy("ps", "-a", "--format", "{{.Names}} {{.Status}}").out.startswith(
        "victim Exited (255)"
    )
    assert _port_free(port)
    assert [p.name for p in env.settings.run_dir.iterdir()] == []
    assert not [n for n in env.links() if n.startswith(env.settings.veth_prefix)]
    assert env.dnat_rules() == []
    env.dy("start", "victim")
    assert _get(f"http://127.0.0.1:{port}/") == "hello-from-app\n"


def test_network_tag_gives_each_root_its_own_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dockyard.engine import network_settings

    tag = "dz" + secrets.token_hex(1)
    monkeypatch.setenv("DOCKYARD_NETWORK_TAG", tag)
    roots = [tmp_path / "r1", tmp_path / "r2"]
    settings = [network_settings(None, r) for r in roots]
    assert settings[0].table != settings[1].table
    assert all(s.table.startswith(tag) and s.default_bridge.startswith(tag) for s in settings)
    forward = iproute.read_sysctl("net.ipv4.ip_forward")
    try:
        for r in roots:
            dy(r, "network", "create", "n")
        names = {n for n in iproute.link_names() if n.startswith(tag)}
        assert len(names) == 2 and all(iproute.link_exists(n) for n in names)
        for s in settings:
            assert iproute.run(["nft", "list", "table", "inet", s.table], check=False)
    finally:
        for r, s in zip(roots, settings, strict=True):
            mgr = NetworkManager(r, s)
            with contextlib.suppress(Exception):
                mgr.teardown()
            mgr.close()
            iproute.run(["nft", "delete", "table", "inet", s.table], check=False)
        for n in iproute.link_names():
            if n.startswith(tag):
                iproute.delete_link(n)
        iproute.write_sysctl("net.ipv4.ip_forward", forward)
    assert not [n for n in iproute.link_names() if n.startswith(tag)]
