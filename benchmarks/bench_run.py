"""Benchmark: `run --rm IMG true` and published-port throughput, Dockyard against Podman.

    .venv/bin/python benchmarks/bench_run.py [--runs 15] [--requests 1000] [--threads 4]
        [--rounds 3] [--settle 0.3] [--seed N]

1. start+exit+remove of a container (`run --rm IMG true`, wall clock of the CLI), with each
   engine's default network (Dockyard: `bridge`; Podman: its `podman` network via netavark) and
   with `--network none`, and `runc run` of a busybox bundle (/bin/true, runc's default spec:
   a new network namespace, no image, no network setup) as the floor of a runtime alone; the
   six variants are interleaved run by run, in a new random order each round (--seed makes it
   repeatable; a fixed order would always put the same command after the same one, e.g. a
   `--network none` run right after a default-network one whose network the kernel is still
   tearing down), each after --settle seconds of quiet, so that what one command leaves
   running (Podman's cleanup process, our command server readying its next worker) does not
   land in the next one's time, as between commands a person types (median, p90);
2. request rate through a published port on 127.0.0.1 (`run -d -p PORT:3000`, busybox httpd
   in the same image for both; a bounded load: --requests HTTP/1.0 GETs, one connection each,
   from --threads client threads on the host, in --rounds interleaved rounds; median req/s).
Results are printed with the ratios Dockyard/Podman (start: lower is better; throughput:
higher is better).

Isolation: Dockyard runs on a state root of its own whose config.json gives the network manager
random `dyr` names (bridge, veths, nft table) and a netns dir under the temp dir; Podman runs
with runc (crun refuses this host's hybrid cgroups), its own --root/--runroot under /tmp,
cgroupfs and a file events backend (CONTAINERS_CONF); the image goes into Podman with
`dockyard save | podman load`. Everything made here is removed at the end, even on failure.
Traffic goes only to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import random
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO))

from benchmarks import _server  # noqa: E402
from tests import hostfx  # noqa: E402

from dockyard.network import iproute, netns  # noqa: E402
from dockyard.network.manager import NetworkManager  # noqa: E402

DOCKYARD = str(Path(sys.executable).parent / "dockyard")
IMAGE = "localhost/dybench:1"
APP = (
    "trap 'exit 0' TERM; mkdir -p /www; echo hello-from-app > /www/index.html; "
    "httpd -f -p 3000 -h /www & wait"
)


class Bench:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.tag = "dyr" + secrets.token_hex(2)
        self.host_before = hostfx.existing()  # cgroup parents (ours, Podman's), run dirs
        self.root = tmp / "dy"
        self.pod_root = tmp / "pr"
        self.pod_run = tmp / "pq"
        self.conf = tmp / "containers.conf"
        self.net = {
            "table": self.tag,
            "default-bridge": f"{self.tag}b0",
            "bridge-prefix": f"{self.tag}n",
            "veth-prefix": f"{self.tag}v",
            "pool-start": "10.240.0.0",
            "default-prefixlen": 24,
            "run-dir": str(tmp / "ns"),
        }

    # ---- commands ----------------------------------------------------------------------

    def dy(self, *args: str, stdout: int | None = subprocess.DEVNULL) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [DOCKYARD, "--root", str(self.root), *args], stdout=stdout, stderr=subprocess.PIPE
        )

    def podman_argv(self, *args: str) -> list[str]:
        return [
            "podman",
            "--root",
            str(self.pod_root),
            "--runroot",
            str(self.pod_run),
            "--cgroup-manager",
            "cgroupfs",
            "--events-backend",
            "file",
            *args,
        ]

    def podman(self, *args: str) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "CONTAINERS_CONF": str(self.conf)}
        return subprocess.run(
            self.podman_argv(*args), env=env, capture_output=True, text=True, check=False
        )

    def run_dy(self, *args: str) -> str:
        p = subprocess.run(
            [DOCKYARD, "--root", str(self.root), *args], capture_output=True, text=True
        )
        if p.returncode != 0:
            raise RuntimeError(f"dockyard {' '.join(args)}: {p.stderr}")
        return p.stdout

    def run_pod(self, *args: str) -> str:
        p = self.podman(*args)
        if p.returncode != 0:
            raise RuntimeError(f"podman {' '.join(args)}: {p.stderr}")
        return p.stdout

    # ---- set-up and tear-down ----------------------------------------------------------

    def setup(self) -> None:
        from tests.images import BASE_CHANGES, write_busybox_rootfs

        from dockyard.engine import Engine
        from dockyard.image.importer import import_rootfs
        from dockyard.reference import parse_reference

        self.root.mkdir()
        (self.root / "config.json").write_text(json.dumps({"network": self.net}))
        # root here lacks CAP_SYS_RESOURCE: Podman's default rlimits would be refused
        self.conf.write_text(
            "[containers]\n"
            'default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]\n'
            "[engine]\n"
            'runtime = "runc"\n'
            f'tmp_dir = "{self.tmp}/pt"\n'
            f'static_dir = "{self.tmp}/ps"\n'
            "[network]\n"
            f'network_config_dir = "{self.tmp}/pn"\n'
        )
        buf = io.BytesIO()
        write_busybox_rootfs(buf)
        buf.seek(0)
        changes = [*BASE_CHANGES[:1], f"CMD {json.dumps(['sh', '-c', APP])}", "EXPOSE 3000"]
        with Engine.open(self.root) as engine:
            ref = parse_reference(IMAGE)
            import_rootfs(engine.images, buf, ref=ref, changes=changes, source="-")
        save = self.dy("save", IMAGE, stdout=subprocess.PIPE)
        env = {**os.environ, "CONTAINERS_CONF": str(self.conf)}
        load = subprocess.run(
            self.podman_argv("load"), stdin=save.stdout, env=env, capture_output=True, text=True
        )
        save.wait()
        if load.returncode != 0:
            raise RuntimeError(f"podman load: {load.stderr}")

    def teardown(self) -> None:
        with contextlib.suppress(Exception):
            ids = self.run_dy("ps", "-aq").split()
            if ids:
                self.run_dy("rm", "-f", *ids)
        _server.stop(self.root)  # after our last command (one in-process may start another)
        self.podman("rm", "-af", "-t", "0")
        runc_root = str(self.tmp / "runc")
        subprocess.run(["runc", "--root", runc_root, "delete", "-f", self.tag], capture_output=True)
        self.podman("rmi", "-af")
        from dockyard.engine import network_settings

        mgr = NetworkManager(self.root, network_settings(self.net))
        with contextlib.suppress(Exception):
            mgr.teardown()
        mgr.close()
        run_dir = Path(str(self.net["run-dir"]))
        if run_dir.exists():
            for p in run_dir.iterdir():
                netns.delete(p)
        for name in iproute.link_names():
            if name.startswith(self.tag):
                iproute.delete_link(name)
        iproute.run(["nft", "delete", "table", "inet", self.tag], check=False)
        for d in (self.pod_root, self.pod_run):
            subprocess.run(["umount", "-R", "-l", str(d / "overlay")], capture_output=True)
        hostfx.remove_new(self.host_before)


# ---- measurements ------------------------------------------------------------------------


def timed(argv: list[str], env: dict[str, str] | None = None) -> float:
    t = time.perf_counter()
    p = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, capture_output=True, check=False)
    dt = time.perf_counter() - t
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:3])}...: {p.stderr.decode()[-400:]}")
    return dt * 1000


def start_times(b: Bench, runs: int, settle: float, seed: int) -> dict[str, list[float]]:
    from benchmarks.bench_runtime import make_bundle

    env = {**os.environ, "CONTAINERS_CONF": str(b.conf)}
    dy = [DOCKYARD, "--root", str(b.root), "run", "--rm"]
    bundle = make_bundle(b.tmp / "bundle")
    runc = ["runc", "--root", str(b.tmp / "runc"), "run", "--bundle", str(bundle), b.tag]
    cold = {**env, "DOCKYARD_SERVER": "0"}
    variants = {
        "dockyard default": ([*dy, IMAGE, "true"], env),
        "dockyard none": ([*dy, "--network", "none", IMAGE, "true"], env),
        "dockyard none, no server": ([*dy, "--network", "none", IMAGE, "true"], cold),
        "podman default": (b.podman_argv("run", "--rm", IMAGE, "true"), env),
        "podman none": (b.podman_argv("run", "--rm", "--network", "none", IMAGE, "true"), env),
        "runc run": (runc, env),
    }
    out: dict[str, list[float]] = {k: [] for k in variants}
    for argv, e in variants.values():  # warm-up: caches, bridges, firewall tables
        timed(argv, e)
    _server.warm(DOCKYARD, b.root, env)
    rng = random.Random(seed)
    for _ in range(runs):
        for k in rng.sample(list(variants), len(variants)):
            argv, e = variants[k]
            time.sleep(settle)  # what the last command left running (any engine's) ends first
            out[k].append(timed(argv, e))
    return out


def _get(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"GET / HTTP/1.0\r\n\r\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    if not data.endswith(b"hello-from-app\n"):
        raise RuntimeError(f"bad reply {data[-60:]!r}")


def _wait_ready(port: int) -> None:
    end = time.monotonic() + 15
    while True:
        try:
            _get(port)
            return
        except (OSError, RuntimeError):
            if time.monotonic() > end:
                raise
            time.sleep(0.05)


def rate(port: int, requests: int, threads: int) -> float:
    per = requests // threads
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(per):
                _get(port)
        except BaseException as e:
            errors.append(e)

    ts = [threading.Thread(target=work) for _ in range(threads)]
    t = time.perf_counter()
    for th in ts:
        th.start()
    for th in ts:
        th.join()
    dt = time.perf_counter() - t
    if errors:
        raise errors[0]
    return per * threads / dt


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = int(s.getsockname()[1])
    s.close()
    return port


def throughput(b: Bench, requests: int, threads: int, rounds: int) -> dict[str, list[float]]:
    pd, pp = free_port(), free_port()
    b.run_dy("run", "-d", "--name", "dybench", "-p", f"{pd}:3000", IMAGE)
    b.run_pod("run", "-d", "--name", "dybench", "-p", f"{pp}:3000", IMAGE)
    _wait_ready(pd)
    _wait_ready(pp)
    out: dict[str, list[float]] = {"dockyard": [], "podman": []}
    for _ in range(rounds):
        out["dockyard"].append(rate(pd, requests, threads))
        out["podman"].append(rate(pp, requests, threads))
    return out


def p90(xs: list[float]) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, round(0.9 * (len(s) - 1)))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--requests", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--settle", type=float, default=0.3)
    ap.add_argument("--seed", type=int, default=None, help="variant order (default: random)")
    args = ap.parse_args()
    if os.geteuid() != 0 or not shutil.which("podman") or not shutil.which("runc"):
        print("needs root, podman and runc", file=sys.stderr)
        return 2
    forward = iproute.read_sysctl("net.ipv4.ip_forward")
    run_dirs = [d for d in ("/run/runc", "/run/dockyard") if not os.path.exists(d)]
    tmp = Path(tempfile.mkdtemp(prefix="dyr", dir="/tmp"))
    b = Bench(tmp)
    try:
        b.setup()
        seed = args.seed if args.seed is not None else secrets.randbelow(1 << 30)
        print(f"variant order: --seed {seed}")
        starts = start_times(b, args.runs, args.settle, seed)
        rates = throughput(b, args.requests, args.threads, args.rounds)
    finally:
        b.teardown()
        iproute.write_sysctl("net.ipv4.ip_forward", forward)
        shutil.rmtree(tmp, ignore_errors=True)
        for d in run_dirs:  # made by podman's runc or our runtime during the run: empty now
            with contextlib.suppress(OSError):
                os.rmdir(d)
    print(f"run --rm IMG true, wall ms ({args.runs} runs, interleaved):")
    med = {k: statistics.median(v) for k, v in starts.items()}
    for k, v in starts.items():
        print(f"  {k:<26} median {med[k]:7.1f}   p90 {p90(v):7.1f}")
    r_default = med["dockyard default"] / med["podman default"]
    r_none = med["dockyard none"] / med["podman none"]
    print(f"  ratio dockyard/podman: default network {r_default:.2f}, --network none {r_none:.2f}")
    print(
        f"  ratio dockyard --network none / runc run: {med['dockyard none'] / med['runc run']:.2f}"
    )
    cold = med["dockyard none, no server"]
    print(f"  without a command server: /podman {cold / med['podman none']:.2f}, /runc "
          f"{cold / med['runc run']:.2f}")  # fmt: skip
    print(
        f"published port 127.0.0.1 -> :3000 (busybox httpd), req/s, {args.requests} requests,"
        f" {args.threads} threads, {args.rounds} rounds:"
    )
    mr = {k: statistics.median(v) for k, v in rates.items()}
    for k, v in rates.items():
        print(f"  {k:<18} median {mr[k]:7.0f}   rounds {', '.join(f'{x:.0f}' for x in v)}")
    print(f"  ratio dockyard/podman: {mr['dockyard'] / mr['podman']:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
