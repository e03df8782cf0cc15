"""Build executor on the real kernel: instructions, COPY rules, RUN mounts, multi-stage."""

from __future__ import annotations

import io
import os
import re
import tarfile
from pathlib import Path

import pytest

from dockyard.build.executor import BuildError
from dockyard.engine import Engine
from tests.root.test_build_support import build, engine, write_tree

pytestmark = pytest.mark.root
__all__ = ["engine"]


def logs(output: str, vertex: int) -> list[str]:
    """The output lines a RUN step printed (`#N 0.123 text`)."""
    pat = re.compile(rf"^#{vertex} \d+\.\d{{3}} (.*)$")
    return [m.group(1) for ln in output.splitlines() if (m := pat.match(ln))]


def test_every_metadata_instruction(engine: Engine, tmp_path: Path) -> None:
    ctx = write_tree(tmp_path / "ctx", {})
    df = """\
FROM busybox:latest
MAINTAINER someone@example.com
ARG VERSION=1.2
ENV APP=demo PATH2=/x
LABEL org.version=$VERSION "quoted key"=v
USER daemon
EXPOSE 80 8000-8001/udp
VOLUME /data /cache
SHELL ["/bin/sh", "-ec"]
STOPSIGNAL SIGQUIT
HEALTHCHECK --interval=5s --retries=2 CMD wget -q localhost
ONBUILD RUN echo child
ENTRYPOINT ["/bin/echo"]
CMD hello $APP
"""
    b = build(engine, ctx, df)
    c = b.image.config
    cfg = c.config
    assert "APP=demo" in cfg["Env"] and "PATH2=/x" in cfg["Env"]
    assert cfg["Labels"] == {"org.version": "1.2", "quoted key": "v"}
    assert cfg["User"] == "daemon"
    assert cfg["ExposedPorts"] == {"80/tcp": {}, "8000/udp": {}, "8001/udp": {}}
    assert cfg["Volumes"] == {"/data": {}, "/cache": {}}
    assert cfg["Shell"] == ["/bin/sh", "-ec"]
    assert cfg["StopSignal"] == "SIGQUIT"
    assert cfg["Healthcheck"] == {
        "Test": ["CMD-SHELL", "wget -q localhost"],
        "Interval": 5_000_000_000,
        "Retries": 2,
    }
    assert cfg["OnBuild"] == ["RUN echo child"]
    assert cfg["Entrypoint"] == ["/bin/echo"]
    assert cfg["Cmd"] == ["/bin/sh", "-ec", "hello $APP"]  # CMD is not expanded
    assert c.author == "someone@example.com"
    # metadata-only steps add empty-layer history entries and no layer
    assert len(c.diff_ids) == 1
    new = c.history[1:]
    assert all(h.empty_layer for h in new)
    assert new[0].created_by == "MAINTAINER someone@example.com"
    assert "EXPOSE map[80/tcp:{} 8000/udp:{} 8001/udp:{}]" in [h.created_by for h in new]
    assert "[1/1] FROM docker.io/library/busybox:latest" in b.output


def test_onbuild_triggers_run_in_child(engine: Engine, tmp_path: Path) -> None:
    ctx = write_tree(tmp_path / "ctx", {})
    build(engine, ctx, "FROM busybox\nONBUILD RUN echo trig > /trig\n", tags=["parent:1"])
    b = build(engine, ctx, "FROM parent:1\nRUN cat /trig\n")
    assert "trig" in b.output
    assert (b.top / "trig").exists()  # the trigger made a layer; `cat` made none
    assert not b.image.config.config.get("OnBuild")
    df = "FROM busybox AS base\nONBUILD RUN echo staged > /st\nFROM base\nRUN cat /st\n"
    b = build(engine, ctx, df)
    assert "staged" in logs(b.output, 4) and not b.image.config.config.get("OnBuild")


def test_run_output_layer_and_workdir(engine: Engine, tmp_path: Path) -> None:
    ctx = write_tree(tmp_path / "ctx", {"a.txt": "A\n"})
    df = """\
FROM busybox
WORKDIR /app/sub
COPY a.txt .
RUN echo out; echo err >&2; cat a.txt; pwd; id -u; echo made > made.txt
WORKDIR /app
RUN ["/bin/sh", "-c", "echo exec form $HOME"]
"""
    b = build(engine, ctx, df)
    lines = b.output.splitlines()
    for want in ("out", "err", "A", "/app/sub", "0"):
        assert any(ln.split(" ", 2)[-1] == want for ln in lines if ln.startswith("#4 ")), want
    assert "exec form /root" in logs(b.output, 6)
    assert "#4 DONE" in b.output
    snaps = b.builder.engine.snapshots
    chain = [str(c) for c in b.image.chain]
    # layers: base, WORKDIR /app/sub (created), COPY, RUN; WORKDIR /app exists -> no layer
    assert len(chain) == 4
    assert (snaps.dir(chain[1]) / "app" / "sub").is_dir()
    assert (snaps.dir(chain[2]) / "app" / "sub" / "a.txt").read_text() == "A\n"
    assert (snaps.dir(chain[3]) / "app" / "sub" / "made.txt").read_text() == "made\n"
    assert [h.empty_layer for h in b.image.config.history[1:]] == [
        False,
        False,
        False,
        True,
        True,
    ]
    assert b.image.config.config["WorkingDir"] == "/app"


