"""Benchmark: compiling and loading the default Docker seccomp profile, cold vs cached.

Each sample is a fresh interpreter (as a `dockyard run` or `dockyard-runtime run` is) that times
`compile_filter(profile, cache_dir)` and then, in a forked child with no_new_privs set,
`Filter.load()`. Modes: `cold` (empty cache directory: libseccomp builds and exports the
program), `disk` (the program is read from the cache directory), `memo` (a second compile in the
same process: the in-process cache). `--baseline FILE` also times another implementation of the
same API (`compile_filter(spec)`, `Filter.load()`), e.g. an older version of
src/dockyard/linux/seccomp.py taken from git, for a before/after table. No root needed.

    .venv/bin/python benchmarks/bench_seccomp.py [-n 15] [--baseline /tmp/old_seccomp.py]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

CAPS = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_SETGID",
        "CAP_SETUID", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_NET_RAW", "CAP_SYS_CHROOT",
        "CAP_MKNOD", "CAP_AUDIT_WRITE", "CAP_SETFCAP"]  # fmt: skip


def _load_in_child(filt: Any) -> float:
    """Seconds `filt.load()` takes in a forked child (no_new_privs: no privilege needed)."""
    from dockyard.linux.kernel import PR_SET_NO_NEW_PRIVS, RealKernel

    k = RealKernel()
    k.preload()
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            k.prctl(PR_SET_NO_NEW_PRIVS, 1)
            start = time.perf_counter()
            filt.load()
            os.write(w, repr(time.perf_counter() - start).encode())
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r) as f:
        took = float(f.read())
    os.waitpid(pid, 0)
    return took


def sample(mode: str, cache_dir: str, baseline: str | None) -> None:
    """One measurement in this (fresh) interpreter; prints `compile_seconds load_seconds`."""
    from dockyard.container.seccomp import default_profile

    profile = default_profile(CAPS)
    if baseline:
        spec = importlib.util.spec_from_file_location("baseline_seccomp", baseline)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        start = time.perf_counter()
        filt = module.compile_filter(profile)
    else:
        from dockyard.linux import seccomp

        if mode == "memo":
            seccomp.compile_filter(profile, cache_dir)
        start = time.perf_counter()
        filt = seccomp.compile_filter(profile, cache_dir)
    compiled = time.perf_counter() - start
    print(compiled, _load_in_child(filt))


def run(mode: str, cache_dir: str, baseline: str | None) -> tuple[float, float]:
    argv = [sys.executable, __file__, "--sample", mode, "--cache-dir", cache_dir]
    if baseline:
        argv += ["--baseline", baseline]
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout.split()
    return float(out[0]), float(out[1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-n", type=int, default=15)
    parser.add_argument("--baseline", help="another seccomp.py to time (before/after)")
    parser.add_argument("--sample", help=argparse.SUPPRESS)
    parser.add_argument("--cache-dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sample:
        sample(args.sample, args.cache_dir, args.baseline)
        return 0
    modes = ["cold", "disk", "memo"] + (["baseline"] if args.baseline else [])
    times: dict[str, list[tuple[float, float]]] = {m: [] for m in modes}
    with tempfile.TemporaryDirectory(prefix="bench-seccomp-") as tmp:
        warm = os.path.join(tmp, "warm")
        run("cold", warm, None)  # fills the cache the `disk` samples read
        for i in range(args.n):  # interleaved, so machine noise hits all modes alike
            for m in modes:
                if m == "baseline":
                    times[m].append(run(m, tmp, args.baseline))
                else:
                    cold = os.path.join(tmp, f"cold{i}")
                    times[m].append(run(m, cold if m == "cold" else warm, None))
    print(f"{'mode':<10} {'compile ms':>11} {'load ms':>9} {'total ms':>9}   (medians, n={args.n})")
    for m, samples in times.items():
        c = statistics.median(s[0] for s in samples) * 1000
        ld = statistics.median(s[1] for s in samples) * 1000
        total = statistics.median(s[0] + s[1] for s in samples) * 1000
        print(f"{m:<10} {c:>11.3f} {ld:>9.3f} {total:>9.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
