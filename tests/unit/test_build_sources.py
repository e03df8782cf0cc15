"""Symbolic `--chmod` arithmetic, git source references, `--ssh` forwarding and platforms:
the pure parts of the build's COPY/ADD sources, RUN ssh mounts and `--platform`."""

from __future__ import annotations

import stat

import pytest

from dockyard.build.chmod import parse_chmod
from dockyard.build.flags import parse_mount
from dockyard.build.gitsource import GitRef, parse_git_ref, pick_ref
from dockyard.build.instructions import typed
from dockyard.build.model import Copy
from dockyard.build.parser import DockerfileError, parse
from dockyard.build.platforms import check_run, host, image_matches, native, normalize
from dockyard.build.sshagent import auth_sock_env, parse_ssh, ssh_binds
from dockyard.build.stages import plan
from dockyard.errors import FailedPrecondition, InvalidArgument

F, D = stat.S_IFREG, stat.S_IFDIR


def mode(text: str, st_mode: int) -> int:
    c = parse_chmod(text)
    assert c is not None
    return c.apply(st_mode)


@pytest.mark.parametrize(
    ("text", "src", "want"),
    [
        ("755", F | 0o600, 0o755),
        ("0644", D | 0o777, 0o644),
        ("u+x", F | 0o644, 0o744),
        ("go-w", F | 0o666, 0o644),
        ("+x", F | 0o600, 0o711),  # no who: all (the builder's umask is 0)
        ("a=rX", F | 0o640, 0o444),  # a file without x stays without
        ("a=rX", F | 0o700, 0o555),  # ... one executable by anyone gets x everywhere
        ("a=rX", D | 0o700, 0o555),  # directories always get x
        ("u=rwX,go=rX", F | 0o600, 0o644),
        ("u=rwX,go=rX", D | 0o700, 0o755),
        ("u=rwX,go=rX", F | 0o744, 0o755),
        ("a+rX,go-w", F | 0o620, 0o644),
        ("g=u", F | 0o640, 0o660),
        ("go=u-w", F | 0o750, 0o755),
        ("u+s,g+s", F | 0o755, 0o6755),
        ("o+s", F | 0o755, 0o755),  # set-id for others only: ignored (BSD)
        ("+t", D | 0o777, 0o1777),
        ("=r", F | 0o1777, 0o1444),  # `=` keeps the sticky bit unless t is named (BSD)
        ("u=rw,g=r,o=", F | 0o777, 0o640),
        ("=", F | 0o755, 0o000),
        ("a-x,a+X", F | 0o755, 0o755),  # X looks at the source mode (BSD)
        ("u+r-w", F | 0o200, 0o400),
    ],
)
def test_chmod_arithmetic(text: str, src: int, want: int) -> None:
    assert mode(text, src) == want, oct(mode(text, src))


@pytest.mark.parametrize("text", ["u+q", "u", "ug", "u+x,", ",u+x", "+ux", "g=ur", "0o755",
                                  "8", "17777", "x+r"])  # fmt: skip
def test_chmod_malformed(text: str) -> None:
    with pytest.raises(InvalidArgument, match="invalid chmod parameter"):
        parse_chmod(text)


def test_chmod_flag_validated_at_parse_time() -> None:
    ok = typed(parse("COPY --chmod=u=rwX,go=rX a b\n").instructions[0])
    assert isinstance(ok, Copy) and ok.chmod == "u=rwX,go=rX"
    with pytest.raises(DockerfileError, match="invalid chmod parameter"):
        typed(parse("COPY --chmod=u+q a b\n").instructions[0])


@pytest.mark.parametrize(
    ("src", "want"),
    [
        ("git://h/r", GitRef("git://h/r")),
        ("git://h/r.git#main", GitRef("git://h/r.git", "main")),
        ("https://h/o/r.git#v1.0:docs/", GitRef("https://h/o/r.git", "v1.0", "docs")),
        ("http://h/r.git#:sub", GitRef("http://h/r.git", "", "sub")),
        ("ssh://git@h/r#abc", GitRef("ssh://git@h/r", "abc")),
        ("git@github.com:o/r.git#dev:x", GitRef("git@github.com:o/r.git", "dev", "x")),
        ("https://h/file.tar.gz", None),  # http(s) is git only with a .git path
        ("https://h/r.git.tar", None),
        ("ftp://h/r.git", None),
        ("README.md", None),
        ("./git@h:r", None),
        ("dir/x:y", None),
    ],
)
def test_git_ref_recognition(src: str, want: GitRef | None) -> None:
    assert parse_git_ref(src) == want


