"""RegistryClient against the stub registry: auth (basic, bearer, refresh, expiry), typed
errors, redirects without credentials, retries, digest checks and connection reuse."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from dockyard.digest import Digest
from dockyard.errors import DigestMismatch, NotFound
from dockyard.reference import parse_reference
from dockyard.registry.credentials import Credentials
from dockyard.registry.errors import Denied, RegistryUnavailable, Unauthorized
from dockyard.registry.pull import pull
from dockyard.store.content import ContentStore
from tests.unit.test_registry_stub import Stub, client_for, make_image, running_stub


@pytest.fixture
def stub() -> Iterator[Stub]:
    with running_stub() as st:
        yield st


@pytest.fixture
def storage(stub: Stub) -> Iterator[Stub]:
    """A second server (another host:port) the registry redirects blob downloads to."""
    with running_stub(blobs=stub.blobs) as st:
        stub.redirect_to = st.base
        yield st


def test_bearer_token_flow_and_refresh(stub: Stub, tmp_path: Path) -> None:
    img = make_image(3, 1000)
    stub.add("app", "v1", img)
    stub.auth = "bearer"
    client = client_for(stub)
    store = ContentStore(tmp_path / "cs")
    pull(client, parse_reference("127.0.0.1:1/app:v1"), store)
    assert len(stub.token_requests) == 1  # one token, cached for every request of the scope
    assert "scope=repository%3Aapp%3Apull" in stub.token_requests[0]
    assert "service=stub" in stub.token_requests[0]
    stub.tokens.clear()  # revoked: the next request gets 401, the client fetches a new token
    assert client.get_manifest("app", "v1").digest == img.digest
    assert len(stub.token_requests) == 2


def test_basic_auth_and_errors(stub: Stub) -> None:
    img = make_image(1, 100)
    stub.add("app", "v1", img)
    stub.auth = "basic"
    ok = client_for(stub, Credentials("u", "p"))
    assert ok.get_manifest("app", "v1").digest == img.digest
    with pytest.raises(Unauthorized, match=r"^unauthorized: authentication required$"):
        client_for(stub).get_manifest("app", "v1")
    with pytest.raises(Unauthorized):
        client_for(stub, Credentials("u", "wrong")).get_manifest("app", "v1")
    with pytest.raises(NotFound, match="manifest_unknown: manifest unknown"):
        ok.get_manifest("app", "nope")
    stub.auth = "deny"
    with pytest.raises(Denied, match="denied: requested access to the resource is denied"):
        client_for(stub).get_manifest("app", "v1")


def test_redirect_drops_authorization(stub: Stub, storage: Stub, tmp_path: Path) -> None:
    img = make_image(2, 1000)
    stub.add("app", "v1", img)
    stub.auth = "bearer"
    storage.redirect_to = None
    pull(client_for(stub), parse_reference("127.0.0.1:1/app:v1"), ContentStore(tmp_path / "cs"))
    assert len(storage.log) == 3  # config + 2 layers, fetched from storage
    assert all("Authorization" not in h for _, _, h in storage.log)


def test_retries_on_503_and_429(stub: Stub, tmp_path: Path) -> None:
    img = make_image(1, 1000)
    stub.add("app", "v1", img)
    stub.fail_next = [503, 429]
    store = ContentStore(tmp_path / "cs")
    pull(client_for(stub), parse_reference("127.0.0.1:1/app:v1"), store)
    assert store.has(img.layers[0].digest)
    stub.fail_next = [503] * 20
    with pytest.raises(RegistryUnavailable):
        client_for(stub).open_blob("app", img.layers[0].digest)


def test_tag_digest_mismatch_refused(stub: Stub) -> None:
    stub.add("app", "v1", make_image(1, 100))
    stub.tag_digest_lie = True
    with pytest.raises(DigestMismatch, match="does not match"):
        client_for(stub).get_manifest("app", "v1")


def test_keep_alive_reuses_connections(stub: Stub, tmp_path: Path) -> None:
    img = make_image(6, 1000)
    stub.add("app", "v1", img)
    client = client_for(stub)
    pull(
        client, parse_reference("127.0.0.1:1/app:v1"), ContentStore(tmp_path / "cs"), max_workers=1
    )
    idle = client.transport._idle  # one connection did all the requests
    assert sum(len(v) for v in idle.values()) == 1
    conn = next(iter(idle.values()))[0]
    assert client.blob_exists("app", img.layers[0].digest)  # HEAD keeps it alive too
    assert client.head_manifest("app", "v1") is not None
    assert not client.blob_exists("app", Digest.of(b"missing"))
    assert next(iter(idle.values())) == [conn]


def test_token_refetched_after_expiry(stub: Stub, monkeypatch: pytest.MonkeyPatch) -> None:
    import dockyard.registry.auth as auth_mod

    stub.add("app", "v1", make_image(1, 100))
    stub.auth = "bearer"
    client = client_for(stub)
    client.get_manifest("app", "v1")
    client.get_manifest("app", "v1")
    assert len(stub.token_requests) == 1
    now = auth_mod._clock()
    monkeypatch.setattr(auth_mod, "_clock", lambda: now + 3600)  # past expires_in
    client.get_manifest("app", "v1")
    assert len(stub.token_requests) == 2