def test_user_and_env_in_run(engine: Engine, tmp_path: Path) -> None:
    ctx = write_tree(tmp_path / "ctx", {})
    df = """\
FROM busybox
ARG WHO=world
ENV GREETING=hello
USER daemon
RUN echo "$GREETING $WHO uid=$(id -u) gid=$(id -g)"
USER 0:0
RUN echo "root=$(id -u)"
SHELL ["/bin/sh", "-xc"]
RUN true traced
"""
    b = build(engine, ctx, df, build_args={"WHO": "you"})
    assert "hello you uid=1 gid=1" in b.output
    assert "root=0" in b.output
    assert "+ true traced" in logs(b.output, 4)


def test_expansion_in_copy_workdir_and_build_args(engine: Engine, tmp_path: Path) -> None:
    ctx = write_tree(tmp_path / "ctx", {"src/v2.txt": "two\n"})
    df = """\
ARG BASE=busybox
FROM ${BASE}:latest
ARG VER=v1
ENV DIR=/opt/${VER}
WORKDIR $DIR
COPY src/${VER}.txt ${DIR:-/nope}/file.txt
RUN cat /opt/v2/file.txt && pwd
"""
    b = build(engine, ctx, df, build_args={"VER": "v2"})
    assert "#5 " in b.output and "two" in b.output and "/opt/v2" in b.output


def test_dockerignore_exceptions(engine: Engine, tmp_path: Path) -> None:
    ctx = write_tree(
        tmp_path / "ctx",
        {
            "README.md": "r",
            "CHANGES.md": "c",
            "docs/a.md": "a",
            "docs/keep.md": "k",
            "app.py": "p",
            "secret.key": "s",
            ".dockerignore": "*.md\n**/*.md\n!README.md\n!docs/keep.md\nsecret.*\n",
        },
    )
    b = build(engine, ctx, "FROM busybox\nCOPY . /ctx/\n")
    d = b.top / "ctx"
    names = sorted(str(p.relative_to(d)) for p in d.rglob("*"))
    assert names == [".dockerignore", "Dockerfile", "README.md", "app.py", "docs", "docs/keep.md"]


def test_copy_rules(engine: Engine, tmp_path: Path) -> None:
    ctx = write_tree(
        tmp_path / "ctx",
        {"dir/x": "x", "dir/sub/y": "y", "f1.txt": "1", "f2.txt": "2", "one": "o"},
    )
    os.chmod(ctx / "one", 0o640)
    os.setxattr(ctx / "one", "user.origin", b"ctx")
    df = """\
FROM busybox
COPY dir /contents/
COPY dir /renamed
COPY one /file-renamed
COPY one /into/
COPY f*.txt /wild/
COPY f1.txt f2.txt /multi/
COPY --chown=daemon:daemon --chmod=600 one /owned
COPY --chown=7 one /numeric
"""
    b = build(engine, ctx, df)
    snaps = b.builder.engine.snapshots
    chain = [str(c) for c in b.image.chain]

    def layer(i: int) -> Path:
        return snaps.dir(chain[i])

    assert sorted(os.listdir(layer(1) / "contents")) == ["sub", "x"]  # contents, not the dir
    assert (layer(2) / "renamed" / "sub" / "y").read_text() == "y"
    assert (layer(3) / "file-renamed").read_text() == "o"
    assert (layer(3) / "file-renamed").stat().st_mode & 0o777 == 0o640
    assert os.getxattr(layer(3) / "file-renamed", "user.origin") == b"ctx"
    assert (layer(4) / "into" / "one").is_file()
    assert sorted(os.listdir(layer(5) / "wild")) == ["f1.txt", "f2.txt"]
    assert sorted(os.listdir(layer(6) / "multi")) == ["f1.txt", "f2.txt"]
    st = (layer(7) / "owned").stat()
    assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (1, 1, 0o600)
    st = (layer(8) / "numeric").stat()
    assert (st.st_uid, st.st_gid) == (7, 7)
    assert (layer(1) / "contents" / "x").stat().st_uid == 0


