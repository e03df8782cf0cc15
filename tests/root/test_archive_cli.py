"""`dockyard save` / `dockyard load` as a user types them, against real state roots (snapshots
of the busybox image need root for ownership), including a load killed halfway."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import tarfile
import time
from pathlib import Path

import pytest

from tests.cli import DOCKYARD, dy
from tests.images import BASE_CHANGES, write_busybox_rootfs

pytestmark = pytest.mark.root


@pytest.fixture
def busybox_root(tmp_path: Path) -> tuple[Path, str]:
    """A state root holding busybox:latest (imported through the CLI); its image ID."""
    root = tmp_path / "src"
    tar = tmp_path / "rootfs.tar"
    with tar.open("wb") as f:
        write_busybox_rootfs(f)
    args = ["import"]
    for c in BASE_CHANGES:
        args += ["--change", c]
    iid = dy(root, *args, str(tar), "busybox:latest").out.strip()
    dy(root, "tag", "busybox:latest", "example.com/tools/bb:1.0")
    return root, iid


def test_save_o_then_load_i(tmp_path: Path, busybox_root: tuple[Path, str]) -> None:
    src, iid = busybox_root
    out = tmp_path / "bb.tar"
    assert dy(src, "save", "-o", str(out), "busybox", "example.com/tools/bb:1.0").out == ""
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".dockyard_temp_")]
    dst = tmp_path / "dst"
    r = dy(dst, "load", "-i", str(out))
    assert r.out == "Loaded image: busybox:latest\nLoaded image: example.com/tools/bb:1.0\n"
    assert set(dy(dst, "images", "-q", "--no-trunc").out.split()) == {iid}
    info = json.loads(dy(dst, "inspect", "busybox").out)[0]
    assert info["Id"] == iid
    assert sorted(info["RepoTags"]) == ["busybox:latest", "example.com/tools/bb:1.0"]
    # loading again moves nothing and prints the same
    assert dy(dst, "load", "-q", "-i", str(out)).out == r.out


def test_save_stdout_load_stdin_by_id(tmp_path: Path, busybox_root: tuple[Path, str]) -> None:
    src, iid = busybox_root
    p = subprocess.run(
        [DOCKYARD, "--root", str(src), "save", iid[7:19]], capture_output=True, check=True
    )
    with tarfile.open(fileobj=io.BytesIO(p.stdout)) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
    assert manifest[0]["RepoTags"] is None
    r = dy(tmp_path / "dst", "load", input=p.stdout)
    assert r.out == f"Loaded image ID: {iid}\n"
    # `save` output is deterministic: the same bytes twice
    again = subprocess.run(
        [DOCKYARD, "--root", str(src), "save", iid[7:19]], capture_output=True, check=True
    )
    assert again.stdout == p.stdout


def test_save_refuses_a_terminal(busybox_root: tuple[Path, str]) -> None:
    src, _ = busybox_root
    master, slave = os.openpty()
    try:
        p = subprocess.run(
            [DOCKYARD, "--root", str(src), "save", "busybox"],
            stdout=slave,
            stderr=subprocess.PIPE,
            timeout=60,
        )
    finally:
        os.close(slave)
        os.close(master)
    assert p.returncode == 1
    assert p.stderr.decode() == (
        "cowardly refusing to save to a terminal. Use the -o flag or redirect\n"
    )


def test_cli_errors(tmp_path: Path, busybox_root: tuple[Path, str]) -> None:
    src, _ = busybox_root
    r = dy(src, "save", "-o", str(tmp_path / "x.tar"), "nosuch", check=False)
    assert r.rc == 1 and r.err == "Error response from daemon: No such image: nosuch:latest\n"
    assert not (tmp_path / "x.tar").exists()
    r = dy(src, "load", "-i", str(tmp_path / "missing.tar"), check=False)
    assert r.rc == 1 and "no such file or directory" in r.err
    r = dy(src, "load", input=b"not a tar at all" * 100, check=False)
    assert r.rc == 1 and r.err.startswith("Error response from daemon: invalid archive")


def _big_archive(path: Path) -> None:
    """A Docker archive of one ~128 MB layer (incompressible), manifest.json last."""
    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w") as tf:
        for i in range(8):
            data = os.urandom(16 << 20)
            ti = tarfile.TarInfo(f"f{i}")
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
    raw = layer.getvalue()
    import hashlib

    diff_id = "sha256:" + hashlib.sha256(raw).hexdigest()
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        }
    ).encode()
    chex = hashlib.sha256(config).hexdigest()
    manifest = json.dumps(
        [{"Config": f"{chex}.json", "RepoTags": ["big:1"], "Layers": ["l1/layer.tar"]}]
    ).encode()
    with tarfile.open(path, "w") as tf:
        for name, data in (
            ("l1/layer.tar", raw),
            (f"{chex}.json", config),
            ("manifest.json", manifest),
        ):
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))


def test_load_killed_midway_leaves_nothing(tmp_path: Path) -> None:
    root = tmp_path / "root"
    big = tmp_path / "big.tar"
    _big_archive(big)
    p = subprocess.Popen(
        [DOCKYARD, "--root", str(root), "load", "-i", str(big)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        ingest = root / "content" / "ingest"
        deadline = time.time() + 30
        while time.time() < deadline:
            if ingest.is_dir() and any(
                (d / "data").exists() and (d / "data").stat().st_size > (16 << 20)
                for d in ingest.iterdir()
            ):
                break
            time.sleep(0.01)
        else:
            pytest.fail("the load never wrote into the ingest area")
    finally:
        p.send_signal(signal.SIGKILL)
        p.wait()
    assert dy(root, "images", "-q").out == ""
    r = dy(root, "load", "-i", str(big))
    assert r.out == "Loaded image: big:1\n"
    assert len(dy(root, "images", "-q").out.split()) == 1
    # the killed load's leftovers are unreferenced: removing the image frees everything
    dy(root, "rmi", "big:1")
    assert not any((root / "content" / "blobs").rglob("*")) or all(
        p.is_dir() for p in (root / "content" / "blobs").rglob("*")
    )
    assert not (root / "content" / "ingest").exists() or not any(
        (root / "content" / "ingest").iterdir()
    )
