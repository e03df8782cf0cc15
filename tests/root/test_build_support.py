"""Support for the build tests (no tests here): a per-test engine with the busybox base and
network names of its own (removed after the test), and a one-call build."""

from __future__ import annotations

import contextlib
import io
import json
import os
import random
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from dockyard.build.context import open_build
from dockyard.build.executor import Builder, BuildOptions
from dockyard.build.output import Plain
from dockyard.engine import Engine, network_settings
from dockyard.image.model import Image
from dockyard.network import iproute, netns
from dockyard.network.manager import NetworkManager, Settings
from tests.images import busybox_image


@dataclass
class Built:
    image: Image
    builder: Builder
    output: str

    @property
    def top(self) -> Path:
        """The snapshot dir of the image's top layer."""
        return self.builder.engine.snapshots.dir(str(self.image.chain[-1]))


def write_tree(base: Path, files: dict[str, str | bytes]) -> Path:
    base.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        p = base / name
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, bytes):
            p.write_bytes(data)
        else:
            p.write_text(data)
    return base


def build(engine: Engine, context: Path, dockerfile: str | None = None, **opts: object) -> Built:
    if dockerfile is not None:
        (context / "Dockerfile").write_text(dockerfile)
    inp = open_build(
        str(context),
        None,
        work_dir=engine.root / "build" / "contexts",
        state_dir=engine.root / "build",
    )
    out = io.StringIO()
    options = BuildOptions(**opts)  # type: ignore[arg-type]
    options.dockerfile_name = inp.dockerfile_name
    with inp.context:
        b = Builder(engine, inp.context, options, Plain(out))
        try:
            image = b.build(inp.dockerfile)
        except Exception as e:
            e.add_note(out.getvalue())
            raise
    return Built(image, b, out.getvalue())


def mounts_under(path: Path) -> list[str]:
    prefix = os.path.realpath(path)
    with open("/proc/self/mountinfo") as f:
        return [ln.split()[4] for ln in f if ln.split()[4].startswith(prefix)]


def network_config(root: Path, run_dir: Path) -> Settings:
    """Give the state root network names of its own (bridge, veths, nft table: a random
    `dyb<4 hex>` tag), a netns dir `run_dir` and a random 10.200-249 pool start, in its
    config.json; return the same as `Settings`."""
    tag = "dyb" + secrets.token_hex(2)
    start = f"10.{random.randrange(200, 250)}.{random.randrange(0, 200)}.0"
    raw = {
        "table": tag,
        "default-bridge": f"{tag}b0",
        "bridge-prefix": f"{tag}n",
        "veth-prefix": f"{tag}v",
        "pool-start": start,
        "default-prefixlen": 24,
        "run-dir": str(run_dir),
    }
    root.mkdir(parents=True, exist_ok=True)
    (root / "config.json").write_text(json.dumps({"network": raw}))
    return network_settings(raw, root)


def tagged_links(tag: str) -> list[str]:
    return sorted(n for n in iproute.link_names() if n.startswith(tag))


def remove_network_state(root: Path, settings: Settings) -> None:
    """Remove every network, endpoint, veth, netns and the nft table of the state root, and
    check that nothing of its tag is left."""
    mgr = NetworkManager(root, settings)
    with contextlib.suppress(Exception):
        mgr.teardown()
    mgr.close()
    run_dir = settings.run_dir
    if run_dir.exists():
        for p in run_dir.iterdir():
            netns.delete(p)
    for name in tagged_links(settings.table):
        iproute.delete_link(name)
    iproute.run(["nft", "delete", "table", "inet", settings.table], check=False)
    assert tagged_links(settings.table) == []
    assert not run_dir.exists() or list(run_dir.iterdir()) == []


@contextlib.contextmanager
def isolated_engine(tmp_path: Path) -> Iterator[Engine]:
    """An engine on tmp_path/root with the busybox image and networks of its own; on exit
    every mount under tmp_path, network object and netns it made is removed, and
    net.ipv4.ip_forward is put back."""
    root = tmp_path / "root"
    settings = network_config(root, tmp_path / "netns")
    forward = iproute.read_sysctl("net.ipv4.ip_forward")
    eng = Engine.open(root)
    try:
        busybox_image(eng)
        yield eng
    finally:
        for m in sorted(mounts_under(tmp_path), key=len, reverse=True):
            os.system(f"umount -l {m!r} 2>/dev/null")
        eng.close()
        try:
            remove_network_state(root, settings)
        finally:
            iproute.write_sysctl("net.ipv4.ip_forward", forward)


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    with isolated_engine(tmp_path) as eng:
        yield eng
