"""Tests of dockyard.reference: Docker's reference grammar, normalisation and error wording."""

from __future__ import annotations

import dataclasses

import pytest

from dockyard.errors import InvalidArgument
from dockyard.reference import (
    Reference,
    parse_docker_ref,
    parse_reference,
    parse_repository_tag,
    parse_tag_argument,
    repo_tag_reference,
)

D = "sha256:2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881"
D384 = "sha384:" + "0123456789abcdef" * 6
D512 = "sha512:" + "0123456789abcdef" * 8
HEX64 = D.split(":", 1)[1]

# input, domain, path, tag, digest, familiar string
VALID: list[tuple[str, str, str, str | None, str | None, str]] = [
    ("busybox", "docker.io", "library/busybox", "latest", None, "busybox:latest"),
    ("busybox:1.36", "docker.io", "library/busybox", "1.36", None, "busybox:1.36"),
    (
        "busybox:Latest_1.x-y",
        "docker.io",
        "library/busybox",
        "Latest_1.x-y",
        None,
        "busybox:Latest_1.x-y",
    ),
    ("busybox:_x", "docker.io", "library/busybox", "_x", None, "busybox:_x"),
    ("library/busybox", "docker.io", "library/busybox", "latest", None, "busybox:latest"),
    ("docker.io/busybox", "docker.io", "library/busybox", "latest", None, "busybox:latest"),
    ("docker.io/library/busybox:1", "docker.io", "library/busybox", "1", None, "busybox:1"),
    ("index.docker.io/busybox", "docker.io", "library/busybox", "latest", None, "busybox:latest"),
    ("index.docker.io/foo/bar", "docker.io", "foo/bar", "latest", None, "foo/bar:latest"),
    ("foo/bar", "docker.io", "foo/bar", "latest", None, "foo/bar:latest"),
    ("docker.io/foo", "docker.io", "library/foo", "latest", None, "foo:latest"),
    ("foo/bar/baz:v2", "docker.io", "foo/bar/baz", "v2", None, "foo/bar/baz:v2"),
    ("library/a/b", "docker.io", "library/a/b", "latest", None, "library/a/b:latest"),
    ("localhost/foo", "localhost", "foo", "latest", None, "localhost/foo:latest"),
    ("localhost", "docker.io", "library/localhost", "latest", None, "localhost:latest"),
    ("localhost:5000", "docker.io", "library/localhost", "5000", None, "localhost:5000"),
    ("docker.io", "docker.io", "library/docker.io", "latest", None, "docker.io:latest"),
    ("localhost:5000/a/b@" + D, "localhost:5000", "a/b", None, D, "localhost:5000/a/b@" + D),
    ("example.com/foo:tag", "example.com", "foo", "tag", None, "example.com/foo:tag"),
    ("example.com:443/foo", "example.com:443", "foo", "latest", None, "example.com:443/foo:latest"),
    ("127.0.0.1:5000/foo", "127.0.0.1:5000", "foo", "latest", None, "127.0.0.1:5000/foo:latest"),
    ("[::1]:5000/foo:bar", "[::1]:5000", "foo", "bar", None, "[::1]:5000/foo:bar"),
    ("[::1]/foo", "[::1]", "foo", "latest", None, "[::1]/foo:latest"),
    (
        "[2001:db8::1]:5000/ns/img",
        "[2001:db8::1]:5000",
        "ns/img",
        "latest",
        None,
        "[2001:db8::1]:5000/ns/img:latest",
    ),
    (
        "Registry.Example.COM/foo",
        "Registry.Example.COM",
        "foo",
        "latest",
        None,
        "Registry.Example.COM/foo:latest",
    ),
    ("Foo/bar", "Foo", "bar", "latest", None, "Foo/bar:latest"),
    ("my-registry/foo", "docker.io", "my-registry/foo", "latest", None, "my-registry/foo:latest"),
    ("busybox@" + D, "docker.io", "library/busybox", None, D, "busybox@" + D),
    ("busybox:1@" + D, "docker.io", "library/busybox", "1", D, "busybox:1@" + D),
    ("busybox@" + D384, "docker.io", "library/busybox", None, D384, "busybox@" + D384),
    ("busybox@" + D512, "docker.io", "library/busybox", None, D512, "busybox@" + D512),
    (
        "example.com:5000/foo:tag@" + D,
        "example.com:5000",
        "foo",
        "tag",
        D,
        "example.com:5000/foo:tag@" + D,
    ),
    ("foo__bar", "docker.io", "library/foo__bar", "latest", None, "foo__bar:latest"),
    ("foo--bar", "docker.io", "library/foo--bar", "latest", None, "foo--bar:latest"),
    (
        "foo.bar_baz-qux",
        "docker.io",
        "library/foo.bar_baz-qux",
        "latest",
        None,
        "foo.bar_baz-qux:latest",
    ),
    ("a" * 63, "docker.io", "library/" + "a" * 63, "latest", None, "a" * 63 + ":latest"),
    (
        "busybox:" + "t" * 128,
        "docker.io",
        "library/busybox",
        "t" * 128,
        None,
        "busybox:" + "t" * 128,
    ),
    (
        "example.com/" + "a" * 255,
        "example.com",
        "a" * 255,
        "latest",
        None,
        "example.com/" + "a" * 255 + ":latest",
    ),
    ("a" * 247, "docker.io", "library/" + "a" * 247, "latest", None, "a" * 247 + ":latest"),
]

