"""Independent stages run at the same time (one worker process per stage of a level): they
really overlap, their output keeps BuildKit's step numbers, a failure cancels the siblings and
leaves nothing behind, the cache and the file-hash cache still work."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest

from dockyard.build.executor import BuildError
from dockyard.build.hashcache import HashCache
from dockyard.engine import Engine
from tests.root.test_build_support import build, engine, mounts_under, write_tree

pytestmark = pytest.mark.root
__all__ = ["engine"]

# each stage announces itself in a shared cache mount and waits for the other: the build only
# succeeds if the two RUNs overlap in time
_MEET = (
    "RUN --mount=type=cache,id=meet,target=/meet touch /meet/{me} && i=0; "
    "while [ ! -e /meet/{other} ]; do i=$((i+1)); [ $i -gt 200 ] && exit 9; sleep 0.05; done; "
    "echo {me} met {other} > /{me}.txt"
)
DOCKERFILE = f"""\
FROM busybox AS a
COPY a.txt /src/
{_MEET.format(me="a", other="b")}

FROM busybox AS b
COPY b.txt /src/
{_MEET.format(me="b", other="a")}

FROM busybox
COPY --from=a /a.txt /
COPY --from=b /b.txt /
"""


def _vertex_names(output: str) -> dict[int, str]:
    out: dict[int, str] = {}
    for ln in output.splitlines():
        m = re.match(r"^#(\d+) (\[.*)$", ln)
        if m:
            assert int(m.group(1)) not in out, f"vertex #{m.group(1)} opened twice"
            out[int(m.group(1))] = m.group(2)
    return out


def test_independent_stages_overlap(engine: Engine, tmp_path: Path) -> None:
    ctx = write_tree(tmp_path / "ctx", {"a.txt": "A\n", "b.txt": "B\n"})
    time.sleep(0.15)  # files changed just before hashing are not cached (racy)
    b = build(engine, ctx, DOCKERFILE)
    names = _vertex_names(b.output)
    assert sorted(names.values()) == sorted(
        [
            "[a 1/3] FROM docker.io/library/busybox:latest",
            "[a 2/3] COPY a.txt /src/",
            "[a 3/3] " + _MEET.format(me="a", other="b"),
            "[b 1/3] FROM docker.io/library/busybox:latest",
            "[b 2/3] COPY b.txt /src/",
            "[b 3/3] " + _MEET.format(me="b", other="a"),
            "[stage-2 1/3] FROM docker.io/library/busybox:latest",
            "[stage-2 2/3] COPY --from=a /a.txt /",
            "[stage-2 3/3] COPY --from=b /b.txt /",
        ]
    )
    for v in names:  # every vertex is closed exactly once
        ends = [ln for ln in b.output.splitlines() if re.match(rf"^#{v} (DONE|CACHED|ERROR)", ln)]
        assert len(ends) == 1, (v, ends)
    assert b.builder.stats.containers == 2 and b.builder.stats.executed == 6
    layers = [b.builder.engine.snapshots.dir(str(c)) for c in b.image.chain]
    assert (layers[-2] / "a.txt").read_text() == "a met b\n"
    assert (layers[-1] / "b.txt").read_text() == "b met a\n"
    # the workers' file hashes reached the parent's hash cache
    hc = HashCache(engine.root / "build", ctx)
    assert {"a.txt", "b.txt"} <= set(hc.rows)
    # a rebuild is fully cached (and makes no container)
    again = build(engine, ctx, DOCKERFILE)
    assert again.image.id == b.image.id
    assert again.builder.stats.containers == 0 and again.builder.stats.cached == 6


def test_failure_cancels_the_other_stage(engine: Engine, tmp_path: Path) -> None:
    ctx = write_tree(tmp_path / "ctx", {})
    df = """\
FROM busybox AS slow
RUN sleep 30

FROM busybox AS bad
RUN sleep 0.3; exit 3

FROM busybox
COPY --from=slow / /s
COPY --from=bad / /b
"""
    t0 = time.monotonic()
    with pytest.raises(BuildError) as ei:
        build(engine, ctx, df, tags=["never:1"])
    assert time.monotonic() - t0 < 10  # the sleeping stage was cancelled, not awaited
    e = ei.value
    assert e.step == "[bad 2/2] RUN sleep 0.3; exit 3" and e.line == 5
    assert e.message.endswith("exit code: 3")
    out = "\n".join(getattr(e, "__notes__", []))
    assert re.search(r"^#\d+ CANCELED$", out, re.M), out
    assert engine.meta.tag("docker.io/library/never:1") is None
    root = engine.root
    assert mounts_under(root) == []
    assert os.listdir(root / "build" / "work") == []
    assert not (root / "build" / "runtime").exists() or os.listdir(root / "build" / "runtime") == []
    assert not list(Path("/sys/fs/cgroup/unified").glob("dockyard/build-*"))
    assert engine.networks.endpoints() == []


def test_sequential_option_gives_the_same_image(engine: Engine, tmp_path: Path) -> None:
    ctx = write_tree(tmp_path / "ctx", {"a.txt": "A\n", "b.txt": "B\n"})
    df = (
        "FROM busybox AS a\nCOPY a.txt /\nFROM busybox AS b\nCOPY b.txt /\n"
        "FROM a\nCOPY --from=b /b.txt /\n"
    )
    par = build(engine, ctx, df, source_date_epoch=0, no_cache=True)
    seq = build(engine, ctx, df, source_date_epoch=0, no_cache=True, parallel=False)
    assert par.image.id == seq.image.id


def test_error_before_any_run_is_reported_with_its_step(engine: Engine, tmp_path: Path) -> None:
    ctx = write_tree(tmp_path / "ctx", {})
    df = "FROM busybox AS a\nCOPY nope.txt /\nFROM busybox AS b\nRUN true\n"
    df += "FROM a\nCOPY --from=b / /b\n"
    with pytest.raises(BuildError, match=r"nope\.txt") as ei:
        build(engine, ctx, df)
    assert ei.value.step == "[a 2/2] COPY nope.txt /" and ei.value.line == 2
    out = "\n".join(getattr(ei.value, "__notes__", []))
    assert re.search(r"^#(\d+) \[a 2/2\] COPY nope\.txt /$", out, re.M), out
    assert re.search(r"^#\d+ ERROR: .*nope\.txt", out, re.M), out
    assert engine.networks.endpoints() == [] and mounts_under(engine.root) == []
