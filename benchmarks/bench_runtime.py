"""Benchmark: `dockyard-runtime run` vs `runc run` vs `crun run` of /bin/true on one bundle.

Builds a busybox bundle (static /bin/busybox, no image), then runs each runtime N times,
interleaved (ours, runc, crun, ours, ...) so machine noise hits all alike, each with its own
--root, and prints per-runtime median/min/p90 wall time and the ratio to ours. crun is skipped
when it fails on this host (crun 1.8 refuses hybrid cgroups). Needs root.

    .venv/bin/python benchmarks/bench_runtime.py [-n 50]

`--library` times the engine's path instead: `NativeRuntime.create` + `start` + wait + `delete`
in a loop in this (warm) process, once on the plain bundle and once on a copy that joins a
network namespace by path (as the engine's containers do: the launcher's two-stage path);
per-phase medians. Ours only (runc has no library).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def make_bundle(d: Path) -> Path:
    rootfs = d / "rootfs"
    for sub in ("bin", "etc", "proc", "sys", "dev", "tmp"):
        (rootfs / sub).mkdir(parents=True, exist_ok=True)
    shutil.copy2("/bin/busybox", rootfs / "bin" / "busybox")
    (rootfs / "bin" / "true").symlink_to("busybox")
    (rootfs / "bin" / "sh").symlink_to("busybox")
    (rootfs / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (rootfs / "etc" / "group").write_text("root:x:0:\n")
    out = subprocess.run(["runc", "spec", "--bundle", str(d)], capture_output=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"runc spec failed: {out.stderr.decode()}")
    config = json.loads((d / "config.json").read_text())
    config["process"]["terminal"] = False
    config["process"]["args"] = ["/bin/true"]
    (d / "config.json").write_text(json.dumps(config))
    return d


def runtimes() -> dict[str, list[str]]:
    ours = Path(sys.executable).with_name("dockyard-runtime")
    found = {
        "dockyard": [str(ours)] if ours.exists() else [sys.executable, "-m", "dockyard.runtime.cli"]
    }
    for name in ("runc", "crun"):
        path = shutil.which(name)
        if path:
            found[name] = [path]
    return found


def run_once(argv: list[str], root: str, bundle: Path, cid: str) -> float:
    start = time.perf_counter()
    proc = subprocess.run(
        [*argv, "--root", root, "run", "--bundle", str(bundle), cid],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        check=False,
    )
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr.decode().strip()[:300])
    return elapsed


def library(bundle: Path, n: int) -> None:
    """Time the in-process lifecycle (see the module docstring)."""
    import os

    from dockyard.runtime.native import NativeRuntime

    holder = subprocess.Popen(["unshare", "--net", "sleep", "600"])  # a netns to join
    try:
        time.sleep(0.2)
        joined = bundle.parent / "bundle-netns"
        joined.mkdir()
        (joined / "rootfs").symlink_to(bundle / "rootfs")
        config = json.loads((bundle / "config.json").read_text())
        config["linux"]["namespaces"] = [
            ns
            if ns["type"] != "network"
            else {"type": "network", "path": f"/proc/{holder.pid}/ns/net"}
            for ns in config["linux"]["namespaces"]
        ]
        (joined / "config.json").write_text(json.dumps(config))
        root = tempfile.mkdtemp(prefix="bench-lib-", dir="/run")
        rt = NativeRuntime(root)
        null = os.open(os.devnull, os.O_RDWR)
        try:
            for name, b in (("plain", bundle), ("netns", joined)):
                phases: dict[str, list[float]] = {
                    "create": [],
                    "start+wait": [],
                    "delete": [],
                    "total": [],
                }
                for i in range(-2, n):  # two warm-up rounds
                    t0 = time.perf_counter()
                    rt.create(f"l{i}", str(b), stdio=(null, null, null))
                    t1 = time.perf_counter()
                    rt.start(f"l{i}")
                    rt.wait(f"l{i}")
                    t2 = time.perf_counter()
                    rt.delete(f"l{i}")
                    t3 = time.perf_counter()
                    if i >= 0:
                        for key, dt in (("create", t1 - t0), ("start+wait", t2 - t1),
                                        ("delete", t3 - t2), ("total", t3 - t0)):  # fmt: skip
                            phases[key].append(dt)
                    time.sleep(0.05)  # the engine starts containers now and then, not back to back
                print(f"{name:<6}", "  ".join(
                    f"{key} {statistics.median(v) * 1e3:.1f}" for key, v in phases.items()
                ), " (median ms)")  # fmt: skip
        finally:
            os.close(null)
            shutil.rmtree(root, ignore_errors=True)
    finally:
        holder.kill()
        holder.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-n", type=int, default=50, help="iterations per runtime")
    parser.add_argument("--library", action="store_true", help="time NativeRuntime in-process")
    opts = parser.parse_args()
    if opts.library:
        with tempfile.TemporaryDirectory(prefix="bench-runtime-") as tmp:
            library(make_bundle(Path(tmp) / "bundle"), opts.n)
        return 0
    with tempfile.TemporaryDirectory(prefix="bench-runtime-") as tmp:
        bundle = make_bundle(Path(tmp) / "bundle")
        roots = {}
        times: dict[str, list[float]] = {}
        for name, argv in runtimes().items():
            roots[name] = tempfile.mkdtemp(prefix=f"bench-{name}-", dir="/run")
            try:
                run_once(argv, roots[name], bundle, f"warm-{name}")  # also writes .pyc
                times[name] = []
            except RuntimeError as e:
                print(f"skipping {name}: {e}")
        try:
            for i in range(opts.n):
                for name in times:
                    times[name].append(run_once(runtimes()[name], roots[name], bundle, f"b{i}"))
        finally:
            for root in roots.values():
                shutil.rmtree(root, ignore_errors=True)
    base = statistics.median(times["dockyard"])
    print(f"{'runtime':<10} {'median ms':>10} {'min ms':>8} {'p90 ms':>8} {'median/ours':>12}")
    for name, samples in times.items():
        med = statistics.median(samples)
        p90 = sorted(samples)[int(0.9 * (len(samples) - 1))]
        print(
            f"{name:<10} {med * 1e3:>10.1f} {min(samples) * 1e3:>8.1f} {p90 * 1e3:>8.1f}"
            f" {med / base:>12.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
