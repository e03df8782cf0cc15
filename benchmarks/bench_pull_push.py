"""Benchmark: push and pull of a ~200 MB, 4-layer image to a local registry — dockyard vs
`skopeo copy` vs `podman push`/`pull`, interleaved rounds, medians and ratios in one run.

The image is made of real files (slices of /usr: many small files and some large binaries),
stored uncompressed in a dockyard state root, as `import`/`build` store layers. The same image
is written as an OCI layout (uncompressed layers) for skopeo and loaded into an isolated
podman store. Every push goes to a fresh repository of one docker-registry on 127.0.0.1 and
must compress its layers: before each dockyard push the gzip variants of the previous round are
deleted, so each round measures a first push. Pulls go into an empty dockyard state root /
an emptied podman store (both unpack); `skopeo copy` to an OCI layout (no unpack) is shown for
reference. Every command runs as a user types it (startup included).

    .venv/bin/python benchmarks/bench_pull_push.py [--mb 200] [--runs 5] [--driver overlay]

Targets (issue 7): dockyard push no slower than skopeo's; dockyard pull at most half of
podman's.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

DOCKYARD = str(Path(sys.executable).parent / "dockyard")
SOURCES = ("/usr/lib/python3.11", "/usr/share", "/usr/bin", "/usr/lib/x86_64-linux-gnu")


def _files(top: str) -> Iterator[Path]:
    for d, dirs, files in os.walk(top):
        dirs.sort()
        for f in sorted(files):
            p = Path(d) / f
            if p.is_file() and not p.is_symlink():
                yield p


def _layer(path: Path, top: str, size: int) -> str:
    """A layer tar of the regular files under `top`, up to ~`size` bytes; its diff_id."""
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        written = 0
        for p in _files(top):
            if written >= size:
                break
            if p.stat().st_size > 8 << 20:  # keep layers near their share of the total
                continue
            with contextlib.suppress(OSError):
                tar.add(str(p), arcname=str(p).lstrip("/"), recursive=False)
                written += p.stat().st_size
    h = hashlib.sha256()
    with path.open("rb") as f:
        while b := f.read(1 << 20):
            h.update(b)
    return "sha256:" + h.hexdigest()


def build_image(root: Path, work: Path, total_mb: int) -> tuple[str, list[str]]:
    """The image `bench:1` in dockyard state `root`; its ID and diff_ids."""
    from dockyard.digest import Digest
    from dockyard.engine import Engine
    from dockyard.oci import mediatypes
    from dockyard.oci.types import Descriptor, ImageConfig, Manifest
    from dockyard.reference import parse_reference

    descs, diff_ids = [], []
    with Engine.open(root) as engine:
        for i, top in enumerate(SOURCES):
            p = work / f"layer{i}.tar"
            d = _layer(p, top, total_mb * (1 << 20) // len(SOURCES))
            with p.open("rb") as f:
                descs.append(
                    Descriptor(
                        mediatypes.OCI_LAYER, engine.content.put_file(f, d), p.stat().st_size
                    )
                )
            diff_ids.append(d)
            p.unlink()
        config = ImageConfig(
            diff_ids=tuple(Digest(d) for d in diff_ids),
            architecture="amd64",
            os="linux",
            config={"Cmd": ["sh"]},
        ).to_json()
        cd = engine.content.put_bytes(config)
        m = Manifest(Descriptor(mediatypes.OCI_CONFIG, cd, len(config)), tuple(descs))
        md = engine.content.put_bytes(m.to_json())
        iid = str(engine.images.register(md, [parse_reference("bench:1")]).id)
        write_layout(engine, md, work / "layout")
    return iid, diff_ids


def write_layout(engine: object, manifest_digest: str, dest: Path) -> None:
    """The image as an OCI layout (hard links to the blobs), tagged `v1`, for skopeo."""
    import json

    from dockyard.oci.types import Manifest

    content = engine.content  # type: ignore[attr-defined]
    m = Manifest.from_json(content.read_bytes(manifest_digest))
    blobs = dest / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    for d in [manifest_digest, m.config.digest, *[x.digest for x in m.layers]]:
        os.link(content.path(d), blobs / d.split(":")[1])
    (dest / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    entry = {
        "mediaType": m.media_type,
        "digest": manifest_digest,
        "size": content.size(manifest_digest),
        "annotations": {"org.opencontainers.image.ref.name": "v1"},
    }
    (dest / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [entry]}))


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
        # a private, empty /var/lib: even with --root podman keeps a blob-info cache there,
        # which would let a push skip compressing (and would change the host's state)
        script = 'mount -t tmpfs none /var/lib && exec podman "$@"'
        self.prefix = ["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh"]
        self.prefix += ["--root", f"{base}/root", "--runroot", f"{base}/run"]
        self.prefix += ["--storage-driver", driver]

    def argv(self, *args: str) -> list[str]:
        return [*self.prefix, *args]

    def run(self, *args: str, check: bool = True) -> None:
        subprocess.run(self.argv(*args), env=self.env, check=check, capture_output=True)


def timed(argv: list[str], env: dict[str, str] | None = None) -> float:
    t = time.perf_counter()
    p = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed: {p.stderr.decode()}")
    return time.perf_counter() - t


def drop_variants(root: Path, diff_ids: list[str]) -> None:
    """Forget the gzip variants of the last push, so the next push compresses again."""
    from dockyard.engine import Engine
    from dockyard.image.distribution_push import GZIP_VARIANTS

    with Engine.open(root) as e:
        for d in diff_ids:
            for mt in GZIP_VARIANTS:
                v = e.meta.layer_variant(d, mt)
                if v:
                    e.content.delete(v[0])


def main() -> int:
    from tests.compat.test_registry_distribution import run_registry, skopeo_command

    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=int, default=200)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--driver", default="overlay", help="podman storage driver")
    args = ap.parse_args()
    for tool in ("podman", "skopeo", "docker-registry", "unshare"):
        if shutil.which(tool) is None:
            print(f"{tool} is not installed", file=sys.stderr)
            return 1
    work = Path(tempfile.mkdtemp(prefix="dybench-"))
    new_dirs = [d for d in (Path("/run/containers/networks"),) if not d.exists()]
    os.environ["DOCKER_CONFIG"] = str(work / "docker-config")
    (work / "docker-config").mkdir()
    (work / "docker-config" / "config.json").write_text("{}\n")
    pm = Podman(work, args.driver)
    try:
        src = work / "src"
        iid, diff_ids = build_image(src, work, args.mb)
        layout = f"oci:{work / 'layout'}:v1"
        pm.run("pull", layout)
        pm.run("tag", iid.split(":")[1], "bench:1")
        sk = skopeo_command()
        with run_registry(work / "registry") as reg:
            print(f"image {iid}: {len(diff_ids)} layers, {args.mb} MB; {args.runs} runs")
            times = run_rounds(args.runs, reg, src, work, pm, sk, diff_ids)
        report(times)
        return 0
    finally:
        pm.run("rmi", "-af", check=False)
        shutil.rmtree(work, ignore_errors=True)
        for d in new_dirs:
            with contextlib.suppress(OSError):
                d.rmdir()


def run_rounds(
    runs: int, reg: str, src: Path, work: Path, pm: Podman, sk: list[str], diff_ids: list[str]
) -> dict[str, list[float]]:
    tls = "--tls-verify=false"
    times: dict[str, list[float]] = {}
    for i in range(runs):
        fresh = work / f"fresh{i}"
        dy_ref, sk_ref, pm_ref = (f"{reg}/{t}{i}/bench:1" for t in ("dy", "sk", "pm"))
        subprocess.run([DOCKYARD, "--root", str(src), "tag", "bench:1", dy_ref], check=True)
        pm.run("tag", "bench:1", pm_ref)
        drop_variants(src, diff_ids)
        cmds: list[tuple[str, list[str], dict[str, str] | None]] = [
            ("push dockyard", [DOCKYARD, "--root", str(src), "push", "-q", dy_ref], None),
            ("push skopeo", [*sk, "copy", "-q", "--dest-tls-verify=false",
                             f"oci:{work / 'layout'}:v1", f"docker://{sk_ref}"], None),
            ("push podman", pm.argv("push", "-q", tls, pm_ref), pm.env),
            ("pull dockyard", [DOCKYARD, "--root", str(fresh), "pull", "-q", dy_ref], None),
            ("pull skopeo (no unpack)", [*sk, "copy", "-q", "--src-tls-verify=false",
                                         f"docker://{sk_ref}", f"oci:{work / 'sk-out'}:v1"], None),
            ("pull podman", pm.argv("pull", "-q", tls, pm_ref), pm.env),
        ]  # fmt: skip
        for name, argv, env in cmds:
            if name == "pull podman":
                pm.run("rmi", "-af")
            if i == 0:
                print(f"  {name}: {' '.join(argv)}")
            times.setdefault(name, []).append(timed(argv, env))
        shutil.rmtree(fresh, ignore_errors=True)
        shutil.rmtree(work / "sk-out", ignore_errors=True)
        pm.run("pull", f"oci:{work / 'layout'}:v1")  # podman's source image for the next round
        pm.run("tag", iid_of(pm), "bench:1")
    return times


def iid_of(pm: Podman) -> str:
    p = subprocess.run(pm.argv("images", "-q"), env=pm.env, capture_output=True, text=True)
    return p.stdout.split()[0]


def report(times: dict[str, list[float]]) -> None:
    med = {k: statistics.median(v) for k, v in times.items()}
    for k, v in times.items():
        print(f"{k:24s} median {med[k]:6.2f}s  runs " + " ".join(f"{x:.2f}" for x in v))
    print(f"ratio push dockyard/skopeo = {med['push dockyard'] / med['push skopeo']:.2f}")
    print(f"ratio push dockyard/podman = {med['push dockyard'] / med['push podman']:.2f}")
    print(f"ratio pull dockyard/podman = {med['pull dockyard'] / med['pull podman']:.2f}")


if __name__ == "__main__":
    sys.exit(main())
