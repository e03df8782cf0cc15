"""Benchmark: container network attach/detach time and published-port throughput.

    .venv/bin/python benchmarks/bench_network.py [--runs 20] [--requests 2000] [--mb 64]
        [--rounds 5]

1. attach+detach of one netns to a bridge network, without and with one published port
   (median and p90 of --runs);
2. request rate (one connection per request: connect, send, read reply, close; a bounded loop of
   --requests, split over --rounds interleaved rounds) and bulk transfer rate (--mb MiB per
   round) to a server inside the netns, median over the rounds:
   - direct to the container address (no NAT, the baseline),
   - via the published port on 127.0.0.1 (our DNAT + route_localnet design),
   - via a userland proxy on 127.0.0.1 (a threaded Python splice loop, standing in for the
     Docker's docker-proxy design).
Names carry a random `dyb` tag; everything is removed at the end, even on failure. Traffic goes
only to loopback and into the namespace made here (asserted with `ip route get`).
"""

from __future__ import annotations

import argparse
import contextlib
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from ipaddress import IPv4Address
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from dockyard.network import iproute, netns
from dockyard.network.manager import NetworkManager, Settings
from dockyard.network.ports import parse_port_specs

SERVER = r"""
import socket, sys, threading
mb = int(sys.argv[1])
chunk = b"x" * (1 << 20)
def serve(c):
    with c:
        req = c.recv(16)
        if req.startswith(b"BULK"):
            for _ in range(mb):
                c.sendall(chunk)
        else:
            c.sendall(b"ok\n")
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 8080)); s.listen(512)
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
"""


def request(addr: tuple[str, int]) -> None:
    with socket.create_connection(addr, timeout=5) as s:
        s.sendall(b"GET\n")
        assert s.recv(16) == b"ok\n"


def bulk(addr: tuple[str, int], mb: int) -> float:
    t = time.perf_counter()
    n = 0
    with socket.create_connection(addr, timeout=10) as s:
        s.sendall(b"BULK\n")
        while True:
            b = s.recv(1 << 20)
            if not b:
                break
            n += len(b)
    assert n == mb << 20, n
    return n / (1 << 20) / (time.perf_counter() - t)


def wait_ready(addr: tuple[str, int]) -> None:
    for _ in range(100):
        with contextlib.suppress(OSError):
            request(addr)
            return
        time.sleep(0.05)
    raise RuntimeError(f"server at {addr} did not come up")


def rate(addr: tuple[str, int], n: int) -> float:
    t = time.perf_counter()
    for _ in range(n):
        request(addr)
    return n / (time.perf_counter() - t)


def userland_proxy(target: tuple[str, int]) -> tuple[socket.socket, int]:
    """A minimal threaded TCP proxy on 127.0.0.1 (the docker-proxy design, in Python)."""
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(512)

    def pipe(src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while b := src.recv(1 << 16):
                dst.sendall(b)
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)

    def conn(c: socket.socket) -> None:
        with c, socket.create_connection(target) as u:
            t = threading.Thread(target=pipe, args=(u, c), daemon=True)
            t.start()
            pipe(c, u)
            t.join()

    def accept() -> None:
        with contextlib.suppress(OSError):
            while True:
                c, _ = ls.accept()
                threading.Thread(target=conn, args=(c,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    return ls, int(ls.getsockname()[1])


def median_p90(fn: Callable[[], None], runs: int) -> tuple[float, float]:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.9) - 1 if runs >= 10 else -1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--mb", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    tag = "dyb" + secrets.token_hex(2)
    tmp = Path(tempfile.mkdtemp(prefix="dyb-"))
    s = Settings(
        table=tag,
        default_bridge=f"{tag}b0",
        bridge_prefix=f"{tag}n",
        veth_prefix=f"{tag}v",
        pool_start=IPv4Address("10.230.0.0"),
        default_prefixlen=24,
        run_dir=tmp / "netns",
    )
    forward = iproute.read_sysctl("net.ipv4.ip_forward")
    mgr = NetworkManager(tmp / "state", s)
    server: subprocess.Popen[bytes] | None = None
    proxy: socket.socket | None = None
    try:
        ns = mgr.create_netns("bench")
        mgr.get("bridge")

        def cycle(ports: list[str]) -> Callable[[], None]:
            def run() -> None:
                mgr.attach("bench", ns, ports=parse_port_specs(ports))
                mgr.detach("bench")

            return run

        for label, ports in (("no ports", []), ("1 published port", ["8080"])):
            cycle(ports)()  # warm-up
            med, p90 = median_p90(cycle(ports), args.runs)
            print(
                f"attach+detach ({label}): median {med:.1f} ms, p90 {p90:.1f} ms (runs={args.runs})"
            )
        ep = mgr.attach("bench", ns, ports=parse_port_specs(["8080"]))
        assert iproute.route_get_dev(ep.ip) == s.default_bridge
        server = subprocess.Popen(
            ["nsenter", f"--net={ns}", "--", sys.executable, "-c", SERVER, str(args.mb)]
        )
        direct = (ep.ip, 8080)
        published = ("127.0.0.1", ep.ports[0].host_port)
        wait_ready(direct)
        proxy, pport = userland_proxy(direct)
        targets = {
            "direct container IP": direct,
            "published 127.0.0.1 (DNAT)": published,
            "userland proxy 127.0.0.1": ("127.0.0.1", pport),
        }
        for addr in targets.values():
            wait_ready(addr)
        # Interleaved rounds, median per target: the machine is shared and noisy.
        rps: dict[str, list[float]] = {k: [] for k in targets}
        mbs: dict[str, list[float]] = {k: [] for k in targets}
        for _ in range(args.rounds):
            for label, addr in targets.items():
                rps[label].append(rate(addr, max(1, args.requests // args.rounds)))
                mbs[label].append(bulk(addr, args.mb))
        for label in targets:
            print(
                f"{label:28s}: {statistics.median(rps[label]):8.0f} req/s, "
                f"{statistics.median(mbs[label]):8.0f} MiB/s bulk "
                f"(median of {args.rounds} rounds)"
            )
    finally:
        if proxy is not None:
            proxy.close()
        if server is not None:
            server.kill()
            server.wait()
        mgr.teardown()
        mgr.close()
        mgr.delete_netns("bench")
        netns.delete(tmp / "netns" / "bench")
        iproute.write_sysctl("net.ipv4.ip_forward", forward)
        subprocess.run(["rm", "-rf", str(tmp)], check=False)


if __name__ == "__main__":
    main()
