"""Benchmark: `dockyard save`/`load` vs `podman save`/`load` of the same ~200 MB image.

The image has 4 layers of random-ish files (random bytes mixed with repeated text), built
straight into a dockyard state root, saved, and loaded into an isolated podman store (vfs
driver, runc, everything under a temp dir) so both tools hold the same image ID. Then, for
`--runs` rounds, interleaved: dockyard save, podman save, dockyard load (into a fresh state
root), podman load (after removing the image). Prints each command, the medians, and the
dockyard/podman ratios.

    .venv/bin/python benchmarks/bench_save_load.py [--mb 200] [--runs 5]
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

DOCKYARD = str(Path(sys.executable).parent / "dockyard")


def _layer(path: Path, seed: int, size: int) -> str:
    """Write a layer tar of files totalling ~`size` bytes; return its diff_id."""
    text = b"the quick brown fox jumps over the lazy dog %d\n" % seed
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        written, i = 0, 0
        while written < size:
            n = min(size - written, (1 + i % 4) << 20)
            data = os.urandom(n // 2) + (text * (n // 2 // len(text) + 1))[: n - n // 2]
            info = tarfile.TarInfo(f"layer{seed}/dir{i % 7}/file{i}.bin")
            info.size, info.mode, info.mtime = len(data), 0o644, 1_700_000_000
            tar.addfile(info, io.BytesIO(data))
            written, i = written + n, i + 1
    h = hashlib.sha256()
    with path.open("rb") as f:
        while b := f.read(1 << 20):
            h.update(b)
    return "sha256:" + h.hexdigest()


def build_image(root: Path, work: Path, total_mb: int) -> str:
    from dockyard.engine import Engine
    from dockyard.oci import mediatypes
    from dockyard.oci.types import Descriptor, ImageConfig, Manifest
    from dockyard.reference import parse_reference

    layers, diff_ids = [], []
    for i in range(4):
        p = work / f"layer{i}.tar"
        diff_ids.append(_layer(p, i, total_mb * (1 << 20) // 4))
        layers.append(p)
    with Engine.open(root) as engine:
        descs = []
        for p, d in zip(layers, diff_ids, strict=True):
            with p.open("rb") as f:
                digest = engine.content.put_file(f, expected=d)
            descs.append(Descriptor(mediatypes.OCI_LAYER, digest, p.stat().st_size))
            p.unlink()
        config = ImageConfig(diff_ids=tuple(diff_ids), config={"Cmd": ["sh"]}).to_json()
        cd = engine.content.put_bytes(config)
        m = Manifest(Descriptor(mediatypes.OCI_CONFIG, cd, len(config)), tuple(descs))
        md = engine.content.put_bytes(m.to_json())
        return str(engine.images.register(md, [parse_reference("bench:1")]).id)


class Podman:
    def __init__(self, base: Path) -> None:
        conf = base / "containers.conf"
        conf.write_text(
            '[engine]\nruntime = "runc"\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n'
            f'events_logfile_path = "{base}/events.log"\ntmp_dir = "{base}/tmp"\n'
            f'static_dir = "{base}/static"\n[network]\nnetwork_config_dir = "{base}/net"\n'
        )
        self.env = {**os.environ, "CONTAINERS_CONF": str(conf)}
        self.prefix = ["podman", "--root", f"{base}/root", "--runroot", f"{base}/run"]
        self.prefix += ["--storage-driver", "vfs"]

    def argv(self, *args: str) -> list[str]:
        return [*self.prefix, *args]

    def run(self, *args: str) -> None:
        subprocess.run(self.argv(*args), env=self.env, check=True, capture_output=True)


def timed(argv: list[str], env: dict[str, str] | None = None) -> float:
    t = time.perf_counter()
    subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return time.perf_counter() - t


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=int, default=200)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    if shutil.which("podman") is None:
        print("podman is not installed", file=sys.stderr)
        return 1
    work = Path(tempfile.mkdtemp(prefix="dybench-"))
    new_dirs = [d for d in (Path("/run/containers/networks"),) if not d.exists()]
    try:
        src = work / "src"
        iid = build_image(src, work, args.mb)
        pm = Podman(work)
        ours, theirs = work / "ours.tar", work / "theirs.tar"
        subprocess.run(
            [DOCKYARD, "--root", str(src), "save", "-o", str(ours), "bench:1"], check=True
        )
        pm.run("load", "-i", str(ours))
        print(f"image {iid}, archive {ours.stat().st_size / 1e6:.0f} MB, {args.runs} runs")
        cmds = {
            "dockyard save": [DOCKYARD, "--root", str(src), "save", "-o", str(ours), "bench:1"],
            "podman save": pm.argv("save", "-o", str(theirs), "bench:1"),
            "dockyard load": [DOCKYARD, "--root", "{fresh}", "load", "-i", str(ours)],
            "podman load": pm.argv("load", "-i", str(theirs)),
        }
        for name, argv in cmds.items():
            print(f"  {name}: {' '.join(argv)}")
        times: dict[str, list[float]] = {k: [] for k in cmds}
        for i in range(args.runs):
            for name, argv in cmds.items():
                if name == "podman save":
                    theirs.unlink(missing_ok=True)
                if name == "podman load":
                    pm.run("rmi", "-f", "bench:1")
                fresh = work / f"fresh{i}"
                argv = [a.replace("{fresh}", str(fresh)) for a in argv]
                env = pm.env if name.startswith("podman") else None
                times[name].append(timed(argv, env))
                shutil.rmtree(fresh, ignore_errors=True)
        med = {k: statistics.median(v) for k, v in times.items()}
        for k, v in times.items():
            print(f"{k:14s} median {med[k]:6.2f}s  runs " + " ".join(f"{x:.2f}" for x in v))
        for op in ("save", "load"):
            print(
                f"ratio {op}: dockyard/podman = {med['dockyard ' + op] / med['podman ' + op]:.2f}"
            )
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)
        for d in new_dirs:
            with contextlib.suppress(OSError):
                d.rmdir()


if __name__ == "__main__":
    sys.exit(main())
