"""Typed instructions: flags, mounts, health checks, COPY/ADD options, validation errors."""

from __future__ import annotations

import pytest

from dockyard.build.flags import Mount, parse_duration, parse_mount
from dockyard.build.instructions import typed
from dockyard.build.model import (
    Cmd,
    Copy,
    Entrypoint,
    Expose,
    From,
    Healthcheck,
    Instruction,
    Run,
    Shell,
)
from dockyard.build.parser import DockerfileError, parse
from dockyard.errors import InvalidArgument

pytest.importorskip("dockerfile")


def one(line: str) -> Instruction:
    return typed(parse("FROM scratch\n" + line + "\n").instructions[-1])


def test_from_forms() -> None:
    f = typed(parse("FROM --platform=linux/arm64 alpine:3 AS Build\n").instructions[0])
    assert f == From(f.loc, "alpine:3", "build", "linux/arm64")
    with pytest.raises(DockerfileError, match="one or three arguments"):
        typed(parse("FROM a b\n").instructions[0])
    with pytest.raises(DockerfileError, match="invalid name for build stage"):
        typed(parse("FROM a AS 1x\n").instructions[0])


def test_run_shell_and_exec_forms() -> None:
    r = one("RUN echo $HOME && ls")
    assert isinstance(r, Run) and r.shell_form and r.command == ("echo $HOME && ls",)
    r = one('RUN ["echo", "$HOME"]')
    assert isinstance(r, Run) and not r.shell_form and r.command == ("echo", "$HOME")


def test_run_mounts_and_network() -> None:
    r = one(
        "RUN --mount=type=cache,target=/root/.cache,sharing=locked "
        "--mount=type=secret,id=tok --mount=type=tmpfs,dst=/t,size=1m "
        "--mount=from=builder,source=/out,target=/in --network=none make"
    )
    assert isinstance(r, Run)
    cache, secret, tmpfs, bind = r.mounts
    assert (cache.type, cache.target, cache.id, cache.sharing, cache.readonly) == (
        "cache",
        "/root/.cache",
        "/root/.cache",
        "locked",
        False,
    )
    assert (secret.type, secret.id, secret.target) == ("secret", "tok", "/run/secrets/tok")
    assert (tmpfs.type, tmpfs.target, tmpfs.size) == ("tmpfs", "/t", 1 << 20)
    assert (bind.type, bind.from_, bind.source, bind.readonly) == ("bind", "builder", "/out", True)
    assert r.network == "none"


def test_mount_options() -> None:
    m = parse_mount("type=cache,target=/c,id=x,mode=0700,uid=1000,gid=1000,rw=false")
    assert m == Mount("cache", "/c", id="x", mode=0o700, uid=1000, gid=1000, readonly=True)
    with pytest.raises(InvalidArgument, match="unexpected key"):
        parse_mount("type=cache,target=/c,bogus=1")
    with pytest.raises(InvalidArgument, match="destination"):
        parse_mount("type=cache")
    with pytest.raises(InvalidArgument, match="mount type"):
        parse_mount("type=nfs,target=/x")


def test_unknown_and_duplicate_flags_name_the_line() -> None:
    with pytest.raises(DockerfileError) as ei:
        typed(parse("FROM a\n\nCOPY --user=me a b\n").instructions[1])
    assert str(ei.value) == "Dockerfile:3: unknown flag: user"
    with pytest.raises(DockerfileError, match="Duplicate flag"):
        one("COPY --chown=1 --chown=2 a b")


def test_copy_and_add_flags() -> None:
    c = one(
        "COPY --from=build --chown=1:2 --chmod=0640 --link --parents --exclude=*.md "
        "--exclude=tmp a* b/ /dst/"
    )
    assert isinstance(c, Copy)
    assert (c.from_, c.chown, c.chmod, c.link, c.parents) == ("build", "1:2", "0640", True, True)
    assert c.exclude == ("*.md", "tmp") and c.sources == ("a*", "b/") and c.dest == "/dst/"
    digest = "sha256:" + "a" * 64
    a = one(f"ADD --checksum={digest} https://example.com/x.tgz /x")
    assert isinstance(a, Copy) and a.add and a.checksum == digest
    with pytest.raises(DockerfileError, match="non-HTTP"):
        one(f"ADD --checksum={digest} local.tgz /x")
    with pytest.raises(DockerfileError, match="chmod"):
        one("COPY --chmod=999 a b")
    with pytest.raises(DockerfileError, match="at least two arguments"):
        one("COPY a")


def test_copy_heredoc_source() -> None:
    c = one("COPY <<EOF /etc/motd\nhello\nEOF")
    assert isinstance(c, Copy)
    assert c.sources == ("EOF",) and c.heredocs[0].content == "hello\n"


def test_healthcheck() -> None:
    h = one(
        "HEALTHCHECK --interval=1m30s --timeout=3s --start-period=1s "
        "--start-interval=500ms --retries=3 CMD curl -f http://x/"
    )
    assert isinstance(h, Healthcheck)
    assert h.test == ("CMD-SHELL", "curl -f http://x/")
    assert (h.interval, h.timeout, h.start_period, h.start_interval, h.retries) == (
        90 * 10**9,
        3 * 10**9,
        10**9,
        5 * 10**8,
        3,
    )
    h = one('HEALTHCHECK CMD ["pg_isready"]')
    assert isinstance(h, Healthcheck) and h.test == ("CMD", "pg_isready")
    h = one("HEALTHCHECK NONE")
    assert isinstance(h, Healthcheck) and h.test == ("NONE",)
    with pytest.raises(DockerfileError, match="Unknown type"):
        one("HEALTHCHECK CONNECT TCP 7000")
    with pytest.raises(DockerfileError, match="Missing command"):
        one("HEALTHCHECK CMD")
    with pytest.raises(DockerfileError, match="negative"):
        one("HEALTHCHECK --retries=-1 CMD true")
    with pytest.raises(DockerfileError, match="1ms"):
        one("HEALTHCHECK --interval=10us CMD true")


def test_durations() -> None:
    assert parse_duration("1h2m3.5s", "x") == (3723 * 10**9 + 5 * 10**8)
    with pytest.raises(InvalidArgument):
        parse_duration("5", "interval")


def test_cmd_entrypoint_shell_forms() -> None:
    c = one("CMD echo hi")
    assert c == Cmd(c.loc, ("echo hi",), True)
    e = one('ENTRYPOINT ["/bin/app", "-v"]')
    assert isinstance(e, Entrypoint) and e.command == ("/bin/app", "-v") and not e.shell_form
    s = one('SHELL ["/bin/bash", "-c"]')
    assert isinstance(s, Shell) and s.shell == ("/bin/bash", "-c")
    with pytest.raises(DockerfileError, match="JSON form"):
        one("SHELL /bin/bash -c")


def test_expose_validation() -> None:
    e = one("EXPOSE 80 53/udp 8000-8010/tcp")
    assert isinstance(e, Expose) and e.ports == ("80", "53/udp", "8000-8010/tcp")
    with pytest.raises(DockerfileError, match="invalid proto"):
        one("EXPOSE 80/xyz")
