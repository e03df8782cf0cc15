"""Build sources on the real kernel: symbolic `--chmod`, `ADD` of git repositories served by a
local `git daemon`, `RUN --mount=type=ssh` with a real `ssh-agent`, and `--platform`."""

from __future__ import annotations

import contextlib
import io
import os
import signal
import socket
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dockyard.build import baseimage
from dockyard.build.executor import BuildError
from dockyard.build.platforms import host
from dockyard.engine import Engine
from dockyard.errors import NotFound
from dockyard.oci.types import Platform
from dockyard.reference import parse_reference
from tests.cli import dy
from tests.conftest import require_tool
from tests.images import BASE_CHANGES, write_busybox_rootfs
from tests.root.test_build import logs
from tests.root.test_build_support import build, engine, mounts_under, write_tree

pytestmark = pytest.mark.root
__all__ = ["engine"]

GIT_ENV = {
    **{k: v for k, v in os.environ.items() if not k.startswith("GIT_")},
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.com",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.com",
}


def mode_of(p: Path) -> int:
    return stat.S_IMODE(os.lstat(p).st_mode)


# -- --chmod ------------------------------------------------------------------------------


def test_symbolic_chmod_on_every_copied_entry(engine: Engine, tmp_path: Path) -> None:
    ctx = write_tree(
        tmp_path / "ctx",
        {"app/bin/run.sh": "#!/bin/sh\n", "app/data/a.txt": "a", "app/data/sub/b": "b"},
    )
    os.chmod(ctx / "app/bin/run.sh", 0o700)
    os.chmod(ctx / "app/data/a.txt", 0o600)
    os.chmod(ctx / "app/data/sub", 0o700)
    os.chmod(ctx / "app/data/sub/b", 0o666)
    df = """\
FROM busybox
COPY --chmod=u=rwX,go=rX app /app/
ADD --chmod=go-w,u+x app/data/sub/b /one
COPY --chmod=640 app/data/a.txt /octal
RUN stat -c '%a %n' /app/bin /app/bin/run.sh /app/data/sub /app/data/a.txt /one /octal
"""
    b = build(engine, ctx, df)
    assert logs(b.output, 5) == [
        "755 /app/bin",
        "755 /app/bin/run.sh",
        "755 /app/data/sub",
        "644 /app/data/a.txt",
        "744 /one",
        "640 /octal",
    ]
    layer = b.builder.engine.snapshots.dir(str(b.image.chain[1]))
    assert mode_of(layer / "app/data/sub/b") == 0o644  # 666 → u=rw,go=r (no x: not executable)
    b2 = build(engine, ctx, df.replace("u=rwX,go=rX", "a=rX"))  # another mode: another key
    assert logs(b2.output, 5)[:4] == ["555 /app/bin", "555 /app/bin/run.sh", "555 /app/data/sub",
                                      "444 /app/data/a.txt"]  # fmt: skip


# -- ADD <git> ----------------------------------------------------------------------------


