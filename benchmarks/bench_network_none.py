"""Benchmark: what `--network none` costs in `container.networking.attach`, in a warm process.

    .venv/bin/python benchmarks/bench_network_none.py [--runs 300]

Interleaved, in one process (the supervisor's situation: modules imported, databases open),
attach then release of a `none` container, timed around attach:
- `old`: what attach did for `none` before (a persistent netns made on one thread, `lo` brought
  up on a second thread that joins it, then the three /etc files);
- `new`: `networking.attach` now (only the files: the runtime makes the namespace with
  CLONE_NEWNET and brings `lo` up in it, as runc and crun do).
The kernel work of making the namespace moves into the runtime's clone (not timed here: it is
the same for both, ~1 ms on the dev VM). Names carry a random `dyb` tag; the state root is a
temp dir, removed at the end with every namespace made here.
"""

from __future__ import annotations

import argparse
import json
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from dockyard.container import networking
from dockyard.container.model import Container
from dockyard.engine import Engine
from dockyard.network import dns, netns
from dockyard.network.setup import files_dir


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=300)
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="dy-bench-none-"))
    tag = "dyb" + secrets.token_hex(2)
    raw = {"table": tag, "default-bridge": f"{tag}b0", "bridge-prefix": f"{tag}n",
           "veth-prefix": f"{tag}v", "run-dir": str(root / "netns")}  # fmt: skip
    (root / "config.json").write_text(json.dumps({"network": raw}))
    engine = Engine.open(root)
    mgr = engine.networks
    try:

        def old(c: Container) -> None:
            path = mgr.create_netns(c.id)
            mgr.setup_none(path)
            dns.write_standalone(files_dir(mgr, c.id), "h", host_mode=False)

        def new(c: Container) -> None:
            networking.attach(engine, c, lambda s: s)

        ways: dict[str, Callable[[Container], None]] = {"old": old, "new": new}
        times: dict[str, list[float]] = {k: [] for k in ways}
        for i in range(args.runs + 20):
            for name, fn in ways.items():
                cid = f"{name}{i:061x}"
                c = Container(id=cid, name=cid[:10], image="x", image_id="x", created="",
                              config={"Hostname": "h"}, host_config={"NetworkMode": "none"},
                              network={"Endpoints": {}, "Settings": {}})  # fmt: skip
                t0 = time.perf_counter()
                fn(c)
                dt = time.perf_counter() - t0
                networking.release(engine, cid)
                if i >= 20:  # warm-up rounds are not counted
                    times[name].append(dt)
        for name, ts in times.items():
            ts.sort()
            print(f"{name}: median {statistics.median(ts) * 1e3:.3f} ms, "
                  f"p90 {ts[len(ts) * 9 // 10] * 1e3:.3f} ms")  # fmt: skip
        ratio = statistics.median(times["new"]) / statistics.median(times["old"])
        print(f"ratio new/old: {ratio:.2f}")
    finally:
        engine.close()
        for p in (root / "netns").glob("*"):
            netns.delete(p)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
