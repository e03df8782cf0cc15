"""Support for the build tests (no tests here): a per-test engine with the busybox base,
and a one-call build."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from dockyard.build.context import open_build
from dockyard.build.executor import Builder, BuildOptions
from dockyard.build.output import Plain
from dockyard.engine import Engine
from dockyard.image.model import Image
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


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    eng = Engine.open(tmp_path / "root")
    busybox_image(eng)
    try:
        yield eng
    finally:
        for m in sorted(mounts_under(tmp_path), key=len, reverse=True):
            os.system(f"umount -l {m!r} 2>/dev/null")
        eng.close()
