"""The commands around a container's core, as a user types them: cp, diff, commit, export, top,
stats, attach, container prune. Each test has its own state root with the busybox image, and
leaves no container, mount or cgroup behind."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import tarfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli import DOCKYARD, busybox_root, dy

pytestmark = pytest.mark.root


@pytest.fixture
def root(tmp_path: Path) -> Iterator[Path]:
    with busybox_root(tmp_path) as state:
        yield state


def _run(root: Path, *args: str) -> str:
    """`run --network none ...`; returns stdout."""
    return dy(root, "run", "--network", "none", *args).out


def _binary(root: Path, *args: str) -> bytes:
    """stdout of a command that writes a tar."""
    p = subprocess.run([DOCKYARD, "--root", str(root), *args], capture_output=True, timeout=60)
    assert p.returncode == 0, p.stderr.decode()
    return p.stdout


def _cp_out(root: Path, src: str) -> tarfile.TarFile:
    return tarfile.open(fileobj=io.BytesIO(_binary(root, "cp", src, "-")))


def _read_file(root: Path, tmp: Path, src: str) -> str:
    dest = tmp / f"read-{uuid.uuid4().hex}"
    dy(root, "cp", src, str(dest))
    return dest.read_text()


def test_containers_are_isolated_and_commit_makes_a_layer(root: Path) -> None:
    image_id = json.loads(dy(root, "image", "inspect", "bb").out)[0]["Id"]
    _run(root, "--name", "one", "bb", "sh", "-c", "echo one > /a1")
    _run(root, "--name", "two", "bb", "sh", "-c", "echo two > /a2")
    assert dy(root, "diff", "one").out == "A /a1\n"
    assert dy(root, "diff", "two").out == "A /a2\n"
    assert dy(root, "cp", "one:/a2", "-", check=False).rc != 0
    assert dy(root, "cp", "two:/a1", "-", check=False).rc != 0
    assert json.loads(dy(root, "image", "inspect", "bb").out)[0]["Id"] == image_id
    assert "a1" not in _run(root, "--rm", "bb", "ls", "/")

    new_id = dy(root, "commit", "-m", "first commit", "-a", "Me <me@x>", "one", "snap:v1").out
    assert re.fullmatch(r"sha256:[0-9a-f]{64}\n", new_id)
    hist = dy(root, "history", "--no-trunc", "snap:v1").out.splitlines()
    assert len(hist) == 3  # header, the new layer, the imported one
    assert hist[1].startswith(new_id.strip()) and "echo one > /a1" in hist[1]
    assert "first commit" in hist[1]
    info = json.loads(dy(root, "inspect", "snap:v1").out)[0]
    assert info["Author"] == "Me <me@x>" and len(info["RootFS"]["Layers"]) == 2
    assert _run(root, "--rm", "snap:v1", "cat", "/a1") == "one\n"
    # the init-layer mount points are not part of the commit (a never-started container of
    # the new image shows the image's files only)
    dy(root, "create", "--network", "none", "--name", "probe", "snap:v1", "true")
    assert "etc/hosts" not in {m.name for m in _cp_out(root, "probe:/etc")}
    # --change applies to the new image's config
    dy(root, "commit", "-c", 'CMD ["cat", "/a1"]', "-c", "ENV X=1", "one", "snap:v2")
    assert _run(root, "--rm", "snap:v2") == "one\n"
    assert _run(root, "--rm", "snap:v2", "sh", "-c", "echo $X") == "1\n"
    assert json.loads(dy(root, "image", "inspect", "bb").out)[0]["Id"] == image_id


def test_commit_running_container_pauses_and_resumes(root: Path) -> None:
    _run(root, "-d", "--name", "live", "bb", "sh", "-c", "echo hi > /live; sleep 30")
    for _ in range(100):
        if dy(root, "diff", "live").out:
            break
    dy(root, "commit", "live", "live:img")
    assert dy(root, "inspect", "-f", "{{.State.Status}}", "live").out == "running\n"
    assert _run(root, "--rm", "live:img", "cat", "/live") == "hi\n"
    dy(root, "commit", "--pause=false", "live", "live:img2")
    dy(root, "commit", "-p", "live", "live:img3")
    assert _run(root, "--rm", "live:img3", "cat", "/live") == "hi\n"


def test_diff_kinds_and_order(root: Path) -> None:
    script = "mkdir /new; touch /new/f; rm /etc/group; echo x >> /etc/passwd"
    _run(root, "--name", "dd", "bb", "sh", "-c", script)
    assert dy(root, "diff", "dd").out.splitlines() == [
        "C /etc",
        "D /etc/group",
        "C /etc/passwd",
        "A /new",
        "A /new/f",
    ]
    assert dy(root, "diff", "nope", check=False).rc != 0


def test_cp_archive_semantics(root: Path, tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "a").write_text("a\n")
    (src / "sub" / "b").write_text("b\n")
    os.chown(src / "a", 1234, 555)
    dy(root, "create", "--network", "none", "--name", "cc", "bb", "true")  # never started
    dy(root, "cp", str(src), "cc:/tmp")  # a dir into an existing dir nests
    dy(root, "cp", f"{src}/.", "cc:/tmp")  # /. copies the contents
    dy(root, "cp", str(src / "a"), "cc:/tmp/renamed")  # a file onto a new name
    dy(root, "cp", str(src / "a"), "cc:/etc/")  # a file onto a dir goes inside
    dy(root, "cp", "-a", str(src / "a"), "cc:/tmp/kept")
    dy(root, "cp", str(src), "cc:/newdir")  # a dir onto a new name
    assert dy(root, "cp", str(src / "a"), "cc:/missing/", check=False).rc != 0
    assert dy(root, "cp", str(src), "cc:/tmp/renamed", check=False).rc != 0
    members = {m.name: m for m in _cp_out(root, "cc:/tmp")}
    assert {"tmp/src/a", "tmp/src/sub/b", "tmp/a", "tmp/sub/b", "tmp/renamed"} <= set(members)
    assert (members["tmp/a"].uid, members["tmp/kept"].uid, members["tmp/kept"].gid) == (
        0,
        1234,
        555,
    )
    assert {m.name for m in _cp_out(root, "cc:/newdir")} >= {"newdir/a", "newdir/sub/b"}
    assert _read_file(root, tmp_path, "cc:/etc/a") == "a\n"
    # a tar on stdin, extracted into a directory
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        info = tarfile.TarInfo("fromtar/x")
        info.size = 3
        tf.addfile(info, io.BytesIO(b"tar"))
    dy(root, "cp", "-", "cc:/root", input=buf.getvalue())
    assert _read_file(root, tmp_path, "cc:/root/fromtar/x") == "tar"
    # out to the host: into an existing dir, contents with /., ownership with -a
    out = tmp_path / "out"
    out.mkdir()
    dy(root, "cp", "cc:/tmp", str(out))
    dy(root, "cp", "cc:/tmp/.", str(out / "flat"))
    dy(root, "cp", "-a", "cc:/tmp/kept", str(out / "kept"))
    assert (out / "tmp" / "src" / "sub" / "b").read_text() == "b\n"
    assert (out / "flat" / "renamed").read_text() == "a\n"
    assert (os.stat(out / "kept").st_uid, os.stat(out / "tmp" / "kept").st_uid) == (1234, 0)
    assert "A /tmp/kept" in dy(root, "diff", "cc").out.splitlines()


def test_cp_never_leaves_the_container_root(root: Path, tmp_path: Path) -> None:
    marker = f"pwned-{uuid.uuid4().hex}"
    script = (
        "ln -s / /escape; ln -s /etc /evil; ln -s ../../../../../.. /up; "
        "ln -s /etc/os-release /hostlink; echo container-secret > /etc/shadow; "
        "echo t > /tmp/target; ln -s /tmp/target /tmp/link; sleep 30"
    )
    _run(root, "-d", "--name", "esc", "bb", "sh", "-c", script)
    for _ in range(200):
        if "A /tmp/link" in dy(root, "diff", "esc").out:
            break
    assert _read_file(root, tmp_path, "esc:/escape/etc/shadow") == "container-secret\n"
    assert _read_file(root, tmp_path, "esc:/up/etc/shadow") == "container-secret\n"
    assert _read_file(root, tmp_path, "esc:/evil/shadow") == "container-secret\n"
    # a symlink to a path only the host has resolves inside the container: nothing there
    assert dy(root, "cp", "-L", "esc:/hostlink", str(tmp_path / "h"), check=False).rc != 0
    assert not (tmp_path / "h").exists()
    # without -L the symlink itself is copied; with -L its target (inside the container)
    dy(root, "cp", "esc:/tmp/link", str(tmp_path / "l1"))
    dy(root, "cp", "-L", "esc:/tmp/link", str(tmp_path / "l2"))
    assert os.readlink(tmp_path / "l1") == "/tmp/target"
    assert (tmp_path / "l2").read_text() == "t\n"
    out = tmp_path / "into"
    out.mkdir()
    dy(root, "cp", "-L", "esc:/tmp/link", str(out))  # keeps the name it was given
    assert (out / "link").read_text() == "t\n"
    # writes through the container's symlinks land in the container
    f = tmp_path / marker
    f.write_text("x")
    dy(root, "cp", str(f), "esc:/escape/tmp/")
    dy(root, "cp", str(f), "esc:/evil/")
    dy(root, "cp", str(f), "esc:/up/root/")
    assert not Path("/tmp", marker).exists()
    assert not Path("/etc", marker).exists()
    assert not Path("/root", marker).exists()
    changes = dy(root, "diff", "esc").out.splitlines()
    for p in (f"/tmp/{marker}", f"/etc/{marker}", f"/root/{marker}"):
        assert f"A {p}" in changes


def test_export_flattens_the_filesystem(root: Path, tmp_path: Path) -> None:
    _run(root, "--name", "ee", "bb", "sh", "-c", "echo e > /exported; rm /etc/group")
    out = tmp_path / "e.tar"
    dy(root, "export", "-o", str(out), "ee")
    with tarfile.open(out) as tf:
        names = set(tf.getnames())
        f = tf.extractfile("exported")
        assert f is not None and f.read() == b"e\n"
    assert {"bin/busybox", "etc/passwd", "exported"} <= names
    assert "etc/group" not in names
    with tarfile.open(fileobj=io.BytesIO(_binary(root, "export", "ee"))) as tf:
        assert "exported" in tf.getnames()


def test_top_and_stats(root: Path) -> None:
    _run(root, "-d", "--name", "tt", "bb", "sleep", "30")
    _run(root, "--name", "stopped", "bb", "true")
    top = dy(root, "top", "tt").out.splitlines()
    assert top[0].split() == ["PID", "USER", "TIME", "COMMAND"]
    assert len(top) == 2 and top[1].split()[1:] == ["root", "0:00", "sleep", "30"]
    ps = dy(root, "top", "tt", "-o", "pid,comm").out.splitlines()
    assert ps[0].split() == ["PID", "COMMAND"] and ps[1].split()[1] == "sleep"
    assert dy(root, "top", "stopped", check=False).rc != 0

    table = dy(root, "stats", "--no-stream").out.splitlines()
    assert table[0].split() == [
        "CONTAINER", "ID", "NAME", "CPU", "%", "MEM", "USAGE", "/", "LIMIT", "MEM", "%",
        "NET", "I/O", "BLOCK", "I/O", "PIDS",
    ]  # fmt: skip
    assert len(table) == 2 and table[1].split()[1] == "tt"
    fmt = "{{.Name}} {{.PIDs}} {{.CPUPerc}}"
    line = dy(root, "stats", "--no-stream", "--format", fmt, "tt").out
    assert re.fullmatch(r"tt 1 \d+\.\d\d%\n", line)
    all_rows = dy(root, "stats", "-a", "--no-stream", "--format", fmt).out.splitlines()
    assert "stopped 0 0.00%" in all_rows and len(all_rows) == 2


def test_attach_follows_output_and_returns_the_exit_code(root: Path) -> None:
    script = "sleep 1; echo out; echo err >&2; exit 3"
    _run(root, "-d", "--name", "aa", "bb", "sh", "-c", script)
    r = dy(root, "attach", "aa", check=False)
    assert (r.rc, r.out, r.err) == (3, "out\n", "err\n")
    r = dy(root, "attach", "aa", check=False)
    assert r.rc == 1 and "start it first" in r.err


def test_container_prune(root: Path) -> None:
    _run(root, "-d", "--name", "up", "bb", "sleep", "30")
    gone = _run(root, "-d", "--name", "gone", "bb", "sh", "-c", "echo x > /x").strip()
    dy(root, "wait", "gone")
    kept = _run(root, "--name", "kept", "--label", "keep=1", "bb", "true")
    assert kept == ""
    out = dy(root, "container", "prune", "-f", "--filter", "label!=keep=1").out
    assert out.startswith(f"Deleted Containers:\n{gone}\n\nTotal reclaimed space: ")
    names = dy(root, "ps", "-a", "--format", "{{.Names}}").out.split()
    assert sorted(names) == ["kept", "up"]
    out = dy(root, "container", "prune", "-f").out
    assert "Deleted Containers:" in out
    assert dy(root, "ps", "-a", "--format", "{{.Names}}").out.split() == ["up"]
    assert dy(root, "container", "prune", "-f").out == "Total reclaimed space: 0B\n"


def test_a_command_that_cannot_start_leaves_a_created_record(root: Path) -> None:
    """The supervisor records "running" while the init sets itself up; when the init then
    fails (no such command), the record is what Docker shows: created, exit 127, never
    started."""
    args = ["--pull", "never", "--name", "bad", "--network", "none", "bb", "/nonexistent"]
    r = dy(root, "run", *args, check=False)
    assert r.rc == 127 and "no such file" in r.err
    fmt = "{{.State.Status}} {{.State.ExitCode}} {{.State.StartedAt}} {{.State.Pid}}"
    out = dy(root, "inspect", "--format", fmt, "bad").out.split()
    assert out == ["created", "127", "0001-01-01T00:00:00Z", "0"]
    dy(root, "rm", "bad")
