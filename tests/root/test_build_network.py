"""`build --network` on the real kernel: the default bridge (an address, a default route, NAT to
the outside), `host`, `none`, a user network, and that every step's attachment is released,
also when the step fails.

Safety: the engine's config.json gives the network manager this test's own names (bridge, veths,
nft table) and a netns dir under tmp_path; the bridge's subnet starts at a random 10.200-249
address (checked against the host's routes by the manager). The "outside" a RUN reaches through
NAT is a namespace this test makes, on 198.18.x.0/30 (RFC 2544 test addresses), and the test
asserts the host routes that address via the test's own veth before anything is sent.
"""

from __future__ import annotations

import contextlib
import random
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest

from dockyard.build.executor import BuildError
from dockyard.engine import Engine
from dockyard.network import iproute, netns
from tests.root.test_build import logs
from tests.root.test_build_support import (
    build,
    isolated_engine,
    mounts_under,
    tagged_links,
    write_tree,
)

pytestmark = pytest.mark.root


@dataclass
class NetEnv:
    engine: Engine
    tag: str
    run_dir: Path

    def left_over(self) -> list[str]:
        """Everything a step could leave behind: endpoints, netns files, veths."""
        mgr = self.engine.networks
        out = [f"endpoint {e.container_id}" for e in mgr.endpoints()]
        if self.run_dir.exists():
            out += [f"netns {p.name}" for p in self.run_dir.iterdir()]
        bridges = {n.bridge for n in mgr.list()}
        out += [f"link {n}" for n in tagged_links(self.tag) if n not in bridges]
        return out


@pytest.fixture
def env(tmp_path: Path) -> Iterator[NetEnv]:
    with isolated_engine(tmp_path) as eng:
        s = eng.networks.settings
        yield NetEnv(eng, s.table, s.run_dir)


def test_default_is_the_bridge_network(env: NetEnv, tmp_path: Path) -> None:
    ctx = write_tree(tmp_path / "ctx", {})
    df = (
        "FROM busybox\n"
        "RUN ip -4 -o addr show eth0 && ip route && hostname && cat /etc/hosts /etc/resolv.conf\n"
    )
    b = build(env.engine, ctx, df)
    out = logs(b.output, 2)
    net = env.engine.networks.get("bridge")
    subnet = IPv4Network(net.subnet)
    addr = next(ln for ln in out if " eth0 " in ln and " inet " in ln).split()[3]
    assert IPv4Address(addr.split("/")[0]) in subnet
    assert any(ln.startswith(f"default via {net.gateway} dev eth0") for ln in out)
    assert "buildkitsandbox" in out
    assert any(ln.startswith("nameserver ") for ln in out)
    assert any("buildkitsandbox" in ln and ln.startswith(addr.split("/")[0]) for ln in out)
    # the /etc files were bind mounts: not in the layer (busybox has no /etc/resolv.conf)
    assert b.builder.stats.executed == 1
    assert env.left_over() == []


def test_host_none_and_run_flag(env: NetEnv, tmp_path: Path) -> None:
    ctx = write_tree(tmp_path / "ctx", {})
    b = build(env.engine, ctx, "FROM busybox\nRUN ls /sys/class/net\n", network="none")
    assert logs(b.output, 2) == ["lo"]
    dummy = f"{env.tag}d0"
    iproute.run(["ip", "link", "add", dummy, "type", "bridge"])
    try:
        b = build(env.engine, ctx, "FROM busybox\nRUN ls /sys/class/net\n", network="host")
    finally:
        iproute.delete_link(dummy)
    assert dummy in logs(b.output, 2)
    # RUN --network=none overrides the build's default bridge
    df = "FROM busybox\nRUN --network=none ls /sys/class/net\nRUN ls /sys/class/net\n"
    b = build(env.engine, ctx, df)
    assert logs(b.output, 2) == ["lo"]
    assert sorted(logs(b.output, 3)) == ["eth0", "lo"]
    assert env.left_over() == []


def test_failing_step_releases_its_attachment(env: NetEnv, tmp_path: Path) -> None:
    ctx = write_tree(tmp_path / "ctx", {})
    with pytest.raises(BuildError, match="exit code: 5"):
        build(env.engine, ctx, "FROM busybox\nRUN ip link show eth0 && exit 5\n")
    assert env.left_over() == []
    assert mounts_under(env.engine.root) == []


