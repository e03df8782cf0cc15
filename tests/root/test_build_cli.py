"""`dockyard build` and `dockyard builder prune` as a user types them."""

from __future__ import annotations

import io
import re
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from dockyard.network import iproute
from tests.cli import dy
from tests.images import BASE_CHANGES, write_busybox_rootfs
from tests.root.test_build_support import (
    mounts_under,
    network_config,
    remove_network_state,
    write_tree,
)

pytestmark = pytest.mark.root
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "node-app"


@pytest.fixture
def root(tmp_path: Path) -> Iterator[Path]:
    """A state root with the busybox image and network names of its own (all removed after)."""
    r = tmp_path / "root"
    settings = network_config(r, tmp_path / "netns")
    forward = iproute.read_sysctl("net.ipv4.ip_forward")
    tar = tmp_path / "rootfs.tar"
    with tar.open("wb") as f:
        write_busybox_rootfs(f)
    args = ["import"]
    for c in BASE_CHANGES:
        args += ["--change", c]
    try:
        dy(r, *args, str(tar), "busybox:latest")
        yield r
    finally:
        try:
            remove_network_state(r, settings)
        finally:
            iproute.write_sysctl("net.ipv4.ip_forward", forward)


def test_node_app_example_builds_and_runs(root: Path, tmp_path: Path) -> None:
    r = dy(root, "build", "-t", "my-node-app:1.0.0", str(EXAMPLE))
    assert "#2 [2/5] WORKDIR /app" in r.err
    assert "naming to docker.io/library/my-node-app:1.0.0 done" in r.err
    assert re.search(r"writing image sha256:[0-9a-f]{64} done", r.err)
    assert "installed 1 package(s)" in r.err
    out = dy(root, "run", "--rm", "my-node-app:1.0.0", "cat", "node_modules/.installed").out
    assert out == '"left-pad"\n'
    listing = dy(root, "run", "--rm", "my-node-app:1.0.0", "ls", "-a").out.split()
    assert "server.sh" in listing and "Dockerfile" not in listing
    again = dy(root, "build", "-t", "my-node-app:1.0.0", str(EXAMPLE))
    assert again.err.count("CACHED") == 4


def test_quiet_iidfile_and_stdin_forms(root: Path, tmp_path: Path) -> None:
    ctx = write_tree(tmp_path / "ctx", {"f": "x", "Dockerfile": "FROM busybox\nCOPY f /f\n"})
    r = dy(root, "build", "-q", "--iidfile", str(tmp_path / "iid"), str(ctx))
    assert re.fullmatch(r"sha256:[0-9a-f]{64}\n", r.out) and r.err == ""
    assert (tmp_path / "iid").read_text() == r.out.strip()
    # -f - : the Dockerfile from stdin, the context from the directory
    r2 = dy(root, "build", "-q", "-f", "-", str(ctx), input=b"FROM busybox\nCOPY f /f\n")
    assert r2.out == r.out
    # - : a tar context on stdin
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        tf.add(ctx / "f", "f")
        tf.add(ctx / "Dockerfile", "Dockerfile")
    r3 = dy(root, "build", "-q", "-", input=buf.getvalue())
    assert r3.out == r.out
    # - : a Dockerfile alone on stdin
    r4 = dy(root, "image", "build", "-q", "-t", "x:y", "-", input=b"FROM busybox\nENV A=1\n")
    assert dy(root, "images", "-q", "x:y").out.strip() == r4.out.strip()[7:19]


def test_failing_run_reports_and_leaves_nothing(root: Path, tmp_path: Path) -> None:
    ctx = write_tree(tmp_path / "ctx", {"Dockerfile": "FROM busybox\nRUN echo hi\nRUN exit 3\n"})
    r = dy(root, "build", "-t", "bad:1", str(ctx), check=False)
    assert r.rc == 1
    assert " > [3/3] RUN exit 3:" in r.err
    assert "Dockerfile:3" in r.err and "   3 | >>> RUN exit 3" in r.err
    assert r.err.rstrip().endswith(
        'ERROR: failed to solve: process "/bin/sh -c exit 3" did not complete '
        "successfully: exit code: 3"
    )
    assert dy(root, "images", "-q", "bad").out == ""
    assert mounts_under(root) == []
    assert list((root / "build" / "work").iterdir()) == []


def test_syntax_error_names_file_and_line(root: Path, tmp_path: Path) -> None:
    ctx = write_tree(tmp_path / "ctx", {"Dockerfile": "FROM busybox\n\nFROBNICATE x\n"})
    r = dy(root, "build", str(ctx), check=False)
    assert r.rc == 1
    assert "Dockerfile:3" in r.err and "FROBNICATE" in r.err.upper()


def test_labels_args_target_and_builder_prune(root: Path, tmp_path: Path) -> None:
    df = "FROM busybox AS a\nARG X\nRUN echo x=$X > /x\nFROM a AS b\nRUN exit 1\n"
    ctx = write_tree(tmp_path / "ctx", {"Dockerfile": df})
    args = ["build", "--target", "a", "--build-arg", "X=7", "--label", "k=v", "-t", "t:a"]
    r = dy(root, *args, "--progress", "plain", str(ctx))
    assert "[a 2/2] RUN echo x=$X > /x" in r.err and "[b " not in r.err
    assert dy(root, "inspect", "-f", "{{json .Config.Labels}}", "t:a").out == '{"k":"v"}\n'
    assert dy(root, "run", "--rm", "t:a", "cat", "/x").out == "x=7\n"
    dy(root, "rmi", "t:a")
    p = dy(root, "builder", "prune", "-a", "-f")
    m = re.fullmatch(r"Total reclaimed space: (\S+)\n", p.out)
    assert m and m.group(1) != "0B", p.out
    r = dy(root, *args, str(ctx))
    assert "CACHED" not in r.err


def test_network_flag(root: Path, tmp_path: Path) -> None:
    ctx = write_tree(tmp_path / "ctx", {"Dockerfile": "FROM busybox\nRUN ls /sys/class/net\n"})
    r = dy(root, "build", "--no-cache", "--progress", "plain", "--network", "none", str(ctx))
    assert re.findall(r"^#2 \d+\.\d+ (\S+)$", r.err, re.M) == ["lo"]
    r = dy(root, "build", "--no-cache", "--progress", "plain", str(ctx))  # default: bridge
    assert re.findall(r"^#2 \d+\.\d+ (\S+)$", r.err, re.M) == ["eth0", "lo"]
