"""Challenge parsing, scope merging, error mapping and platform selection of the registry client."""

from __future__ import annotations

import json

import pytest

from dockyard.digest import Digest
from dockyard.errors import DockyardError, NotFound
from dockyard.oci import mediatypes
from dockyard.oci.types import Descriptor, Index, Platform
from dockyard.registry.auth import merge_scopes, parse_challenges, repository_scope
from dockyard.registry.client import clients_for, is_loopback, registry_host
from dockyard.registry.errors import (
    Denied,
    RegistryInvalid,
    RegistryNotFound,
    RegistryUnavailable,
    Unauthorized,
    error_from_response,
)
from dockyard.registry.platforms import normalize, select_manifest


def test_bearer_challenge() -> None:
    h = (
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
        'scope="repository:library/busybox:pull"'
    )
    [c] = parse_challenges(h)
    assert c.scheme == "bearer"
    assert c.realm == "https://auth.docker.io/token"
    assert c.params["service"] == "registry.docker.io"
    assert c.params["scope"] == "repository:library/busybox:pull"


def test_several_challenges_quoted_commas_and_escapes() -> None:
    h = 'Basic realm="a, b", Bearer realm="https://x/t",scope="repository:a:pull,push", error=x'
    cs = parse_challenges(h)
    assert [c.scheme for c in cs] == ["basic", "bearer"]
    assert cs[0].realm == "a, b"
    assert cs[1].params["scope"] == "repository:a:pull,push"
    assert cs[1].params["error"] == "x"
    [c] = parse_challenges(r'Basic realm="say \"hi\""')
    assert c.realm == 'say "hi"'


def test_token68_and_empty() -> None:
    assert parse_challenges("") == []
    [c] = parse_challenges("Basic")
    assert c.scheme == "basic" and c.params == {}


def test_scopes_merge() -> None:
    assert repository_scope("a/b", ("pull", "push")) == "repository:a/b:pull,push"
    merged = merge_scopes(["repository:a:push", "repository:a:pull", "repository:b:pull"])
    assert merged == ("repository:a:pull,push", "repository:b:pull")


@pytest.mark.parametrize(
    ("status", "cls", "message"),
    [
        (401, Unauthorized, "unauthorized: authentication required"),
        (403, Denied, "denied: requested access to the resource is denied"),
        (404, RegistryNotFound, "not found"),
        (400, RegistryInvalid, "unexpected HTTP status 400"),
        (503, RegistryUnavailable, "unexpected HTTP status 503"),
    ],
)
def test_error_defaults(status: int, cls: type[Exception], message: str) -> None:
    e = error_from_response(status, b"<html>")
    assert isinstance(e, cls) and isinstance(e, DockyardError)
    assert str(e) == message
    assert e.status == status


def test_error_json_body() -> None:
    body = json.dumps(
        {"errors": [{"code": "MANIFEST_UNKNOWN", "message": "manifest unknown", "detail": {}}]}
    ).encode()
    e = error_from_response(404, body, "x")
    assert isinstance(e, RegistryNotFound) and isinstance(e, NotFound)
    assert str(e) == "manifest_unknown: manifest unknown"
    assert e.codes == ("MANIFEST_UNKNOWN",)
    body = b'{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}'
    assert str(error_from_response(401, body)) == "unauthorized: authentication required"
    assert error_from_response(401, body).http_status == 401
    assert str(error_from_response(404, b"", "manifest for r:t")) == "manifest for r:t: not found"


def test_hosts() -> None:
    assert registry_host("docker.io") == "registry-1.docker.io"
    assert registry_host("index.docker.io") == "registry-1.docker.io"
    assert registry_host("quay.io") == "quay.io"
    assert is_loopback("localhost:5000") and is_loopback("127.0.0.1:1") and is_loopback("[::1]:5")
    assert not is_loopback("example.com:5000")
    hub = clients_for("docker.io", mirrors=["https://mirror.example", "http://m2:5000"])
    assert [(c.scheme, c.host) for c in hub] == [
        ("https", "mirror.example"),
        ("http", "m2:5000"),
        ("https", "registry-1.docker.io"),
    ]
    other = clients_for(
        "reg.example:5000", mirrors=["https://m"], insecure_registries=["reg.example:5000"]
    )
    assert [(c.scheme, c.host) for c in other] == [("http", "reg.example:5000")]
    assert clients_for("localhost:5000")[0].base == "http://localhost:5000"


def _d(
    n: int, platform: Platform | None, mt: str = mediatypes.OCI_MANIFEST, **ann: str
) -> Descriptor:
    return Descriptor(mt, Digest.of(bytes([n])), 10, annotations=ann or None, platform=platform)


def test_normalize() -> None:
    assert normalize(Platform("linux", "aarch64")) == Platform("linux", "arm64", "v8")
    assert normalize(Platform("linux", "arm64", "8")) == Platform("linux", "arm64", "v8")
    assert normalize(Platform("linux", "x86_64")) == Platform("linux", "amd64")
    assert normalize(Platform("linux", "armhf")) == Platform("linux", "arm", "v7")
    assert normalize(Platform("Linux", "arm")) == Platform("linux", "arm", "v7")


def test_select_manifest() -> None:
    amd = _d(1, Platform("linux", "amd64"))
    arm64 = _d(2, Platform("linux", "arm64"))  # no variant: means v8
    armv6 = _d(3, Platform("linux", "arm", "v6"))
    att = _d(
        4, Platform("unknown", "unknown"), **{"vnd.docker.reference.type": "attestation-manifest"}
    )
    idx = Index((att, armv6, arm64, amd))
    assert select_manifest(idx, Platform("linux", "amd64")) == amd
    assert select_manifest(idx, Platform("linux", "arm64", "v8")) == arm64
    assert select_manifest(idx, Platform("linux", "aarch64")) == arm64
    assert select_manifest(idx, Platform("linux", "arm", "v7")) == armv6  # v7 runs v6
    with pytest.raises(NotFound, match="no matching manifest for linux/arm/v5"):
        select_manifest(idx, Platform("linux", "arm", "v5"))
    with pytest.raises(NotFound, match="linux/s390x"):
        select_manifest(idx, Platform("linux", "s390x"))
    lone = _d(5, None)
    assert select_manifest(Index((lone,)), Platform("linux", "amd64")) == lone