FMT = "invalid reference format"
LOWER = "invalid reference format: repository name ({}) must be lowercase"
TOO_LONG = "repository name must not be more than 255 characters"

# input, exact error message
INVALID: list[tuple[str, str]] = [
    ("", FMT),
    ("Busybox", LOWER.format("library/Busybox")),
    ("docker.io/Busybox", LOWER.format("library/Busybox")),
    ("foo/Bar:tag", LOWER.format("foo/Bar")),
    ("localhost:5000/Foo", LOWER.format("Foo")),
    ("BUSYBÓX", LOWER.format("library/BUSYBÓX")),
    ("Foo_bar/baz", "repository name must be lowercase"),
    ("busybox:", FMT),
    (":tag", FMT),
    ("a:b:c", FMT),
    ("/foo", FMT),
    ("foo/", FMT),
    ("foo//bar", FMT),
    (" busybox", FMT),
    ("busybox\n", FMT),
    ("busybóx", FMT),
    ("foo___bar", FMT),
    ("foo..bar", FMT),
    ("foo._bar", FMT),
    ("-foo", FMT),
    ("foo-", FMT),
    ("busybox:-x", FMT),
    ("busybox:.x", FMT),
    ("busybox:" + "t" * 129, FMT),
    ("busybox:a/b", FMT),
    ("busybox@sha256:abc", FMT),
    ("busybox@" + D + ":x", FMT),
    ("busybox@@" + D, FMT),
    ("[::1]:abc/foo", FMT),
    ("[fe80::1%eth0]:5000/foo", FMT),
    ("-domain.com/foo", FMT),
    ("foo_bar.com/x", FMT),
    ("example.com/" + "a" * 256, TOO_LONG),
    ("a" * 248, TOO_LONG),
    (HEX64, f"invalid repository name ({HEX64}), cannot specify 64-byte hexadecimal strings"),
    ("busybox@sha256:" + "a" * 63, "invalid checksum digest length"),
    ("busybox@sha256:" + "a" * 65, "invalid checksum digest length"),
    ("busybox@sha512:" + "a" * 64, "invalid checksum digest length"),
    ("busybox@sha256:" + HEX64.upper(), "invalid checksum digest format"),
    ("busybox:1@SHA256:" + HEX64, "invalid checksum digest format"),
    ("busybox@md5:" + "a" * 32, "unsupported digest algorithm"),
    ("busybox@SHA256:" + HEX64, LOWER.format("library/busybox@SHA256")),
]


@pytest.mark.parametrize(("s", "domain", "path", "tag", "digest", "familiar"), VALID)
def test_parse_valid(
    s: str, domain: str, path: str, tag: str | None, digest: str | None, familiar: str
) -> None:
    ref = parse_reference(s)
    assert ref == Reference(domain, path, tag, digest)
    assert ref.familiar_string() == familiar
    assert ref.name == f"{domain}/{path}"
    assert str(ref) == ref.string()
    assert parse_reference(ref.string()) == ref
    assert parse_reference(ref.familiar_string()) == ref


@pytest.mark.parametrize(("s", "message"), INVALID)
def test_parse_invalid(s: str, message: str) -> None:
    with pytest.raises(InvalidArgument) as exc:
        parse_reference(s)
    assert str(exc.value) == message
    assert exc.value.http_status == 400


@pytest.mark.parametrize(
    ("s", "full", "familiar_name"),
    [
        ("busybox", "docker.io/library/busybox:latest", "busybox"),
        ("foo/bar:1", "docker.io/foo/bar:1", "foo/bar"),
        ("localhost:5000/x", "localhost:5000/x:latest", "localhost:5000/x"),
        ("docker.io/library/a/b", "docker.io/library/a/b:latest", "library/a/b"),
        ("ghcr.io/o/r@" + D, "ghcr.io/o/r@" + D, "ghcr.io/o/r"),
    ],
)
def test_full_and_familiar_forms(s: str, full: str, familiar_name: str) -> None:
    ref = parse_reference(s)
    assert ref.string() == full
    assert ref.familiar_name == familiar_name


def test_default_tag_only_for_bare_names() -> None:
    assert parse_reference("busybox", default_tag=False) == Reference(
        "docker.io", "library/busybox"
    )
    assert parse_reference("busybox", default_tag=False).is_name_only
    assert parse_reference("busybox@" + D).tag is None