def git(*args: str, cwd: Path) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, env=GIT_ENV, check=True, capture_output=True, text=True
    ).stdout.strip()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def git_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """(git://127.0.0.1:PORT/repo.git, a work clone to push from), served by `git daemon`
    (killed after the test). The repository has main (README, docs/, an executable),
    an annotated tag v1 and a branch dev."""
    require_tool("git")
    base = tmp_path / "served"
    work = tmp_path / "work"
    work.mkdir()
    git("init", "-q", "-b", "main", cwd=work)
    write_tree(work, {"README": "hello\n", "docs/guide.txt": "guide v1\n", "bin/tool": "t\n"})
    os.chmod(work / "bin/tool", 0o755)
    git("add", "-A", cwd=work)
    git("commit", "-q", "-m", "one", cwd=work)
    git("tag", "-a", "-m", "first", "v1", cwd=work)
    git("checkout", "-q", "-b", "dev", cwd=work)
    (work / "dev.txt").write_text("dev\n")
    git("add", "-A", cwd=work)
    git("commit", "-q", "-m", "dev", cwd=work)
    git("checkout", "-q", "main", cwd=work)
    base.mkdir()
    git("clone", "-q", "--bare", str(work), str(base / "repo.git"), cwd=tmp_path)
    git("remote", "add", "served", str(base / "repo.git"), cwd=work)
    port = _free_port()
    daemon = subprocess.Popen(
        ["git", "daemon", "--export-all", f"--base-path={base}", "--listen=127.0.0.1",
         f"--port={port}", "--reuseaddr", str(base)],
        env=GIT_ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,  # `git daemon` runs git-daemon as a child: kill the group
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                break
            assert daemon.poll() is None and time.monotonic() < deadline, "git daemon failed"
            time.sleep(0.05)
        yield f"git://127.0.0.1:{port}/repo.git", work
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(daemon.pid, signal.SIGKILL)
        daemon.wait()


def test_add_git_branch_tag_subdir_commit_and_cache(
    engine: Engine, tmp_path: Path, git_server: tuple[str, Path]
) -> None:
    url, work = git_server
    first = git("rev-parse", "HEAD", cwd=work)
    ctx = write_tree(tmp_path / "ctx", {})
    df = f"""\
FROM busybox
ADD {url}#v1:docs /docs/
ADD --keep-git-dir=true {url}#dev /dev-src
ADD --chmod=a=rX {url}#{first}:bin /commit
ADD {url}#main /src
RUN cat /src/README /docs/guide.txt /dev-src/dev.txt && ls -a /src && git_dir=no && \\
    if [ -d /dev-src/.git ]; then git_dir=yes; fi && echo "git dir: $git_dir" && \\
    stat -c '%a %n' /src/bin/tool /src/README /commit/tool
"""
    b = build(engine, ctx, df)
    out = logs(b.output, 6)
    assert out[:3] == ["hello", "guide v1", "dev"]  # the checkout of main, tag v1 and dev
    assert ".git" not in out and "README" in out and "docs" in out
    assert "git dir: yes" in out
    assert out[-3:] == ["755 /src/bin/tool", "644 /src/README", "555 /commit/tool"]
    assert b.builder.stats.executed == 5
    # nothing moved: every step is a cache hit (the keys are the resolved commits)
    again = build(engine, ctx, df)
    assert again.builder.stats.executed == 0 and again.builder.stats.cached == 5
    assert again.image.id == b.image.id
    # main moves: its ADD and the RUN after it rebuild; the tag, dev and the commit do not
    (work / "README").write_text("hello again\n")
    git("commit", "-q", "-am", "two", cwd=work)
    git("push", "-q", "served", "main", cwd=work)
    moved = build(engine, ctx, df)
    assert moved.builder.stats.executed == 2 and moved.builder.stats.cached == 3
    assert logs(moved.output, 6)[0] == "hello again"
    assert mounts_under(tmp_path) == []


def test_add_git_errors(engine: Engine, tmp_path: Path, git_server: tuple[str, Path]) -> None:
    url, _ = git_server
    ctx = write_tree(tmp_path / "ctx", {})
    with pytest.raises(BuildError, match="no branch or tag 'nope'"):
        build(engine, ctx, f"FROM busybox\nADD {url}#nope /src\n")
    with pytest.raises(BuildError, match="no directory 'missing'"):
        build(engine, ctx, f"FROM busybox\nADD {url}#main:missing /src\n")


# -- RUN --mount=type=ssh -----------------------------------------------------------------


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[str]:
    """A real ssh-agent on a socket of the test's own, killed after the test."""
    require_tool("ssh-agent")
    sock = str(tmp_path / "agent.sock")
    proc = subprocess.Popen(["ssh-agent", "-D", "-a", sock], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while not os.path.exists(sock):
            assert proc.poll() is None and time.monotonic() < deadline, "ssh-agent failed"
            time.sleep(0.01)
        yield sock
    finally:
        proc.kill()
        proc.wait()


def test_run_ssh_mount_forwards_the_agent(engine: Engine, tmp_path: Path, agent: str) -> None:
    ctx = write_tree(tmp_path / "ctx", {})
    df = """\
FROM busybox
RUN --mount=type=ssh test -S "$SSH_AUTH_SOCK" && ls -l "$SSH_AUTH_SOCK" | cut -c1 && \\
    echo "sock=$SSH_AUTH_SOCK"
RUN --mount=type=ssh,id=other,target=/other.sock echo "sock=${SSH_AUTH_SOCK:-unset}" && \\
    test ! -e /other.sock
RUN --mount=type=ssh,target=/a.sock --mount=type=ssh,id=default echo "sock=$SSH_AUTH_SOCK" && \\
    test -S /a.sock && test -S /run/buildkit/ssh_agent.1
RUN echo "after=${SSH_AUTH_SOCK:-unset}"
"""
    b = build(engine, ctx, df, ssh={"default": [agent]})
    assert logs(b.output, 2) == ["s", "sock=/run/buildkit/ssh_agent.0"]
    assert logs(b.output, 3) == ["sock=unset"]  # not forwarded, not required: skipped
    assert logs(b.output, 4) == ["sock=/a.sock"]
    assert logs(b.output, 5) == ["after=unset"]  # only for the RUNs with the mount
    for c in b.image.chain[1:]:  # the mount points never reach a layer
        fs = b.builder.engine.snapshots.dir(str(c))
        assert not (fs / "run/buildkit").exists() and not (fs / "a.sock").exists()
    assert mounts_under(tmp_path / "root") == []


def test_run_ssh_required_without_forwarding_names_the_step(engine: Engine, tmp_path: Path) -> None:
    ctx = write_tree(tmp_path / "ctx", {})
    df = "FROM busybox\nRUN --mount=type=ssh,id=deploy,required=true true\n"
    with pytest.raises(BuildError) as e:
        build(engine, ctx, df)
    assert "id=deploy is required" in e.value.message and "--ssh deploy" in e.value.message
    assert e.value.step == "[2/2] RUN --mount=type=ssh,id=deploy,required=true true"
    assert e.value.line == 2


def test_ssh_key_files_get_an_agent_of_the_build(engine: Engine, tmp_path: Path) -> None:
    require_tool("ssh-keygen")
    key = tmp_path / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    ctx = write_tree(tmp_path / "ctx", {})
    df = "FROM busybox\nRUN --mount=type=ssh,required=true test -S $SSH_AUTH_SOCK && echo ok\n"
    b = build(engine, ctx, df, ssh={"default": [str(key)]})
    assert logs(b.output, 2) == ["ok"]
    sock = Path(b.builder.ssh_sockets["default"])
    assert sock.name == "agent" and not sock.parent.exists()  # the build's agent is gone


# -- --platform ---------------------------------------------------------------------------


def _foreign() -> str:
    return "linux/arm64" if host() != "linux/arm64" else "linux/amd64"


def _import_for(engine: Engine, name: str, platform: str) -> None:
    from dockyard.image.importer import import_rootfs

    buf = io.BytesIO()
    write_busybox_rootfs(buf)
    buf.seek(0)
    import_rootfs(engine.images, buf, ref=parse_reference(name), changes=BASE_CHANGES,
                  platform=Platform.parse(platform))  # fmt: skip


def test_platform_host_and_copy_only_foreign_builds(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx = write_tree(tmp_path / "ctx", {"f": "f"})
    df = "FROM busybox\nARG TARGETPLATFORM TARGETARCH\nLABEL p=$TARGETPLATFORM a=$TARGETARCH\n"
    b = build(engine, ctx, df + "RUN true\n", platform=host())
    assert b.image.config.config["Labels"] == {"p": host(), "a": host().split("/")[1]}
    foreign = _foreign()
    _import_for(engine, "busybox-foreign:latest", foreign)
    df2 = "FROM busybox-foreign\nARG TARGETARCH\nLABEL a=$TARGETARCH\nCOPY f /f\n"
    b = build(engine, ctx, df2, platform=foreign)
    assert f"{b.image.config.os}/{b.image.config.architecture}" == foreign
    assert b.image.config.config["Labels"] == {"a": foreign.split("/")[1]}
    with pytest.raises(BuildError, match="emulation is not available") as e:
        build(engine, ctx, df2 + "RUN true\n", platform=foreign)
    assert e.value.step.endswith("RUN true")
    # FROM --platform: a local image for another platform is not used (and no pull here)

    def no_pull(engine: Engine, name: str, platform: str) -> None:
        raise NotFound(f"failed to resolve source metadata for {name}: offline")

    monkeypatch.setattr(baseimage, "_pull", no_pull)
    with pytest.raises(NotFound, match=f"busybox is a {host()} image and no {foreign} one"):
        build(engine, ctx, f"FROM --platform={foreign} busybox\nCOPY f /f\n")


def test_cli_ssh_and_platform(
    engine: Engine, tmp_path: Path, agent: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx = write_tree(tmp_path / "ctx", {})
    (ctx / "Dockerfile").write_text("FROM busybox\nRUN --mount=type=ssh test -S $SSH_AUTH_SOCK\n")
    root = str(engine.root)
    monkeypatch.setenv("SSH_AUTH_SOCK", agent)
    r = dy(Path(root), "build", "--progress=plain", "--ssh", "default", str(ctx))
    assert "[2/2] RUN --mount=type=ssh" in r.err
    monkeypatch.delenv("SSH_AUTH_SOCK")
    r = dy(Path(root), "build", "--no-cache", "--ssh", "default", str(ctx), check=False)
    assert r.rc == 1 and "SSH_AUTH_SOCK is not set" in r.err
    _import_for(engine, "busybox-foreign:latest", _foreign())
    (ctx / "Dockerfile").write_text("FROM busybox-foreign\nRUN true\n")
    r = dy(Path(root), "build", "--platform", _foreign(), str(ctx), check=False)
    assert r.rc == 1 and "> [2/2] RUN true" in r.err and "emulation is not available" in r.err
