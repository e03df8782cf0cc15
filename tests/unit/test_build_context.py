"""Build context: sources, checksums (content, not mtimes), the persistent hash cache, tar/stdin."""

from __future__ import annotations

import io
import os
import tarfile
import time
from pathlib import Path

import pytest

from dockyard.build.context import BuildContext, clean_source, open_build
from dockyard.errors import InvalidArgument, NotFound


def _tree(root: Path, files: dict[str, str]) -> None:
    for name, content in files.items():
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(content)
    past = time.time() - 10
    for p in root.rglob("*"):
        os.utime(p, (past, past), follow_symlinks=False)
    time.sleep(0.15)  # beyond the racy window of the hash cache (ctime is now)


@pytest.fixture
def ctx_dir(tmp_path: Path) -> Path:
    root = tmp_path / "ctx"
    _tree(
        root,
        {
            "a.txt": "A",
            "b.txt": "B",
            "src/m.go": "package m",
            "src/sub/x.go": "x",
            "docs/r.md": "r",
            "Dockerfile": "FROM a\n",
        },
    )
    return root


def test_clean_source() -> None:
    assert clean_source("./a/../b/") == "b"
    assert clean_source("/abs") == "abs"
    assert clean_source("../../etc/passwd") == "etc/passwd"
    assert clean_source(".") == "."


def test_resolve_wildcards_and_missing(ctx_dir: Path) -> None:
    with BuildContext(ctx_dir, ["docs"]) as ctx:
        assert ctx.resolve("*.txt") == ["a.txt", "b.txt"]
        assert ctx.resolve("src/*.go") == ["src/m.go"]
        assert ctx.resolve("s?c/*/*.go") == ["src/sub/x.go"]
        assert ctx.resolve("./src/") == ["src"]
        with pytest.raises(NotFound, match="not found"):
            ctx.resolve("docs/r.md")  # excluded by .dockerignore
        with pytest.raises(NotFound):
            ctx.resolve("nope")
        with pytest.raises(NotFound):
            ctx.resolve("*.rs")


def test_files_honour_ignore_and_directory_semantics(ctx_dir: Path) -> None:
    with BuildContext(ctx_dir, ["**/x.go"]) as ctx:
        assert ctx.files("src") == ["src/m.go", "src/sub"]


def test_checksum_content_not_mtime(ctx_dir: Path, tmp_path: Path) -> None:
    state = tmp_path / "state"
    with BuildContext(ctx_dir, state_dir=state) as ctx:
        first = ctx.checksum(["src", "a.txt"])
    os.utime(ctx_dir / "a.txt")  # touched, unchanged
    os.utime(ctx_dir / "src" / "m.go")
    with BuildContext(ctx_dir, state_dir=state) as ctx:
        assert ctx.checksum(["src", "a.txt"]) == first
    (ctx_dir / "src" / "m.go").write_text("package n")  # one byte changed
    with BuildContext(ctx_dir, state_dir=state) as ctx:
        changed = ctx.checksum(["src", "a.txt"])
    assert changed != first
    (ctx_dir / "src" / "m.go").write_text("package m")
    with BuildContext(ctx_dir, state_dir=state) as ctx:
        assert ctx.checksum(["src", "a.txt"]) == first
    os.chmod(ctx_dir / "a.txt", 0o600)  # mode change
    with BuildContext(ctx_dir, state_dir=state) as ctx:
        assert ctx.checksum(["src", "a.txt"]) != first


def test_checksum_owner_symlink_and_names(ctx_dir: Path) -> None:
    os.symlink("a.txt", ctx_dir / "link")
    with BuildContext(ctx_dir) as ctx:
        base = ctx.checksum(["link"])
        assert ctx.checksum(["link"], owner=(1000, 1000)) != base
        os.remove(ctx_dir / "link")
        os.symlink("b.txt", ctx_dir / "link")
        assert ctx.checksum(["link"]) != base
        # a directory's checksum depends on the names inside it, not where it is
        (ctx_dir / "copy").mkdir()
        (ctx_dir / "copy" / "m.go").write_text("package m")
        (ctx_dir / "copy" / "sub").mkdir()
        (ctx_dir / "copy" / "sub" / "x.go").write_text("x")
        for p in [ctx_dir / "copy", ctx_dir / "src"]:
            for q in [p, *p.rglob("*")]:
                os.chmod(q, 0o755 if q.is_dir() else 0o644)
        assert ctx.checksum_path("copy") == ctx.checksum_path("src")
        (ctx_dir / "copy" / "sub" / "x.go").rename(ctx_dir / "copy" / "sub" / "y.go")
        assert ctx.checksum_path("copy") != ctx.checksum_path("src")


def test_checksum_sees_xattrs(ctx_dir: Path) -> None:
    with BuildContext(ctx_dir) as ctx:
        before = ctx.checksum(["a.txt"])
    try:
        os.setxattr(ctx_dir / "a.txt", "user.test", b"1")
    except OSError:
        pytest.skip("no user xattrs on this filesystem")
    with BuildContext(ctx_dir) as ctx:
        assert ctx.checksum(["a.txt"]) != before