@pytest.mark.parametrize(
    ("s", "host", "repo"),
    [
        ("busybox", "registry-1.docker.io", "library/busybox"),
        ("index.docker.io/foo/bar", "registry-1.docker.io", "foo/bar"),
        ("localhost:5000/a/b", "localhost:5000", "a/b"),
        ("[::1]:5000/foo", "[::1]:5000", "foo"),
        ("quay.io/coreos/etcd:v3", "quay.io", "coreos/etcd"),
    ],
)
def test_registry_host_and_repository(s: str, host: str, repo: str) -> None:
    ref = parse_reference(s)
    assert ref.registry_host == host
    assert ref.repository_for_registry == repo


def test_with_tag_validates_and_keeps_digest() -> None:
    ref = parse_reference("busybox@" + D)
    tagged = ref.with_tag("v1")
    assert tagged.string() == "docker.io/library/busybox:v1@" + D
    assert parse_reference("busybox").with_tag("1.0").familiar_string() == "busybox:1.0"
    for bad in ("", "-x", ".x", "a/b", "t" * 129, "é"):
        with pytest.raises(InvalidArgument, match=r"^invalid tag format$"):
            ref.with_tag(bad)


def test_with_digest_and_trimmed() -> None:
    ref = parse_reference("busybox:1")
    assert ref.with_digest(D).string() == "docker.io/library/busybox:1@" + D
    assert ref.with_digest(D).trimmed() == Reference("docker.io", "library/busybox")
    with pytest.raises(InvalidArgument, match=r"^invalid digest format$"):
        ref.with_digest("sha256:abc")
    with pytest.raises(InvalidArgument, match=r"^invalid checksum digest length$"):
        ref.with_digest("sha256:" + "a" * 40)


def test_reference_is_frozen() -> None:
    ref = parse_reference("busybox")
    with pytest.raises(dataclasses.FrozenInstanceError):
        ref.tag = "x"  # type: ignore[misc]
    assert len({ref, parse_reference("docker.io/library/busybox:latest")}) == 1


@pytest.mark.parametrize(
    ("s", "expected"),
    [
        ("busybox", "docker.io/library/busybox:latest"),
        ("busybox:1", "docker.io/library/busybox:1"),
        ("busybox@" + D, "docker.io/library/busybox@" + D),
        ("busybox:1@" + D, "docker.io/library/busybox@" + D),
    ],
)
def test_parse_docker_ref_keeps_digest_over_tag(s: str, expected: str) -> None:
    assert parse_docker_ref(s).string() == expected


@pytest.mark.parametrize(
    ("s", "expected"),
    [
        ("foo", "docker.io/library/foo:latest"),
        ("foo:v1", "docker.io/library/foo:v1"),
        ("localhost:5000/foo", "localhost:5000/foo:latest"),
    ],
)
def test_parse_tag_argument(s: str, expected: str) -> None:
    assert parse_tag_argument(s).string() == expected


@pytest.mark.parametrize(
    ("s", "message"),
    [
        ("foo@" + D, "refusing to create a tag with a digest reference"),
        ("foo:v1@" + D, "refusing to create a tag with a digest reference"),
        (
            "Foo",
            'error parsing reference: "Foo" is not a valid repository/tag: '
            "invalid reference format: repository name (library/Foo) must be lowercase",
        ),
        (
            "foo:",
            'error parsing reference: "foo:" is not a valid repository/tag: '
            "invalid reference format",
        ),
        (
            'a"b\n',
            'error parsing reference: "a\\"b\\n" is not a valid repository/tag: '
            "invalid reference format",
        ),
    ],
)
def test_parse_tag_argument_errors(s: str, message: str) -> None:
    with pytest.raises(InvalidArgument) as exc:
        parse_tag_argument(s)
    assert str(exc.value) == message


@pytest.mark.parametrize(
    ("s", "expected"),
    [
        ("foo", ("foo", None)),
        ("foo:bar", ("foo", "bar")),
        ("foo/bar:v1", ("foo/bar", "v1")),
        ("localhost:5000/foo", ("localhost:5000/foo", None)),
        ("localhost:5000/foo:bar", ("localhost:5000/foo", "bar")),
        ("[::1]:5000/foo", ("[::1]:5000/foo", None)),
        ("a:b:c", ("a:b", "c")),
        ("foo:", ("foo", "")),
        ("foo@" + D, ("foo", D)),
    ],
)
def test_parse_repository_tag(s: str, expected: tuple[str, str | None]) -> None:
    assert parse_repository_tag(s) == expected


def test_repo_tag_reference() -> None:
    assert repo_tag_reference("foo").string() == "docker.io/library/foo:latest"
    assert repo_tag_reference("foo", "v1").string() == "docker.io/library/foo:v1"
    assert repo_tag_reference("foo:v0", "v1").string() == "docker.io/library/foo:v1"
    assert repo_tag_reference("foo:v0").string() == "docker.io/library/foo:v0"
    with pytest.raises(InvalidArgument, match=r"^cannot import digest reference$"):
        repo_tag_reference("foo@" + D)
    with pytest.raises(InvalidArgument, match=r"^invalid tag format$"):
        repo_tag_reference("foo", "-bad")
