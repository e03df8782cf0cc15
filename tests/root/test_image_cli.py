"""The image commands as a user types them, against a real state root (overlay-ready snapshots
need root for ownership and device whiteouts)."""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.cli import DOCKYARD, dy
from tests.images import BASE_CHANGES, write_busybox_rootfs

pytestmark = pytest.mark.root


@pytest.fixture
def rootfs_tar(tmp_path: Path) -> Path:
    p = tmp_path / "rootfs.tar"
    with p.open("wb") as f:
        write_busybox_rootfs(f)
    return p


def _import(root: Path, tar: Path, name: str = "busybox:latest") -> str:
    args = ["import"]
    for c in BASE_CHANGES:
        args += ["--change", c]
    r = dy(root, *args, str(tar), name)
    iid = r.out.strip()
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", iid), r.out
    return iid


def test_import_images_inspect_history(tmp_path: Path, rootfs_tar: Path) -> None:
    root = tmp_path / "root"
    iid = _import(root, rootfs_tar)
    # importing the same tar again gives a new image (new created time) but the same layer
    out = dy(root, "images").out.splitlines()
    assert out[0].split() == ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"]
    cols = out[1].split()
    assert cols[:3] == ["busybox", "latest", iid[7:19]]
    assert "ago" in out[1] or "second" in out[1]
    assert dy(root, "images", "-q").out == iid[7:19] + "\n"
    assert dy(root, "images", "-q", "--no-trunc").out == iid + "\n"

    info = json.loads(dy(root, "inspect", "busybox").out)
    assert len(info) == 1 and info[0]["Id"] == iid
    assert info[0]["RepoTags"] == ["busybox:latest"]
    assert info[0]["Config"]["Cmd"] == ["sh"]
    assert info[0]["RootFS"]["Type"] == "layers" and len(info[0]["RootFS"]["Layers"]) == 1
    assert dy(root, "image", "inspect", "-f", "{{.Os}}/{{json .Config.Cmd}}", iid[7:15]).out == (
        'linux/["sh"]\n'
    )
    hist = dy(root, "history", "busybox").out.splitlines()
    assert hist[0].split()[:2] == ["IMAGE", "CREATED"]
    assert hist[1].startswith(iid[7:19]) and "Imported from -" in hist[1]


def test_tag_rmi_prune_and_gc(tmp_path: Path, rootfs_tar: Path) -> None:
    root = tmp_path / "root"
    iid = _import(root, rootfs_tar)
    dy(root, "tag", "busybox", "my-base:1.0.0")
    dy(root, "tag", "busybox", "localhost:5000/team/base:v1")
    names = {tuple(x.split()[:2]) for x in dy(root, "images").out.splitlines()[1:]}
    assert names == {
        ("busybox", "latest"),
        ("my-base", "1.0.0"),
        ("localhost:5000/team/base", "v1"),
    }

    r = dy(root, "rmi", iid[7:19], check=False)
    assert r.rc == 1 and "must be forced" in r.err and "multiple repositories" in r.err
    assert dy(root, "rmi", "my-base:1.0.0").out == "Untagged: my-base:1.0.0\n"
    r = dy(root, "rmi", "nosuch", check=False)
    assert r.rc == 1 and r.err == "Error response from daemon: No such image: nosuch:latest\n"
    r = dy(root, "tag", "busybox", "Bad:tag", check=False)
    assert r.rc != 0 and "must be lowercase" in r.err

    blobs = root / "content" / "blobs" / "sha256"
    assert len(list(blobs.iterdir())) == 3  # layer, config, manifest
    out = dy(root, "rmi", "-f", iid[7:19]).out
    assert out.splitlines() == [
        "Untagged: busybox:latest",
        "Untagged: localhost:5000/team/base:v1",
        f"Deleted: {iid}",
    ]
    assert list(blobs.iterdir()) == []
    assert list((root / "snapshots").glob("*/*")) == [] or not any(
        p.is_dir() for p in (root / "snapshots").rglob("*") if p.name == "fs"
    )
    assert dy(root, "images", "-q").out == ""


def test_dangling_images_and_prune(tmp_path: Path, rootfs_tar: Path) -> None:
    root = tmp_path / "root"
    first = _import(root, rootfs_tar)
    time.sleep(1.1)  # a later `created` gives a different config, so a different image
    second = _import(root, rootfs_tar)
    assert first != second
    rows = dy(root, "images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}").out.splitlines()
    assert f"<none>:<none> {first[7:19]}" in rows and f"busybox:latest {second[7:19]}" in rows
    assert dy(root, "images", "-q", "-f", "dangling=true").out == first[7:19] + "\n"
    df = dy(root, "system", "df").out.splitlines()
    assert df[0].split() == ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]
    assert df[1].split()[:3] == ["Images", "2", "0"]
    out = dy(root, "image", "prune", "-f").out
    assert f"deleted: {first}" in out and "Total reclaimed space:" in out
    # the layer is shared by both images: only the first image's config/manifest went away
    assert dy(root, "images", "-q").out == second[7:19] + "\n"
    dy(root, "image", "prune", "-a", "-f")
    assert dy(root, "images", "-q").out == ""
    assert list((root / "content" / "blobs" / "sha256").iterdir()) == []


def test_import_from_stdin_with_message(tmp_path: Path) -> None:
    root = tmp_path / "root"
    buf = io.BytesIO()
    write_busybox_rootfs(buf)
    r = dy(root, "import", "-m", "from a pipe", "-", "piped:1", input=buf.getvalue())
    iid = r.out.strip()
    assert "from a pipe" in dy(root, "history", "--no-trunc", "piped:1").out
    assert dy(root, "inspect", "-f", "{{.Id}}", "piped:1").out.strip() == iid


def test_import_killed_midway_leaves_nothing_visible(tmp_path: Path) -> None:
    root = tmp_path / "root"
    big = tmp_path / "big.tar"
    import tarfile

    with tarfile.open(big, "w") as tf:
        for i in range(8):
            data = os.urandom(16 << 20)
            ti = tarfile.TarInfo(f"f{i}")
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
    p = subprocess.Popen(
        [DOCKYARD, "--root", str(root), "import", str(big), "big:1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    ingest = root / "content" / "ingest"
    deadline = time.time() + 30
    while time.time() < deadline:
        if ingest.is_dir() and any(
            (d / "data").exists() and (d / "data").stat().st_size > (8 << 20)
            for d in ingest.iterdir()
        ):
            break
        time.sleep(0.01)
    p.send_signal(signal.SIGKILL)
    p.wait()
    assert dy(root, "images", "-q").out == ""
    assert not (root / "content" / "blobs").exists() or not any(
        (root / "content" / "blobs").rglob("*.*")
    )
    # the next command works, and a new import succeeds
    iid = dy(root, "import", str(big), "big:1").out.strip()
    assert dy(root, "images", "-q", "--no-trunc").out.strip() == iid
