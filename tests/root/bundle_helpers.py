"""Hermetic OCI bundles for root tests: a rootfs made from the host's static busybox.

`make_bundle(dir, args)` builds `dir/rootfs` (bin/busybox + one symlink per applet from
`busybox --list`, /etc/passwd, /etc/group, the directories a container expects) and writes a
`runc spec`-like config.json (no terminal, read-only root) with `args`. `busybox_rootfs` copies
every bundle gets its own copy (busybox is ~2 MB). No distro image, no network.

`Runner` drives one OCI runtime binary (ours, runc, crun) through its command line with a
private `--root`; `runner_for(name, tmp_path)` returns one or skips (runc/crun missing; crun 1.8
refusing this host's hybrid cgroups). `Runner.cleanup()` force-deletes every container it
created: call it from a fixture finaliser.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

BUSYBOX = "/bin/busybox"
PASSWD = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
GROUP = "root:x:0:\ntty:x:5:\nnogroup:x:65534:\n"


def busybox_applets() -> list[str]:
    out = subprocess.run([BUSYBOX, "--list"], capture_output=True, text=True, check=True)
    return [a for a in out.stdout.split() if a and a != "busybox"]


def make_rootfs(rootfs: Path) -> Path:
    """A minimal busybox root file system at `rootfs`."""
    for d in ("bin", "etc", "proc", "sys", "dev", "tmp", "root", "run"):
        (rootfs / d).mkdir(parents=True, exist_ok=True)
    shutil.copy2(BUSYBOX, rootfs / "bin" / "busybox")
    for applet in busybox_applets():
        link = rootfs / "bin" / applet
        if not link.exists():
            link.symlink_to("busybox")
    (rootfs / "etc" / "passwd").write_text(PASSWD)
    (rootfs / "etc" / "group").write_text(GROUP)
    (rootfs / "tmp").chmod(0o1777)
    return rootfs


def default_config(args: list[str]) -> dict[str, Any]:
    """`dockyard-runtime spec`'s config.json (like `runc spec`), with `args`, no terminal, no
    ambient capabilities, PATH as the only variable and hostname `box`."""
    from dockyard.runtime.spec import DEFAULT_PATH, default_spec

    spec = default_spec()
    proc = spec["process"]
    proc.update(terminal=False, args=list(args), env=[f"PATH={DEFAULT_PATH}"])
    proc["capabilities"].pop("ambient", None)
    spec["hostname"] = "box"
    return spec


def make_bundle(
    bundle: Path, args: list[str], config: dict[str, Any] | None = None, rootfs: Path | None = None
) -> Path:
    """An OCI bundle at `bundle`: its own busybox rootfs (or a copy of `rootfs`) and config."""
    bundle.mkdir(parents=True, exist_ok=True)
    if rootfs is not None:
        shutil.copytree(rootfs, bundle / "rootfs", symlinks=True)
    else:
        make_rootfs(bundle / "rootfs")
    write_config(bundle, config if config is not None else default_config(args))
    return bundle


def write_config(bundle: Path, config: dict[str, Any]) -> None:
    (bundle / "config.json").write_text(json.dumps(config, indent=1))


def set_args(bundle: Path, args: list[str]) -> dict[str, Any]:
    config: dict[str, Any] = json.loads((bundle / "config.json").read_text())
    config["process"]["args"] = args
    write_config(bundle, config)
    return config


def cleanup_runtime(binary: list[str], container_id: str) -> None:
    """Best-effort `delete --force` (fixture finalisers call it even after failures)."""
    subprocess.run(
        [*binary, "delete", "--force", container_id],
        capture_output=True,
        check=False,
        env={**os.environ},
    )


CRUN_HYBRID_ERRORS = ("cgroup", "unified", "hybrid")


def dockyard_runtime() -> list[str]:
    exe = Path(sys.executable).with_name("dockyard-runtime")
    if exe.exists():
        return [str(exe)]
    return [sys.executable, "-m", "dockyard.runtime.cli"]


class Runner:
    """One runtime binary with a private state root; remembers the ids it used."""

    def __init__(self, name: str, argv: list[str]) -> None:
        self.name = name
        self.state_root = tempfile.mkdtemp(prefix=f"rt-{name}-", dir="/run")
        self.argv = [*argv, "--root", self.state_root]
        self.ids: set[str] = set()

    def __call__(
        self, *args: str, timeout: float = 30, check: bool = False, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        if len(args) > 1 and args[0] in ("create", "run"):
            self.ids.add(args[-1])
        detached = args and (
            args[0] == "create" or (args[0] in ("run", "exec") and {"-d", "--detach"} & set(args))
        )
        if detached:  # the container keeps our stdio open: never a pipe
            with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
                code = subprocess.run(
                    [*self.argv, *args], stdout=out, stderr=err, timeout=timeout, check=False
                ).returncode
                out.seek(0)
                err.seek(0)
                proc = subprocess.CompletedProcess(args, code, out.read(), err.read())
        else:
            proc = subprocess.run(
                [*self.argv, *args],
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
                input=input,
            )
        if check and proc.returncode != 0:
            raise AssertionError(f"{self.name} {args}: rc={proc.returncode}\n{proc.stderr}")
        return proc

    def popen(self, *args: str) -> subprocess.Popen[str]:
        if args and args[0] in ("create", "run"):
            self.ids.add(args[-1])
        return subprocess.Popen(
            [*self.argv, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )

    def state(self, container_id: str) -> dict[str, Any]:
        out = self("state", container_id, check=True).stdout
        state: dict[str, Any] = json.loads(out)
        return state

    def cleanup(self) -> None:
        for cid in self.ids:
            subprocess.run([*self.argv, "delete", "--force", cid], capture_output=True, check=False)
        shutil.rmtree(self.state_root, ignore_errors=True)


def runner_for(name: str, tmp_path: Path) -> Runner:
    """A runner for "dockyard", "runc" or "crun", or skip the test."""
    if name == "dockyard":
        return Runner(name, dockyard_runtime())
    from tests.conftest import require_tool

    path = require_tool(name)
    runner = Runner(name, [path])
    if name == "crun":
        _skip_if_crun_refuses(runner, tmp_path)
    return runner


def _skip_if_crun_refuses(runner: Runner, tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path / "crun-probe", ["true"])
    proc = runner("run", "--bundle", str(bundle), "crun-probe")
    runner.cleanup()
    runner.ids.clear()
    if proc.returncode != 0:
        msg = proc.stderr.lower()
        if any(word in msg for word in CRUN_HYBRID_ERRORS):
            pytest.skip(f"crun refuses this host: {proc.stderr.strip()[:200]}")
        raise AssertionError(f"crun failed: {proc.stderr}")
