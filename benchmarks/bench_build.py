"""Benchmark: `dockyard build` vs `podman build` (Buildah) on the same Dockerfiles and contexts,
interleaved rounds, medians and ratios in one run.

Scenarios (issue 5):
- small cold:      the node-app-shaped Dockerfile (WORKDIR, COPY package.json, RUN, COPY . .,
                   EXPOSE, CMD) with `--no-cache`;
- small cached:    the same build again, nothing changed (every step cached);
- small 1 changed: one source file rewritten with new bytes (COPY . . and what follows re-run);
- big cold/cached: `COPY . /data` of a ~200 MB context made of many small files.
Both tools start from the same busybox base (imported into dockyard, then `dockyard save |
podman load`); podman runs with runc, an isolated `--root/--runroot` under /tmp, cgroupfs and the
file events backend. Every command runs as a user types it (CLI start-up included).

    .venv/bin/python benchmarks/bench_build.py [--runs 5] [--mb 200] [--driver overlay]

Targets, as ratios to podman in the same run: small cold <= 0.3, small cached <= 0.2,
200 MB cold <= 0.5, 200 MB cached <= 0.08.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import _server

DOCKYARD = str(Path(sys.executable).parent / "dockyard")
DOCKYARD_SRC = Path(__file__).resolve().parent.parent / "src" / "dockyard"
SMALL_DOCKERFILE = """\
FROM busybox:latest
WORKDIR /app
COPY package.json ./
RUN mkdir -p node_modules && cp package.json node_modules/.installed
COPY . .
EXPOSE 3000
CMD ["sh", "server.sh"]
"""
BIG_DOCKERFILE = "FROM busybox:latest\nCOPY . /data\n"
TARGETS = {"small cold": 0.3, "small cached": 0.2, "big cold": 0.5, "big cached": 0.08}


class Podman:
    """podman with storage, run root, tmp and config of its own under `base`."""

    def __init__(self, base: Path, driver: str) -> None:
        conf = base / "containers.conf"
        conf.write_text(
            '[engine]\nruntime = "runc"\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n'
            f'events_logfile_path = "{base}/events.log"\ntmp_dir = "{base}/tmp"\n'
            f'static_dir = "{base}/static"\n[network]\nnetwork_config_dir = "{base}/net"\n'
        )
        self.env = {**os.environ, "CONTAINERS_CONF": str(conf)}
        self.prefix = ["podman", "--root", f"{base}/root", "--runroot", f"{base}/run"]
        self.prefix += ["--storage-driver", driver]

    def argv(self, *args: str) -> list[str]:
        return [*self.prefix, *args]


def timed(argv: list[str], env: dict[str, str] | None = None) -> float:
    t = time.perf_counter()
    p = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed: {p.stderr.decode()[-2000:]}")
    return time.perf_counter() - t


def small_context(d: Path) -> Path:
    d.mkdir(parents=True)
    (d / "package.json").write_text('{"name": "bench-app", "version": "1.0.0"}\n')
    (d / "server.sh").write_text("#!/bin/sh\necho serving\n")
    for i in range(20):
        (d / f"src{i}.js").write_text(f"module.exports = {i};\n" * 50)
    (d / "Dockerfile").write_text(SMALL_DOCKERFILE)
    return d


def big_context(d: Path, mb: int, file_kb: int = 16) -> Path:
    """~`mb` MB in files of `file_kb` KB, 200 per directory."""
    d.mkdir(parents=True)
    n = mb * 1024 // file_kb
    for i in range(n):
        sub = d / f"dir{i // 200:04d}"
        if i % 200 == 0:
            sub.mkdir()
        (sub / f"f{i:06d}.bin").write_bytes(os.urandom(file_kb * 1024))
    (d / "Dockerfile").write_text(BIG_DOCKERFILE)
    return d


def setup(work: Path, driver: str) -> tuple[Path, Podman]:
    from tests.images import busybox_image

    from dockyard.engine import Engine

    dy_root = work / "dy"
    with Engine.open(dy_root) as e:
        busybox_image(e)
    (work / "pm").mkdir()
    pm = Podman(work / "pm", driver)
    save = subprocess.Popen([DOCKYARD, "--root", str(dy_root), "save", "busybox:latest"],
                            stdout=subprocess.PIPE)  # fmt: skip
    subprocess.run(pm.argv("load", "-q"), stdin=save.stdout, env=pm.env, check=True,
                   capture_output=True)  # fmt: skip
    save.wait()
    return dy_root, pm


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--mb", type=int, default=200)
    ap.add_argument("--driver", default="overlay", help="podman storage driver")
    args = ap.parse_args()
    if shutil.which("podman") is None:
        print("podman is not installed", file=sys.stderr)
        return 1
    work = Path(tempfile.mkdtemp(prefix="bb-", dir="/tmp"))
    try:
        return run(work, args.runs, args.mb, args.driver)
    finally:
        _server.stop(work / "dy")
        pm_root = work / "pm" / "root"
        if pm_root.exists():
            subprocess.run(["umount", "-R", str(pm_root)], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)


def run(work: Path, runs: int, mb: int, driver: str) -> int:
    dy_root, pm = setup(work, driver)
    # an installed package has its bytecode cached; this sandbox sets PYTHONDONTWRITEBYTECODE
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(Path(DOCKYARD_SRC))],
                   check=True, capture_output=True)  # fmt: skip
    dy_env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    small = small_context(work / "small")
    t = time.perf_counter()
    big = big_context(work / "big", mb)
    print(f"big context: {mb} MB in {sum(1 for _ in big.rglob('*.bin'))} files "
          f"(written in {time.perf_counter() - t:.1f}s)")  # fmt: skip
    dy = [DOCKYARD, "--root", str(dy_root), "build", "-q", "--network", "none"]
    pmb = pm.argv("build", "-q", "--network", "none")
    samples: dict[str, list[float]] = {}

    def both(name: str, extra: list[str], ctx: Path, tag: str) -> None:
        for tool, argv, env in (
            ("dockyard", [*dy, *extra, "-t", tag, str(ctx)], dy_env),
            ("podman", [*pmb, *extra, "-t", tag, str(ctx)], pm.env),
        ):
            samples.setdefault(f"{name} {tool}", []).append(timed(argv, env))

    both("warm-up", [], small, "small:1")  # caches; the command server starts after it
    _server.warm(DOCKYARD, dy_root, dy_env)
    for r in range(runs):
        both("small cold", ["--no-cache"], small, "small:1")
        both("small cached", [], small, "small:1")
        (small / "src3.js").write_text(f"module.exports = 'round {r}';\n")
        both("small changed", [], small, "small:1")
        both("big cold", ["--no-cache"], big, "big:1")
        both("big cached", [], big, "big:1")
        print(f"round {r + 1}/{runs} done", file=sys.stderr)
    print(f"\nmedians over {runs} interleaved rounds (ms), ratio dockyard/podman:")
    print(f"{'scenario':<16}{'dockyard':>10}{'podman':>10}{'ratio':>8}{'target':>8}")
    ok = True
    for name in ("small cold", "small cached", "small changed", "big cold", "big cached"):
        d = statistics.median(samples[f"{name} dockyard"]) * 1000
        p = statistics.median(samples[f"{name} podman"]) * 1000
        target = TARGETS.get(name)
        mark = "" if target is None else f"<={target}"
        if target is not None and d / p > target:
            ok = False
            mark += " MISS"
        print(f"{name:<16}{d:>10.0f}{p:>10.0f}{d / p:>8.2f}{mark:>8}")
    return 0 if ok else 2


if __name__ == "__main__":
    sys.exit(main())
