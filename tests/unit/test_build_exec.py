"""Build executor pieces that need no root: cache keys and store, config instructions, RUN
argv, rooted path resolution and COPY's destination rules, progress text."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from dockyard.build import metadata as md
from dockyard.build.cache import BuildCache, State, root_key, step_key
from dockyard.build.chmod import parse_chmod
from dockyard.build.instructions import typed
from dockyard.build.model import Instruction, Loc, Run
from dockyard.build.output import Plain, Quiet
from dockyard.build.parser import Heredoc, parse
from dockyard.build.run import build_spec, run_args
from dockyard.build.steps import Item, Rooted, copy_items, dest_path, is_archive
from dockyard.errors import InvalidArgument
from dockyard.store.meta import MetaDB


def ins(line: str, file: str = "Dockerfile") -> Instruction:
    raw = parse(f"FROM scratch\n{line}\n", file).instructions[1]
    return typed(raw, None, file)


# -- cache keys ---------------------------------------------------------------------------


def test_step_key_ignores_location_but_not_content() -> None:
    a = ins("RUN echo hi")
    moved = typed(parse("FROM scratch\n\n\nRUN echo hi\n").instructions[1])
    assert step_key("p", a) == step_key("p", moved)
    assert step_key("p", a) != step_key("q", a)
    assert step_key("p", a) != step_key("p", ins("RUN echo ho"))
    assert step_key("p", a, args={"V": "1"}) != step_key("p", a, args={"V": "2"})
    assert step_key("p", a, inputs=["x"]) != step_key("p", a, inputs=["y"])
    assert step_key("p", ins("COPY --chown=1 a b")) != step_key("p", ins("COPY a b"))


def test_root_key_covers_epoch_and_platform() -> None:
    k = root_key("image", "sha256:ab", "linux/amd64", None)
    assert k != root_key("image", "sha256:ab", "linux/amd64", 1)
    assert k != root_key("image", "sha256:ab", "linux/arm64", None)


def test_state_round_trip_and_chain() -> None:
    s = State("k", config={"Env": ["A=1"]}, diff_ids=["sha256:" + "1" * 64])
    t = State.from_json(s.to_json())
    assert t == s and t.top == t.chain[-1] == "sha256:" + "1" * 64
    c = s.copy("k2")
    c.config["Env"].append("B=2")
    assert s.config == {"Env": ["A=1"]} and c.key == "k2"


def test_build_cache_store(tmp_path: Path) -> None:
    db = MetaDB(tmp_path)
    cache = BuildCache(db)
    st = State("key1", layers=[{"digest": "sha256:" + "a" * 64}], diff_ids=["sha256:" + "a" * 64])
    assert cache.get("key1") is None
    cache.put(st)
    assert cache.get("key1") == st
    assert BuildCache(db, enabled=False).get("key1") is None
    blobs, snaps = db.build_cache_roots()
    assert blobs == {"sha256:" + "a" * 64} and snaps == set(st.chain)
    assert cache.prune() == 1 and cache.get("key1") is None
    db.close()


# -- config instructions ------------------------------------------------------------------


def test_entrypoint_clears_inherited_cmd_only() -> None:
    cfg: dict[str, object] = {"Cmd": ["sh"]}
    md.apply_meta(cfg, ins('ENTRYPOINT ["/bin/app"]'), cmd_set=False)
    assert cfg["Cmd"] is None and cfg["Entrypoint"] == ["/bin/app"]
    cfg = {}
    cmd_set = md.apply_meta(cfg, ins("CMD run me"), cmd_set=False)
    md.apply_meta(cfg, ins("ENTRYPOINT /bin/app"), cmd_set)
    assert cfg["Cmd"] == ["/bin/sh", "-c", "run me"]
    assert cfg["Entrypoint"] == ["/bin/sh", "-c", "/bin/app"]


def test_config_fields_and_history_text() -> None:
    cfg: dict[str, object] = {"Env": ["PATH=/bin"]}
    for line in ("ENV PATH=/x A=b", "EXPOSE 80 90-91/udp", 'SHELL ["/bin/bash", "-c"]', "CMD x"):
        md.apply_meta(cfg, ins(line), False)
    assert cfg["Env"] == ["PATH=/x", "A=b"]
    assert cfg["ExposedPorts"] == {"80/tcp": {}, "90/udp": {}, "91/udp": {}}
    assert cfg["Cmd"] == ["/bin/bash", "-c", "x"]
    assert md.created_by(ins("EXPOSE 80"), cfg) == "EXPOSE map[80/tcp:{}]"
    assert md.created_by(ins("VOLUME /a /b"), cfg) == "VOLUME [/a /b]"
    assert md.created_by(ins("COPY a b"), cfg) == "COPY a b # buildkit"
    assert md.workdir_of({"WorkingDir": "/app"}, "sub/../x") == "/app/x"


# -- RUN ----------------------------------------------------------------------------------


def _run(text: str) -> Run:
    r = ins(text)
    assert isinstance(r, Run)
    return r


def test_run_args_forms() -> None:
    sh = ["/bin/sh", "-c"]
    assert run_args(_run("RUN echo hi"), sh) == (["/bin/sh", "-c", "echo hi"], None)
    assert run_args(_run('RUN ["a", "b c"]'), sh) == (["a", "b c"], None)
    argv, script = run_args(_run("RUN <<EOF\necho one\necho two\nEOF"), sh)
    assert argv == ["/bin/sh", "-c", "echo one\necho two\n"] and script is None
    argv, script = run_args(_run("RUN <<EOF\n#!/bin/busybox sh\necho x\nEOF"), sh)
    assert argv == ["/dev/pipes/EOF"] and script == "#!/bin/busybox sh\necho x\n"
    argv, _ = run_args(_run("RUN cat <<A >/f\nbody\nA"), sh)
    assert argv == ["/bin/sh", "-c", "cat <<A >/f\nbody\nA\n"]


def test_run_spec_network_and_user() -> None:
    spec = build_spec(
        Path("/r"), ["x"], ["A=1"], "/w", (1, 2, []), network="host", mounts=[], cgroup="/c"
    )
    assert {"type": "network"} not in spec["linux"]["namespaces"]
    assert spec["process"]["user"] == {"uid": 1, "gid": 2, "additionalGids": []}
    assert spec["process"]["capabilities"]["effective"] == []
    spec = build_spec(
        Path("/r"), ["x"], [], "/", (0, 0, []), network="none", mounts=[], cgroup="/c"
    )
    assert {"type": "network"} in spec["linux"]["namespaces"]
    assert spec["process"]["capabilities"]["effective"]


# -- paths and COPY -----------------------------------------------------------------------


def test_rooted_resolution_never_leaves_the_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "usr" / "lib").mkdir(parents=True)
    (root / "lib").symlink_to("/usr/lib")
    (root / "up").symlink_to("../../../..")
    (root / "loop").symlink_to("loop")
    r = Rooted(root)
    real = os.path.realpath(root)
    assert r.resolve("/lib/x") == f"{real}/usr/lib/x"
    assert r.resolve("up/etc/passwd") == f"{real}/etc/passwd"
    assert r.resolve("../../etc") == f"{real}/etc"
    assert r.resolve("lib", follow_last=False) == f"{real}/lib"
    with pytest.raises(InvalidArgument):
        r.resolve("loop/x")


def test_dest_rules() -> None:
    assert dest_path("./", "/app") == ("/app", True)
    assert dest_path(".", "/app") == ("/app", True)
    assert dest_path("x", "/app") == ("/app/x", False)
    assert dest_path("/abs/", "/app") == ("/abs", True)
    chmod = parse_chmod("0755")
    assert chmod is not None and chmod.octal == 0o755 and parse_chmod("") is None
    with pytest.raises(InvalidArgument):
        parse_chmod("u+q")


def _item(p: Path) -> Item:
    return Item(str(p), p.name, os.lstat(p))


def test_copy_items_file_dir_and_into_existing_dir(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "d" / "sub").mkdir(parents=True)
    (src / "d" / "sub" / "f").write_text("f")
    (src / "one").write_text("1")
    os.utime(src / "one", (1_000_000, 1_000_000))
    root = tmp_path / "root"
    (root / "exists").mkdir(parents=True)
    r = Rooted(root)
    kw = {"workdir": "/", "owner": None, "chmod": None}
    copy_items(r, [_item(src / "one")], "/renamed", **kw)  # type: ignore[arg-type]
    copy_items(r, [_item(src / "one")], "/exists", **kw)  # type: ignore[arg-type]
    d = _item(src / "d")
    d.children = [
        (rel, str(src / "d" / rel), os.lstat(src / "d" / rel)) for rel in ("sub", "sub/f")
    ]
    copy_items(r, [d], "/tree", **kw)  # type: ignore[arg-type]
    assert (root / "renamed").read_text() == "1"
    assert (root / "renamed").stat().st_mtime == 1_000_000
    assert (root / "exists" / "one").read_text() == "1"
    assert (root / "tree" / "sub" / "f").read_text() == "f"


def test_archive_detection(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        tf.addfile(tarfile.TarInfo("x"), io.BytesIO(b""))
    (tmp_path / "a.tgz").write_bytes(buf.getvalue())
    (tmp_path / "plain.txt").write_text("just text")
    assert is_archive(str(tmp_path / "a.tgz"))
    assert not is_archive(str(tmp_path / "plain.txt"))


# -- progress -----------------------------------------------------------------------------


def test_plain_progress_layout() -> None:
    out = io.StringIO()
    p = Plain(out)
    v = p.vertex("[1/2] FROM x")
    p.done(v)
    v = p.vertex("[2/2] RUN y")
    p.log(v, "line")
    p.error(v, "boom")
    w = p.vertex("[2/2] COPY z")
    p.cached(w)
    lines = out.getvalue().splitlines()
    assert lines[0] == "#1 [1/2] FROM x" and lines[1].startswith("#1 DONE ")
    assert lines[4].startswith("#2 0.") and lines[4].endswith(" line")
    assert lines[5] == "#2 ERROR: boom"
    assert lines[-2:] == ["#3 CACHED", ""]
    q = Quiet()
    q.done(q.vertex("x"))


def test_loc_is_not_part_of_heredoc_equality() -> None:
    a = Run(Loc("D", 1, 1, "x"), ("<<E",), True, (Heredoc("E", "a\n"),))
    b = Run(Loc("D", 9, 9, "y"), ("<<E",), True, (Heredoc("E", "a\n"),))
    assert step_key("p", a) == step_key("p", b)


# -- CLI argument helpers -----------------------------------------------------------------


def test_cli_build_arguments(monkeypatch: pytest.MonkeyPatch) -> None:
    from dockyard.cli import build as cli

    monkeypatch.setenv("FROM_ENV", "e")
    monkeypatch.delenv("MISSING", raising=False)
    assert cli._pairs(["A=1", "B=", "FROM_ENV", "MISSING"], "build-arg", True) == {
        "A": "1",
        "B": "",
        "FROM_ENV": "e",
    }
    assert cli._secrets(["id=tok,src=/x", "src=/run/y"]) == {"tok": "/x", "y": "/run/y"}
    with pytest.raises(InvalidArgument):
        cli._secrets(["id=tok,env=VAR"])
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    assert cli._epoch({}) is None
    assert cli._epoch({"SOURCE_DATE_EPOCH": "5"}) == 5
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "7")
    assert cli._epoch({}) == 7
    with pytest.raises(InvalidArgument):
        cli._epoch({"SOURCE_DATE_EPOCH": "soon"})
