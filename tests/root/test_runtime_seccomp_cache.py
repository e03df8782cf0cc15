"""Seccomp programs from the runtime's cache on the real kernel: a second container with the same
profile loads the cached program (libseccomp never called) and is confined exactly like the first
— `Seccomp: 2`, and `unshare` refused with EPERM although the process holds CAP_SYS_ADMIN."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dockyard.container.seccomp import default_profile
from dockyard.linux import seccomp
from dockyard.runtime.native import NativeRuntime
from tests.root.bundle_helpers import default_config, make_bundle

pytestmark = [pytest.mark.root]

DEFAULT_CAPS = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_KILL", "CAP_SETGID",
                "CAP_SETUID", "CAP_NET_BIND_SERVICE"]  # fmt: skip
PROBE = "grep '^Seccomp:' /proc/self/status; unshare -n true 2>&1; echo unshare=$?"


def _run(rt: NativeRuntime, bundle: Path, cid: str, out: Path) -> tuple[int, str]:
    with open(os.devnull, "rb") as null, open(out, "wb") as f:
        rt.create(cid, str(bundle), started=True, stdio=(null.fileno(), f.fileno(), f.fileno()))
    code = rt.wait(cid)
    rt.delete(cid)
    return code, out.read_text()


@pytest.mark.parametrize("nnp", [True, False], ids=["late-load", "early-load"])
def test_second_container_loads_the_cached_program(
    rt: NativeRuntime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, nnp: bool
) -> None:
    config = default_config(["sh", "-c", PROBE])
    config["process"]["noNewPrivileges"] = nnp
    for kind in ("bounding", "effective", "permitted"):
        config["process"]["capabilities"][kind].append("CAP_SYS_ADMIN")
    config["linux"]["seccomp"] = default_profile(DEFAULT_CAPS)  # no unshare without SYS_ADMIN
    bundle = make_bundle(tmp_path / "bundle", [], config=config)
    monkeypatch.setattr(seccomp, "_memo", {})

    code, first = _run(rt, bundle, f"first-{tmp_path.name[-10:]}", tmp_path / "first.out")
    assert code == 0 and "Seccomp:\t2" in first, first
    assert "Operation not permitted" in first and "unshare=1" in first, first
    cached = list(Path(rt.seccomp_cache).glob("*.bpf"))
    assert len(cached) == 1
    inode = cached[0].stat().st_ino

    monkeypatch.setattr(seccomp, "_memo", {})  # as a new process would start

    def no_compile(spec: object) -> bytes:
        raise AssertionError("compiled again instead of loading the cached program")

    monkeypatch.setattr(seccomp, "build_program", no_compile)
    code, second = _run(rt, bundle, f"second-{tmp_path.name[-10:]}", tmp_path / "second.out")
    assert (code, second) == (0, first)
    assert cached[0].stat().st_ino == inode  # read, not rewritten


def test_unconfined_control(rt: NativeRuntime, tmp_path: Path) -> None:
    """Without the profile the same process may unshare: the EPERM above is seccomp's."""
    config = default_config(["sh", "-c", PROBE])
    for kind in ("bounding", "effective", "permitted"):
        config["process"]["capabilities"][kind].append("CAP_SYS_ADMIN")
    bundle = make_bundle(tmp_path / "bundle", [], config=config)
    code, out = _run(rt, bundle, f"control-{tmp_path.name[-10:]}", tmp_path / "control.out")
    assert code == 0 and "Seccomp:\t0" in out and "unshare=0" in out, out