def test_copy_follows_image_symlinks_inside_rootfs(engine: Engine, tmp_path: Path) -> None:
    ctx = write_tree(tmp_path / "ctx", {"f": "data"})
    df = """\
FROM busybox
RUN mkdir -p /real && ln -s /real /link && ln -s /etc /etclink
COPY f /link/f
COPY f /etclink/from-build
RUN cat /real/f && cat /etc/from-build
"""
    b = build(engine, ctx, df)
    assert b.output.count("data") >= 2
    assert not Path("/etc/from-build").exists()
    assert not Path("/real").exists()


def test_add_tar_is_extracted_and_heredoc_copy(engine: Engine, tmp_path: Path) -> None:
    ctx = write_tree(tmp_path / "ctx", {})
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        data = b"inside\n"
        ti = tarfile.TarInfo("pkg/inner.txt")
        ti.size = len(data)
        tf.addfile(ti, io.BytesIO(data))
    (ctx / "pkg.tar.gz").write_bytes(buf.getvalue())
    df = """\
FROM busybox
ADD pkg.tar.gz /opt/
ADD pkg.tar.gz pkg.tar.gz /new/deep/
COPY pkg.tar.gz /raw/
COPY <<EOF /etc/greeting
hello $HOSTNAME
EOF
RUN <<EOT
set -e
cat /opt/pkg/inner.txt
cat /new/deep/pkg/inner.txt
test -f /raw/pkg.tar.gz
cat /etc/greeting
EOT
RUN cat <<A && cat <<-B
first
A
	second
	B
"""
    b = build(engine, ctx, df)
    lines = b.output.splitlines()
    for want in (" inside", " first", " second"):
        assert any(ln.endswith(want) for ln in lines), want
    # COPY heredoc bodies are expanded with build-time values, unset ones become empty
    assert any(ln.rstrip().endswith(" hello") for ln in lines)


def test_heredoc_with_shebang_runs_as_program(engine: Engine, tmp_path: Path) -> None:
    ctx = write_tree(tmp_path / "ctx", {})
    df = "FROM busybox\nRUN <<EOF\n#!/bin/sh -e\necho shebang-ran $0\nEOF\n"
    b = build(engine, ctx, df)
    assert "shebang-ran /dev/pipes/EOF" in b.output


def test_run_mounts_cache_bind_tmpfs_secret(engine: Engine, tmp_path: Path) -> None:
    ctx = write_tree(tmp_path / "ctx", {"conf/app.ini": "k=v\n"})
    secret = tmp_path / "token"
    secret.write_text("s3cr3t")
    df = """\
FROM busybox
RUN --mount=type=cache,target=/cache echo run >> /cache/log && wc -l < /cache/log
RUN --mount=type=bind,source=conf,target=/mnt/conf cat /mnt/conf/app.ini
RUN --mount=type=bind,source=conf,target=/c,rw echo changed > /c/app.ini
RUN --mount=type=bind,source=conf/app.ini,target=/f.ini,rw echo changed > /f.ini
RUN --mount=type=tmpfs,target=/scratch touch /scratch/x && ls /scratch
RUN --mount=type=secret,id=tok cat /run/secrets/tok
"""
    b = build(engine, ctx, df, secrets={"tok": str(secret)})
    assert "k=v" in b.output and "s3cr3t" in b.output
    assert (ctx / "conf" / "app.ini").read_text() == "k=v\n"  # rw bind writes are discarded
    # mount stubs and mounted content never reach a layer
    for c in b.image.chain[1:]:
        fs = b.builder.engine.snapshots.dir(str(c))
        for gone in ("cache", "mnt", "scratch", "run/secrets", "c", "f.ini"):
            assert not (fs / gone).exists(), gone
    b2 = build(engine, ctx, df, secrets={"tok": str(secret)}, no_cache=True)
    assert any(ln.endswith(" 2") for ln in b2.output.splitlines())  # the cache dir persisted


def test_network_modes(engine: Engine, tmp_path: Path) -> None:
    ctx = write_tree(tmp_path / "ctx", {})
    df = "FROM busybox\nRUN ls /sys/class/net && cat /sys/class/net/lo/operstate\n"
    b = build(engine, ctx, df, network="none")
    assert logs(b.output, 2) == ["lo", "unknown"]  # lo is up ("unknown" is lo's up state)
    b = build(engine, ctx, "FROM busybox\nRUN ls /sys/class/net\n")  # default: the bridge
    assert logs(b.output, 2) == ["eth0", "lo"]
    bridge = engine.networks.get("bridge").bridge  # on the host since the step above
    b = build(engine, ctx, "FROM busybox\nRUN --network=host ls /sys/class/net\n")
    assert bridge in logs(b.output, 2)


