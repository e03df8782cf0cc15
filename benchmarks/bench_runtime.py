"""Benchmark: `dockyard-runtime run` vs `runc run` vs `crun run` of /bin/true on one bundle.

Builds a busybox bundle (static /bin/busybox, no image), then runs each runtime N times,
interleaved (ours, runc, crun, ours, ...) so machine noise hits all alike, each with its own
--root, and prints per-runtime median/min/p90 wall time and the ratio to ours. crun is skipped
when it fails on this host (crun 1.8 refuses hybrid cgroups). Needs root.

    .venv/bin/python benchmarks/bench_runtime.py [-n 50]
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-n", type=int, default=50, help="iterations per runtime")
    opts = parser.parse_args()
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