def test_ignored_files_do_not_change_the_checksum(ctx_dir: Path) -> None:
    with BuildContext(ctx_dir, ["src/sub"]) as ctx:
        first = ctx.checksum(["src"])
    (ctx_dir / "src" / "sub" / "x.go").write_text("changed")
    with BuildContext(ctx_dir, ["src/sub"]) as ctx:
        assert ctx.checksum(["src"]) == first


def test_hash_cache_reuse(ctx_dir: Path, tmp_path: Path) -> None:
    state = tmp_path / "state"
    with BuildContext(ctx_dir, state_dir=state) as ctx:
        ctx.checksum(["."])
        assert ctx.hash_cache.hash_calls == 6
    with BuildContext(ctx_dir, state_dir=state) as ctx:
        ctx.checksum(["."])
        assert ctx.hash_cache.hash_calls == 0  # persisted: nothing re-read
    past = time.time() - 5
    (ctx_dir / "b.txt").write_text("B2")
    os.utime(ctx_dir / "b.txt", (past, past))
    time.sleep(0.15)
    with BuildContext(ctx_dir, state_dir=state) as ctx:
        ctx.checksum(["."])
        assert ctx.hash_cache.hash_calls == 1
    os.utime(ctx_dir / "a.txt")  # touched: re-hashed once, same digest
    with BuildContext(ctx_dir, state_dir=state) as ctx:
        ctx.checksum(["a.txt"])
        assert ctx.hash_cache.hash_calls == 1


def test_racy_files_are_not_trusted(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("1")
    state = tmp_path / "state"
    with BuildContext(tmp_path, state_dir=state) as ctx:
        ctx.checksum(["f"])
    with BuildContext(tmp_path, state_dir=state) as ctx:
        ctx.checksum(["f"])
        assert ctx.hash_cache.hash_calls == 1  # just written: hashed again


def test_open_build_directory(ctx_dir: Path, tmp_path: Path) -> None:
    (ctx_dir / ".dockerignore").write_text("docs\n")
    bi = open_build(str(ctx_dir), None, work_dir=tmp_path / "w")
    with bi.context as ctx:
        assert bi.dockerfile == "FROM a\n" and bi.dockerfile_name == "Dockerfile"
        assert ctx.is_excluded("docs/r.md")
    with pytest.raises(NotFound):
        open_build(str(tmp_path / "missing"), None, work_dir=tmp_path / "w")


def test_open_build_dockerfile_from_stdin(ctx_dir: Path, tmp_path: Path) -> None:
    bi = open_build(str(ctx_dir), "-", stdin=io.BytesIO(b"FROM b\n"), work_dir=tmp_path / "w")
    assert bi.dockerfile == "FROM b\n"
    with pytest.raises(InvalidArgument):
        open_build("-", "-", stdin=io.BytesIO(b""), work_dir=tmp_path / "w")


def _tar(files: dict[str, bytes], gz: bool = False) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz" if gz else "w") as tf:
        for name, data in files.items():
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            ti.mode = 0o644
            tf.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


@pytest.mark.parametrize("gz", [False, True])
def test_open_build_tar_from_stdin(tmp_path: Path, gz: bool) -> None:
    data = _tar(
        {"Dockerfile": b"FROM c\n", "app/x": b"x", ".dockerignore": b"*.log\n", "a.log": b"l"}, gz
    )
    work = tmp_path / "w"
    bi = open_build("-", None, stdin=io.BytesIO(data), work_dir=work)
    with bi.context as ctx:
        assert bi.dockerfile == "FROM c\n"
        assert ctx.resolve("app/*") == ["app/x"]
        assert ctx.is_excluded("a.log")
        root = ctx.root
    assert not root.exists()  # extracted context removed on close
    assert list(work.iterdir()) == []


def test_open_build_tar_file_with_custom_dockerfile(tmp_path: Path) -> None:
    tar = tmp_path / "ctx.tar"
    tar.write_bytes(_tar({"build/Dockerfile.x": b"FROM d\n", "f": b"1"}))
    bi = open_build(str(tar), "build/Dockerfile.x", work_dir=tmp_path / "w")
    with bi.context:
        assert bi.dockerfile == "FROM d\n" and bi.dockerfile_name == "Dockerfile.x"


def test_stdin_plain_dockerfile_means_empty_context(tmp_path: Path) -> None:
    bi = open_build("-", None, stdin=io.BytesIO(b"FROM e\nRUN true\n"), work_dir=tmp_path / "w")
    with bi.context as ctx:
        assert bi.dockerfile.startswith("FROM e")
        assert ctx.files() == []


def test_tar_escapes_are_refused(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        link = tarfile.TarInfo("evil")
        link.type = tarfile.SYMTYPE
        link.linkname = str(tmp_path / "outside")
        tf.addfile(link)
        ti = tarfile.TarInfo("evil/pwned")
        ti.size = 1
        tf.addfile(ti, io.BytesIO(b"x"))
    (tmp_path / "outside").mkdir()
    with pytest.raises(InvalidArgument, match="escapes"):
        open_build("-", None, stdin=io.BytesIO(buf.getvalue()), work_dir=tmp_path / "w")
    assert not (tmp_path / "outside" / "pwned").exists()
    assert list((tmp_path / "w").iterdir()) == []
