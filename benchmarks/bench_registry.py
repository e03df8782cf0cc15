"""Benchmark: push and pull of a ~200 MB image (5 layers of incompressible data) through a local
docker-registry, Dockyard's registry client vs `skopeo copy`, same registry, same bytes.

    .venv/bin/python benchmarks/bench_registry.py [--runs 3] [--layers 5] [--mb 40]

Prints the median wall time of each operation and the ratio dockyard/skopeo (< 1: we are
faster). Pushes go to a fresh registry each run (so every blob is uploaded); pulls go to an
empty store / directory each run.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.compat.test_registry_distribution import (
    run_registry,
    skopeo_command,
    store_image,
    write_oci_layout,
)
from tests.unit.test_registry_stub import make_image

from dockyard.reference import parse_reference
from dockyard.registry.client import RegistryClient
from dockyard.registry.pull import pull
from dockyard.registry.push import push
from dockyard.store.content import ContentStore


def timed(fn: Callable[..., object], *args: object) -> float:
    t = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--layers", type=int, default=5)
    ap.add_argument("--mb", type=int, default=40, help="MB per layer")
    args = ap.parse_args()
    if shutil.which("skopeo") is None:
        sys.exit("skopeo is not installed")
    skopeo = skopeo_command()
    work = Path(tempfile.mkdtemp(prefix="bench-registry-"))
    try:
        img = make_image(args.layers, args.mb * 1_000_000)
        total = sum(len(b) for b in img.blobs.values())
        src = ContentStore(work / "src")
        mdigest = store_image(src, img)
        write_oci_layout(work / "layout", {"v1": img})
        times: dict[str, list[float]] = {k: [] for k in ("push", "pull", "sk-push", "sk-pull")}

        def sk(*a: str) -> None:
            subprocess.run([*skopeo, *a], check=True, capture_output=True)

        layout = f"oci:{work / 'layout'}:v1"
        for i in range(args.runs):
            # a fresh registry per tool and run: skopeo's blob-info cache would otherwise mount
            # blobs it saw before instead of uploading them
            with run_registry(work / f"reg{i}") as reg, run_registry(work / f"sk{i}") as skreg:
                ours = parse_reference(f"{reg}/ours/img:v1")
                sk_ref = f"docker://{skreg}/sk/img:v1"
                times["push"].append(timed(push, RegistryClient(reg), ours, src, mdigest))
                t = timed(sk, "copy", "--dest-tls-verify=false", layout, sk_ref)
                times["sk-push"].append(t)
                dst = ContentStore(work / f"dst{i}")
                times["pull"].append(timed(pull, RegistryClient(reg), ours, dst))
                out = f"oci:{work / f'skout{i}'}:v1"
                times["sk-pull"].append(timed(sk, "copy", "--src-tls-verify=false", sk_ref, out))
            for d in (f"dst{i}", f"skout{i}", f"reg{i}", f"sk{i}"):
                shutil.rmtree(work / d)
        med = {k: statistics.median(v) for k, v in times.items()}
        print(f"image: {args.layers} layers, {total / 1e6:.0f} MB; {args.runs} runs; medians:")
        for op in ("push", "pull"):
            ours_t, sk_t = med[op], med[f"sk-{op}"]
            print(
                f"  {op:5s} dockyard {ours_t:6.2f} s ({total / ours_t / 1e6:6.0f} MB/s)   "
                f"skopeo {sk_t:6.2f} s ({total / sk_t / 1e6:6.0f} MB/s)   "
                f"ratio {ours_t / sk_t:4.2f}"
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
