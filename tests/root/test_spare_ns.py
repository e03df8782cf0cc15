"""Namespaces made ahead (`dockyard.linux.spare_ns`): new, with `lo` up, joined by the
container instead of created, and never left open."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from dockyard.linux import spare_ns

pytestmark = pytest.mark.root


def _inode(path: str) -> int:
    return os.stat(path).st_ino


def test_made_namespaces_are_new_and_lo_is_up() -> None:
    before = {k: _inode(f"/proc/self/ns/{k}") for k in ("net", "ipc", "uts")}
    made = spare_ns.make()
    assert made is not None
    try:
        assert {k: _inode(f"/proc/self/ns/{k}") for k in before} == before  # back home
        assert sorted(made.fds) == ["ipc", "network", "uts"]
        ours = {"network": "net", "ipc": "ipc", "uts": "uts"}
        for kind, fd in made.fds.items():
            assert os.fstat(fd).st_ino != _inode(f"/proc/self/ns/{ours[kind]}")
        net = made.fds["network"]
        out = subprocess.run(
            ["nsenter", f"--net=/proc/{os.getpid()}/fd/{net}", "ip", "-o", "link", "show", "lo"],
            capture_output=True, text=True, timeout=30, check=True, pass_fds=(net,),
        )  # fmt: skip
        assert ",UP" in out.stdout, out.stdout
        links = subprocess.run(
            ["nsenter", f"--net=/proc/{os.getpid()}/fd/{net}", "ip", "-o", "link"],
            capture_output=True, text=True, timeout=30, check=True, pass_fds=(net,),
        ).stdout.splitlines()  # fmt: skip
        assert len(links) == 1  # nothing but lo
    finally:
        fds = list(made.fds.values())
        made.close()
    for fd in fds:
        with pytest.raises(OSError):
            os.fstat(fd)


def test_apply_fills_only_new_namespaces_and_never_with_a_user_namespace() -> None:
    made = spare_ns.Premade({"network": 101, "ipc": 102, "uts": 103})
    spec = {
        "linux": {
            "namespaces": [
                {"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"},
                {"type": "network", "path": "/run/netns/x"},
            ]
        }
    }  # fmt: skip
    assert made.apply(spec) == ["ipc", "uts"]
    ns = {e["type"]: e.get("path") for e in spec["linux"]["namespaces"]}
    assert ns == {
        "pid": None, "ipc": f"/proc/{os.getpid()}/fd/102",
        "uts": f"/proc/{os.getpid()}/fd/103", "mount": None, "network": "/run/netns/x",
    }  # fmt: skip
    userns = {"linux": {"namespaces": [{"type": "user"}, {"type": "ipc"}]}}
    assert made.apply(userns) == []
    assert "path" not in userns["linux"]["namespaces"][1]


def test_take_hands_them_out_once() -> None:
    spare_ns.make_ready()
    try:
        first = spare_ns.take()
        assert first is not None
        assert spare_ns.take() is None
    finally:
        if first is not None:
            first.close()


def test_a_failed_return_home_is_never_swallowed() -> None:
    """If setns back to our own namespaces failed, `make` raises `Stranded` (not an OSError,
    which `make_ready` would take for "none made"). Run in a throw-away interpreter: it really
    stays behind in the new namespaces."""
    script = (
        "from dockyard.linux import kernel, spare_ns\n"
        "def broken(self, fd, nstype):\n"
        "    raise OSError(1, 'no')\n"
        "kernel.RealKernel.setns = broken\n"
        "try:\n"
        "    spare_ns.make_ready()\n"
        "except spare_ns.Stranded:\n"
        "    print('stranded')\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=30, check=False
    )
    assert out.stdout.strip() == "stranded", out.stderr