def test_user_network_by_name(env: NetEnv, tmp_path: Path) -> None:
    ctx = write_tree(tmp_path / "ctx", {})
    n = env.engine.networks.create_network("bnet")
    try:
        b = build(env.engine, ctx, "FROM busybox\nRUN ip -4 -o addr show eth0\n", network="bnet")
        addr = logs(b.output, 2)[0].split()[3].split("/")[0]
        assert IPv4Address(addr) in IPv4Network(n.subnet)
        with pytest.raises(BuildError, match="network nope not found"):
            build(env.engine, ctx, "FROM busybox\nRUN true\n", network="nope")
        assert env.left_over() == []
    finally:
        env.engine.networks.remove_network("bnet")


@contextlib.contextmanager
def _outside(tmp_path: Path, tag: str) -> Iterator[tuple[str, str, socket.socket]]:
    """A namespace on 198.18.x.0/30 behind a veth of ours, with a TCP listener in it:
    (host-side address, outside address, listening socket)."""
    from dockyard.linux import netlink

    x = random.randrange(0, 250)
    host_ip, out_ip = f"198.18.{x}.1", f"198.18.{x}.2"
    path = netns.create(tmp_path / "outside")
    veth = f"{tag}x0"
    try:
        iproute.run(["ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0",
                     "netns", str(path)])  # fmt: skip
        iproute.run(["ip", "addr", "add", f"{host_ip}/30", "dev", veth])
        iproute.run(["ip", "link", "set", veth, "up"])
        inside = ["nsenter", f"--net={path}", "ip"]
        iproute.run([*inside, "addr", "add", f"{out_ip}/30", "dev", "eth0"])
        iproute.run([*inside, "link", "set", "eth0", "up"])
        iproute.run([*inside, "link", "set", "lo", "up"])

        def listen() -> socket.socket:
            s = socket.socket()
            s.bind((out_ip, 0))
            s.listen(4)
            return s

        sock = netlink.in_netns(str(path), listen)
        try:
            yield host_ip, out_ip, sock
        finally:
            sock.close()
    finally:
        with contextlib.suppress(Exception):
            iproute.delete_link(veth)
        netns.delete(path)


def test_run_reaches_the_outside_through_nat(env: NetEnv, tmp_path: Path) -> None:
    ctx = write_tree(tmp_path / "ctx", {})
    with _outside(tmp_path, env.tag) as (host_ip, out_ip, sock):
        assert iproute.route_get_dev(out_ip) == f"{env.tag}x0"
        port = sock.getsockname()[1]
        peers: list[str] = []

        def serve() -> None:
            sock.settimeout(10)
            with contextlib.suppress(OSError):
                conn, peer = sock.accept()
                with conn:
                    peers.append(peer[0])
                    conn.recv(1024)
                    conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 6\r\n\r\nhello\n")

        t = threading.Thread(target=serve)
        t.start()
        try:
            # busybox-static's wget crashes in glibc's static NSS: plain nc instead
            df = f"FROM busybox\nRUN echo GET / | nc -w 10 {out_ip} {port} | tail -n 1\n"
            b = build(env.engine, ctx, df, no_cache=True)
        finally:
            t.join()
    assert logs(b.output, 2) == ["hello"]
    assert peers == [host_ip]  # masqueraded: the outside saw the host, not 10.x
    assert env.left_over() == []


def test_dead_builds_attachments_are_swept(env: NetEnv, tmp_path: Path) -> None:
    mgr = env.engine.networks
    dead = "build-999999999-0123456789ab"  # a pid beyond pid_max: its build is gone
    mgr.attach(dead, mgr.create_netns(dead), "bridge", files_dir=tmp_path / "etc")
    assert [e.container_id for e in mgr.endpoints()] == [dead]
    ctx = write_tree(tmp_path / "ctx", {})
    build(env.engine, ctx, "FROM busybox\nRUN true\n")  # a bridge RUN sweeps first
    assert env.left_over() == []
    # a build without RUN sweeps too when it finds a dead build's work dir
    mgr.attach(dead, mgr.create_netns(dead), "bridge", files_dir=tmp_path / "etc")
    (env.engine.root / "build" / "work" / "999999999-x").mkdir()
    build(env.engine, ctx, "FROM busybox\nENV A=1\n")
    assert env.left_over() == []