def test_multistage_copy_from_and_target(engine: Engine, tmp_path: Path) -> None:
    ctx = write_tree(tmp_path / "ctx", {"src.txt": "source\n"})
    df = """\
FROM busybox AS builder
COPY src.txt /work/
RUN cp /work/src.txt /work/out.txt && echo built >> /work/out.txt

FROM busybox AS broken
RUN exit 7

FROM scratch AS final
COPY --from=builder /work/out.txt /out.txt
COPY --from=busybox:latest /bin/busybox /bin/busybox
COPY --from=0 /work /all/

FROM final AS later
RUN exit 9
"""
    b = build(engine, ctx, df, target="final")
    assert "[builder 1/3]" in b.output and "[final 2/4]" in b.output
    assert "broken" not in b.output and "later" not in b.output
    assert b.builder.stats.containers == 1
    snaps = b.builder.engine.snapshots
    layers = [snaps.dir(str(c)) for c in b.image.chain]
    assert (layers[0] / "out.txt").read_text() == "source\nbuilt\n"
    assert (layers[1] / "bin" / "busybox").stat().st_size > 100_000
    assert sorted(os.listdir(layers[2] / "all")) == ["out.txt", "src.txt"]
    assert len(b.image.config.diff_ids) == 3


def test_failing_run_cleans_up_and_tags_nothing(engine: Engine, tmp_path: Path) -> None:
    ctx = write_tree(tmp_path / "ctx", {})
    df = "FROM busybox\nRUN echo before\nRUN touch /junk && exit 3\n"
    with pytest.raises(BuildError) as ei:
        build(engine, ctx, df, tags=["never:1"])
    e = ei.value
    assert e.message == (
        'process "/bin/sh -c touch /junk && exit 3" did not complete successfully: exit code: 3'
    )
    assert e.step == "[3/3] RUN touch /junk && exit 3" and e.line == 3
    root = engine.root
    assert engine.meta.tag("docker.io/library/never:1") is None
    from tests.root.test_build_support import mounts_under

    assert mounts_under(root) == []
    assert os.listdir(root / "build" / "work") == []
    assert not (root / "build" / "runtime").exists() or os.listdir(root / "build" / "runtime") == []
    assert not list(Path("/sys/fs/cgroup/unified").glob("dockyard/build-*"))
    assert not list(Path("/sys/fs/cgroup/memory").glob("dockyard/build-*"))


def test_failing_copy_names_missing_file(engine: Engine, tmp_path: Path) -> None:
    ctx = write_tree(tmp_path / "ctx", {})
    with pytest.raises(BuildError, match=r"nope\.txt"):
        build(engine, ctx, "FROM busybox\nCOPY nope.txt /\n")
    assert os.listdir(engine.root / "build" / "work") == []


def test_copy_exclude_and_parents(engine: Engine, tmp_path: Path) -> None:
    ctx = write_tree(
        tmp_path / "ctx", {"src/a/x.go": "x", "src/a/x_test.go": "t", "src/b/y.go": "y"}
    )
    df = """\
FROM busybox
COPY --exclude=**/*_test.go src/ /one/
COPY --parents src/a/x.go src/b /two/
"""
    b = build(engine, ctx, df)
    snaps = b.builder.engine.snapshots
    one, two = (snaps.dir(str(c)) for c in b.image.chain[1:])
    assert sorted(str(p.relative_to(one)) for p in one.rglob("*.go")) == [
        "one/a/x.go",
        "one/b/y.go",
    ]
    assert sorted(str(p.relative_to(two)) for p in two.rglob("*.go")) == [
        "two/src/a/x.go",
        "two/src/b/y.go",
    ]


def test_add_url_with_checksum(engine: Engine, tmp_path: Path) -> None:
    import hashlib
    import http.server
    import threading

    served = tmp_path / "www"
    write_tree(served, {"tool.txt": "downloaded\n"})
    digest = "sha256:" + hashlib.sha256(b"downloaded\n").hexdigest()

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a: object, **kw: object) -> None:
            super().__init__(*a, directory=str(served), **kw)  # type: ignore[arg-type]

        def log_message(self, *args: object) -> None:
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{srv.server_address[1]}/tool.txt"
        ctx = write_tree(tmp_path / "ctx", {})
        b = build(engine, ctx, f"FROM busybox\nADD --checksum={digest} {url} /opt/\n")
        assert (b.top / "opt" / "tool.txt").read_text() == "downloaded\n"
        again = build(engine, ctx, f"FROM busybox\nADD --checksum={digest} {url} /opt/\n")
        assert "CACHED" in again.output
        bad = "sha256:" + "0" * 64
        with pytest.raises(BuildError, match="digest mismatch"):
            build(engine, ctx, f"FROM busybox\nADD --checksum={bad} {url} /opt/\n")
    finally:
        srv.shutdown()
        srv.server_close()
