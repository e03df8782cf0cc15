"""Build executor pieces for networks and parallel stages that need no root: network modes,
build container ids, the worker protocol (events replayed with the build's vertex numbers,
errors rebuilt), the hash cache merge, mount stubs."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from dockyard.build import network as netmod
from dockyard.build import parallel
from dockyard.build.executor import BuildError
from dockyard.build.executor_steps import _remove_stubs, _stubs
from dockyard.build.hashcache import HashCache
from dockyard.build.output import Plain
from dockyard.build.steps import Rooted
from dockyard.errors import InvalidArgument, NotFound


def test_build_and_step_network_modes() -> None:
    assert [netmod.build_mode(m) for m in ("", "default", "bridge")] == ["default"] * 3
    assert netmod.build_mode("host") == "host" and netmod.build_mode("mynet") == "mynet"
    with pytest.raises(InvalidArgument):
        netmod.build_mode("container:abc")
    assert netmod.step_mode("host", "default") == "host"
    assert netmod.step_mode("bridge", "none") == "none"
    assert netmod.step_mode("none", "host") == "host"
    assert netmod.step_mode("mynet", "default") == "mynet"


def test_build_container_ids_tell_live_builds() -> None:
    cid = netmod.container_id()
    assert cid.startswith(f"build-{os.getpid()}-")
    assert netmod.live_build(cid)
    assert not netmod.live_build("build-999999999-abcdef")  # beyond pid_max: never alive
    assert not netmod.live_build("0123456789ab")  # a container, not a build


def test_events_replay_with_the_builds_vertex_numbers() -> None:
    out = io.StringIO()
    p = Plain(out)
    first = p.vertex("[x 1/1] FROM scratch")
    a, b = parallel._Child(1, 0, -1), parallel._Child(2, 0, -1)
    events: list[dict[str, object]] = []
    w = parallel.WorkerProgress(events.append)
    v = w.vertex("[a 2/2] RUN echo hi")
    w.log(v, "hi")
    w.done(v)
    for e in events:
        parallel._event(p, a, e)
    parallel._event(p, b, {"t": "vertex", "v": 1, "name": "[b 2/2] RUN true"})
    parallel._event(p, b, {"t": "cached", "v": 1})
    parallel._event(p, b, {"t": "canceled", "v": 1})
    text = out.getvalue()
    assert a.vertices == {1: first + 1} and b.vertices == {1: first + 2}
    assert "#2 [a 2/2] RUN echo hi\n" in text and "#3 [b 2/2] RUN true\n" in text
    assert "\n#2 0." in text and text.endswith("#3 CACHED\n\n#3 CANCELED\n")


def test_errors_cross_the_pipe_with_their_class() -> None:
    e = parallel._rebuild_error(parallel._error_fields(BuildError("boom", "[a 2/2] RUN x", "D", 4)))
    assert isinstance(e, BuildError) and (e.message, e.step, e.file, e.line) == (
        "boom",
        "[a 2/2] RUN x",
        "D",
        4,
    )
    assert isinstance(parallel._rebuild_error(parallel._error_fields(NotFound("gone"))), NotFound)
    other = parallel._rebuild_error(parallel._error_fields(ValueError("bad")))
    assert other.message == "ValueError: bad"


def test_hash_cache_merge_persists(tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    with HashCache(tmp_path / "state", ctx) as hc:
        hc.merge({"f": ((1, 2, 3, 4), "ab", "")})
    assert HashCache(tmp_path / "state", ctx).rows == {"f": ((1, 2, 3, 4), "ab", "")}


def test_mount_stubs_and_their_copied_up_parents_are_removed(tmp_path: Path) -> None:
    root, upper = tmp_path / "root", tmp_path / "upper"
    (root / "etc").mkdir(parents=True)
    (root / "usr").mkdir()
    st = _stubs(Rooted(root), ["/etc/hosts", "/mnt/a/b", "/usr"])
    assert st.paths == ["etc/hosts", "mnt", "mnt/a", "mnt/a/b"]
    assert set(st.parents) == {"etc"}
    (upper / "etc").mkdir(parents=True)  # overlay's copy-up of /etc for the stub
    (upper / "etc" / "hosts").touch()
    (upper / "mnt" / "a" / "b").mkdir(parents=True)
    (upper / "keep").mkdir()
    _remove_stubs(upper, st)
    assert sorted(os.listdir(upper)) == ["keep"]
    # a parent the RUN changed (mode) or wrote into stays
    (upper / "etc").mkdir(mode=0o700)
    os.chmod(upper / "etc", 0o700)
    _remove_stubs(upper, st)
    assert (upper / "etc").is_dir()