def test_git_source_only_for_add_and_checksum_is_a_commit() -> None:
    with pytest.raises(DockerfileError, match="can't be a git ref for COPY"):
        typed(parse("COPY git://h/r.git /src\n").instructions[0])
    add = typed(parse("ADD --keep-git-dir --checksum=0123abc git://h/r#v1 /src\n").instructions[0])
    assert isinstance(add, Copy) and add.keep_git_dir
    with pytest.raises(DockerfileError, match="expected a commit hash"):
        typed(parse("ADD --checksum=sha256:00 git://h/r /src\n").instructions[0])


LS_REMOTE = (
    "1111111111111111111111111111111111111111\tHEAD\n"
    "1111111111111111111111111111111111111111\trefs/heads/main\n"
    "2222222222222222222222222222222222222222\trefs/heads/v1\n"
    "3333333333333333333333333333333333333333\trefs/tags/v1\n"
    "4444444444444444444444444444444444444444\trefs/tags/v1^{}\n"
    "5555555555555555555555555555555555555555\trefs/tags/light\n"
)


def test_pick_ref_prefers_branches_then_peeled_tags() -> None:
    assert pick_ref(LS_REMOTE, "") == ("1" * 40, "HEAD")
    assert pick_ref(LS_REMOTE, "main") == ("1" * 40, "refs/heads/main")
    assert pick_ref(LS_REMOTE, "v1") == ("2" * 40, "refs/heads/v1")
    assert pick_ref(LS_REMOTE, "refs/tags/v1") == ("4" * 40, "refs/tags/v1")
    assert pick_ref(LS_REMOTE, "light") == ("5" * 40, "refs/tags/light")
    assert pick_ref(LS_REMOTE, "nope") is None


def test_ssh_flags_mounts_and_env(monkeypatch: pytest.MonkeyPatch) -> None:
    assert parse_ssh(["default", "gh=/k1,/k2"]) == {"default": [], "gh": ["/k1", "/k2"]}
    for bad in (["=x"], ["a="], ["a", "a=/s"]):
        with pytest.raises(InvalidArgument):
            parse_ssh(bad)
    m0 = parse_mount("type=ssh")
    assert (m0.id, m0.target, m0.readonly, m0.required) == ("default", "", True, False)
    mounts = (m0, parse_mount("type=ssh,id=gh,target=/gh.sock"), parse_mount("type=ssh,id=x"))
    binds = ssh_binds(mounts, {"default": "/a.sock", "gh": "/b.sock"})
    assert binds == [("/a.sock", "/run/buildkit/ssh_agent.0"), ("/b.sock", "/gh.sock")]
    assert auth_sock_env(["A=1"], binds) == ["A=1", "SSH_AUTH_SOCK=/run/buildkit/ssh_agent.0"]
    assert auth_sock_env(["SSH_AUTH_SOCK=/mine"], binds) == ["SSH_AUTH_SOCK=/mine"]
    assert auth_sock_env(["A=1"], []) == ["A=1"]
    with pytest.raises(FailedPrecondition, match=r"id=gh is required.*--ssh gh"):
        ssh_binds((parse_mount("type=ssh,id=gh,required=true"),), {})


def test_platform_normal_forms() -> None:
    assert normalize("linux/x86_64") == "linux/amd64"
    assert normalize("arm64") == "linux/arm64"
    assert normalize("linux/arm64/v8") == "linux/arm64"
    assert normalize("linux/aarch64") == "linux/arm64"
    assert normalize("linux/armhf") == "linux/arm/v7"
    assert normalize("linux/arm") == "linux/arm/v7"
    assert normalize("Linux/AMD64") == "linux/amd64"
    assert normalize("linux") == host()
    for bad in ("", "linux/", "a/b/c/d", "linux/amd64,linux/arm64"):
        with pytest.raises(InvalidArgument):
            normalize(bad)
    assert image_matches("linux", "arm64", "v8", "linux/arm64")
    assert not image_matches("linux", "amd64", None, "linux/arm64")
    assert image_matches("", "", None, "linux/s390x")  # no architecture: fits anything


def test_foreign_run_fails_with_a_clear_error() -> None:
    check_run(host())
    foreign = "linux/s390x" if host() != "linux/s390x" else "linux/amd64"
    assert not native(foreign)
    with pytest.raises(FailedPrecondition, match="emulation is not available"):
        check_run(foreign)


def test_platform_args_reflect_the_request() -> None:
    df = "ARG TARGETPLATFORM\nFROM --platform=$BUILDPLATFORM scratch AS b\nFROM scratch\n"
    p = plan(df, target_platform="linux/aarch64", build_platform="linux/amd64")
    assert p.global_args["TARGETPLATFORM"] == "linux/arm64"
    assert p.global_args["TARGETARCH"] == "arm64"
    assert p.global_args["BUILDPLATFORM"] == "linux/amd64"
    assert [s.platform for s in p.stages] == ["linux/amd64", "linux/arm64"]
    with pytest.raises(DockerfileError, match="invalid platform"):
        plan("FROM --platform=linux/ scratch\n")
