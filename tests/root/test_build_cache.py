"""The build cache: hits when nothing an input covers changed, misses when anything did."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from dockyard.build.cache import BuildCache
from dockyard.engine import Engine
from tests.root.test_build_support import Built, build, engine, write_tree

pytestmark = pytest.mark.root
__all__ = ["engine"]

APP = """\
FROM busybox
WORKDIR /app
COPY package.json ./
RUN echo installing && cat package.json > deps
COPY . .
RUN ls > listing
CMD ["sh"]
"""


def _steps(b: Built) -> dict[str, str]:
    """Step label -> "CACHED" or "RUN" from the plain progress output."""
    out: dict[str, str] = {}
    labels: dict[str, str] = {}
    for ln in b.output.splitlines():
        num, _, rest = ln.partition(" ")
        if rest.startswith("["):
            labels[num] = rest
        elif rest == "CACHED" and num in labels:
            out[labels[num]] = "CACHED"
        elif rest.startswith("DONE") and num in labels:
            out.setdefault(labels[num], "RUN")
    return out


def _app(tmp_path: Path) -> Path:
    return write_tree(
        tmp_path / "ctx", {"package.json": '{"name": "x"}\n', "index.js": "v1\n", "Dockerfile": APP}
    )


def test_rebuild_is_all_cached_and_same_image(engine: Engine, tmp_path: Path) -> None:
    ctx = _app(tmp_path)
    first = build(engine, ctx)
    assert first.builder.stats.containers == 2
    again = build(engine, ctx)
    assert again.builder.stats.containers == 0
    steps = _steps(again)
    assert [v for k, v in steps.items() if "FROM" not in k] == ["CACHED"] * 5
    assert again.image.id == first.image.id


def test_touched_file_hits_changed_file_misses(engine: Engine, tmp_path: Path) -> None:
    ctx = _app(tmp_path)
    build(engine, ctx)
    later = time.time() + 100
    for name in ("index.js", "package.json"):
        os.utime(ctx / name, (later, later))
    touched = build(engine, ctx)
    assert touched.builder.stats.containers == 0
    (ctx / "index.js").write_text("v2\n")
    changed = build(engine, ctx)
    s = _steps(changed)
    assert s["[3/6] COPY package.json ./"] == "CACHED"
    assert s["[4/6] RUN echo installing && cat package.json > deps"] == "CACHED"
    assert s["[5/6] COPY . ."] == "RUN"
    assert s["[6/6] RUN ls > listing"] == "RUN"
    assert changed.builder.stats.containers == 1
    (ctx / "package.json").write_text('{"name": "y"}\n')
    s = _steps(build(engine, ctx))
    assert s["[3/6] COPY package.json ./"] == "RUN"
    assert s["[4/6] RUN echo installing && cat package.json > deps"] == "RUN"


def test_mode_change_misses_and_moved_line_hits(engine: Engine, tmp_path: Path) -> None:
    ctx = _app(tmp_path)
    build(engine, ctx)
    os.chmod(ctx / "index.js", 0o755)
    s = _steps(build(engine, ctx))
    assert s["[5/6] COPY . ."] == "RUN"
    (ctx / "Dockerfile").write_text("# a comment moves every line\n\n" + APP)
    s = _steps(build(engine, ctx))
    assert s["[4/6] RUN echo installing && cat package.json > deps"] == "CACHED"
    assert s["[5/6] COPY . ."] == "RUN"  # only because the Dockerfile is in the context


def test_build_args_and_no_cache(engine: Engine, tmp_path: Path) -> None:
    ctx = write_tree(tmp_path / "ctx", {})
    df = "FROM busybox\nRUN echo before\nARG V=1\nRUN echo v=$V\n"
    build(engine, ctx, df)
    s = _steps(build(engine, ctx, df, build_args={"V": "2"}))
    assert s["[2/3] RUN echo before"] == "CACHED"
    assert s["[3/3] RUN echo v=$V"] == "RUN"
    b = build(engine, ctx, df, build_args={"V": "2"}, no_cache=True)
    assert b.builder.stats.containers == 2 and "v=2" in b.output


def test_cache_survives_image_removal_until_prune(engine: Engine, tmp_path: Path) -> None:
    ctx = _app(tmp_path)
    first = build(engine, ctx, tags=["app:1"])
    engine.images.remove("app:1")
    engine.images.gc()
    again = build(engine, ctx, tags=["app:1"])
    assert again.builder.stats.containers == 0
    engine.images.remove("app:1")
    assert BuildCache(engine.meta).prune() > 0
    freed = engine.images.gc()
    assert freed > 0
    for layer in first.image.manifest.layers[1:]:
        assert not engine.content.has(str(layer.digest))
    rebuilt = build(engine, ctx)
    assert rebuilt.builder.stats.containers == 2


def test_reproducible_digest_with_source_date_epoch(engine: Engine, tmp_path: Path) -> None:
    ctx = _app(tmp_path)
    a = build(engine, ctx, no_cache=True, source_date_epoch=1700000000)
    time.sleep(1.1)
    (ctx / "index.js").write_text("v1\n")  # new mtime, same bytes
    b = build(engine, ctx, no_cache=True, source_date_epoch=1700000000)
    assert a.image.id == b.image.id
    assert a.image.manifest_digest == b.image.manifest_digest
    assert a.image.config.created == "2023-11-14T22:13:20.000000000Z"
    c = build(engine, ctx, no_cache=True, source_date_epoch=1700000001)
    assert c.image.id != a.image.id


def test_entrypoint_in_child_stage_is_not_confused_with_same_stage(
    engine: Engine, tmp_path: Path
) -> None:
    ctx = write_tree(tmp_path / "ctx", {})
    one = build(engine, ctx, 'FROM busybox\nCMD ["x"]\nENTRYPOINT ["e"]\n')
    assert one.image.config.config["Cmd"] == ["x"]
    two = build(engine, ctx, 'FROM busybox AS a\nCMD ["x"]\nFROM a\nENTRYPOINT ["e"]\n')
    assert two.image.config.config.get("Cmd") is None  # ENTRYPOINT resets an inherited CMD
