"""save/load against real peers: podman loads and runs what `dockyard save` writes, dockyard
loads what `podman save` writes (docker-archive and oci-archive) with podman's image ID, and
skopeo and umoci accept our archive.

Podman runs with isolated everything (storage, run root, tmp dir, events log, network config,
`--network none`, a cgroup parent of the test's own, removed afterwards) and runc, so the host's
podman state is untouched.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.cli import dy
from tests.conftest import require_tool
from tests.images import BASE_CHANGES, extract_archive, write_busybox_rootfs

pytestmark = [pytest.mark.peer, pytest.mark.root]

Run = Callable[..., subprocess.CompletedProcess[str]]
CGROUP = Path("/sys/fs/cgroup")


@pytest.fixture
def busybox(tmp_path: Path) -> tuple[Path, str]:
    """A dockyard state root holding busybox:latest; its image ID."""
    root = tmp_path / "dy"
    tar = tmp_path / "rootfs.tar"
    with tar.open("wb") as f:
        write_busybox_rootfs(f)
    args = ["import"]
    for c in BASE_CHANGES:
        args += ["--change", c]
    return root, dy(root, *args, str(tar), "busybox:latest").out.strip()


def _remove_cgroup(name: str) -> None:
    for ctrl in CGROUP.iterdir():
        top = ctrl / name
        if not top.is_dir():
            continue
        dirs = sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts))
        for d in [*dirs, top]:
            with contextlib.suppress(OSError):
                d.rmdir()


@pytest.fixture
def podman() -> Iterator[Run]:
    require_tool("podman")
    require_tool("runc")
    base = Path(tempfile.mkdtemp(prefix="dypm-"))  # podman refuses a run root over 50 chars
    conf = base / "containers.conf"
    conf.write_text(
        "[containers]\n"
        # root here lacks CAP_SYS_RESOURCE: podman's default rlimits would be refused
        'default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]\n'
        'netns = "none"\n'
        "[engine]\n"
        'runtime = "runc"\n'
        'cgroup_manager = "cgroupfs"\n'
        'events_logger = "file"\n'
        f'events_logfile_path = "{base}/events.log"\n'
        f'tmp_dir = "{base}/tmp"\n'
        f'static_dir = "{base}/static"\n'
        f'volume_path = "{base}/volumes"\n'
        "[network]\n"
        f'network_config_dir = "{base}/net"\n'
    )
    cgroup = f"dockyard-test-{uuid.uuid4().hex[:8]}"
    # run-time dirs podman/runc create whatever the config says: removed if new and empty
    new_dirs = [d for d in (Path("/run/containers/networks"), Path("/run/runc")) if not d.exists()]
    env = {**os.environ, "CONTAINERS_CONF": str(conf)}
    prefix = ["podman", "--root", str(base / "root"), "--runroot", str(base / "run")]
    prefix += ["--storage-driver", "vfs", "--cgroup-manager", "cgroupfs"]

    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        argv = [*prefix, *args]
        if args and args[0] == "run":
            argv = [*prefix, "run", "--cgroup-parent", f"/{cgroup}", *args[1:]]
        p = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
        if check and p.returncode != 0:
            raise AssertionError(f"{' '.join(argv)} exited {p.returncode}: {p.stderr}")
        return p

    try:
        yield run
    finally:
        run("rm", "-af", check=False)
        run("rmi", "-af", check=False)
        _remove_cgroup(cgroup)
        for d in new_dirs:
            with contextlib.suppress(OSError):
                d.rmdir()
        shutil.rmtree(base, ignore_errors=True)


def test_podman_loads_and_runs_our_archive(
    tmp_path: Path, busybox: tuple[Path, str], podman: Run
) -> None:
    root, iid = busybox
    out = tmp_path / "bb.tar"
    dy(root, "save", "-o", str(out), "busybox:latest")
    assert "busybox:latest" in podman("load", "-i", str(out)).stdout
    assert podman("images", "-q", "--no-trunc").stdout.split() == [iid]
    assert podman("run", "--rm", "busybox:latest", "echo", "ok").stdout == "ok\n"


@pytest.mark.parametrize("fmt", ["docker-archive", "oci-archive"])
def test_we_load_podman_save_with_its_id(
    tmp_path: Path, busybox: tuple[Path, str], podman: Run, fmt: str
) -> None:
    root, _ = busybox
    ours = tmp_path / "bb.tar"
    dy(root, "save", "-o", str(ours), "busybox")
    podman("load", "-i", str(ours))
    podman("tag", "busybox:latest", "example.com/peer/bb:2")
    theirs = tmp_path / f"podman-{fmt}.tar"
    podman("save", "--format", fmt, "-o", str(theirs), "example.com/peer/bb:2")
    podman_id = podman("inspect", "--format", "{{.Id}}", "example.com/peer/bb:2").stdout.strip()
    fresh = tmp_path / "fresh"
    r = dy(fresh, "load", "-i", str(theirs))
    assert r.out == "Loaded image: example.com/peer/bb:2\n"
    info = json.loads(dy(fresh, "inspect", "example.com/peer/bb:2").out)[0]
    assert info["Id"] == "sha256:" + podman_id.removeprefix("sha256:")


@pytest.mark.parametrize("transport", ["oci-archive", "docker-archive"])
def test_skopeo_inspects_our_archive(
    tmp_path: Path, busybox: tuple[Path, str], transport: str
) -> None:
    require_tool("skopeo")
    root, iid = busybox
    out = tmp_path / "bb.tar"
    dy(root, "save", "-o", str(out), "busybox")
    p = subprocess.run(
        ["skopeo", "inspect", "--config", f"{transport}:{out}"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode == 0, p.stderr
    config = json.loads(p.stdout)
    assert config["config"]["Cmd"] == ["sh"]
    assert (
        config["rootfs"]["diff_ids"]
        == json.loads(dy(root, "inspect", iid).out)[0]["RootFS"]["Layers"]
    )


def test_skopeo_copies_back_to_us(tmp_path: Path, busybox: tuple[Path, str]) -> None:
    require_tool("skopeo")
    root, iid = busybox
    out = tmp_path / "bb.tar"
    dy(root, "save", "-o", str(out), "busybox")
    copy = tmp_path / "copy.tar"
    subprocess.run(
        ["skopeo", "copy", "-q", f"oci-archive:{out}:latest", f"docker-archive:{copy}:sk/bb:1"],
        check=True,
        timeout=60,
    )
    r = dy(tmp_path / "fresh", "load", "-i", str(copy))
    assert r.out == "Loaded image: sk/bb:1\n"
    assert dy(tmp_path / "fresh", "images", "-q", "--no-trunc").out.split() == [iid]


def test_umoci_reads_our_layout(tmp_path: Path, busybox: tuple[Path, str]) -> None:
    require_tool("umoci")
    root, _ = busybox
    out = tmp_path / "bb.tar"
    dy(root, "save", "-o", str(out), "busybox")
    layout = tmp_path / "layout"
    layout.mkdir()
    with tarfile.open(out) as tar:
        extract_archive(tar, layout)
    tags = subprocess.run(
        ["umoci", "ls", "--layout", str(layout)], capture_output=True, text=True, check=True
    )
    assert tags.stdout.split() == ["latest"]
    stat = subprocess.run(
        ["umoci", "stat", "--json", "--image", f"{layout}:latest"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(stat.stdout)["history"]
    bundle = tmp_path / "bundle"
    subprocess.run(
        ["umoci", "unpack", "--image", f"{layout}:latest", str(bundle)],
        capture_output=True,
        check=True,
        timeout=60,
    )
    assert (bundle / "rootfs" / "bin" / "busybox").is_file()
    assert (bundle / "config.json").is_file()
