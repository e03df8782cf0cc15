"""The registry client against a REAL registry (Debian's docker-registry, distribution 2.8)
and against skopeo as a peer: push/pull round trips, basic auth, a bearer-token front,
chunked uploads, cross-repository mounts, Docker schema 2 and OCI, multi-platform indexes.

Every registry is started by a fixture on 127.0.0.1 with its storage in tmp_path and is
stopped (terminated, then killed) even when the test fails.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import secrets
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from dockyard.digest import Digest
from dockyard.errors import NotFound
from dockyard.oci import mediatypes
from dockyard.oci.types import Platform
from dockyard.reference import parse_reference
from dockyard.registry.client import RegistryClient
from dockyard.registry.credentials import Credentials, CredentialStore
from dockyard.registry.errors import Unauthorized
from dockyard.registry.progress import ProgressEvent
from dockyard.registry.pull import pull
from dockyard.registry.push import push
from dockyard.store.content import ContentStore
from tests.conftest import require_tool
from tests.unit.test_registry_stub import Image, make_image

pytestmark = pytest.mark.peer  # docker-registry (and skopeo) are peers


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def run_registry(root: Path, htpasswd: Path | None = None) -> Iterator[str]:
    """Start docker-registry on a free 127.0.0.1 port; yield "127.0.0.1:PORT"; always stop it."""
    exe = require_tool("docker-registry")
    root.mkdir(parents=True, exist_ok=True)
    port = free_port()
    auth = ""
    if htpasswd is not None:
        auth = f"auth:\n  htpasswd:\n    realm: basic-realm\n    path: {htpasswd}\n"
    cfg = root / "config.yml"
    cfg.write_text(
        "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n"
        f"storage:\n  filesystem:\n    rootdirectory: {root / 'data'}\n  delete:\n"
        f"    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n{auth}"
    )
    log = open(root / "registry.log", "wb")  # noqa: SIM115 - closed in finally
    proc = subprocess.Popen([exe, "serve", str(cfg)], stdout=log, stderr=log)
    try:
        _wait_listening(port, proc)
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _wait_listening(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"docker-registry exited with {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError("docker-registry did not start listening")


def store_image(store: ContentStore, img: Image) -> Digest:
    for b in img.blobs.values():
        store.put_bytes(b)
    return store.put_bytes(img.manifest)


# --- a bearer-token front for a real registry --------------------------------------------
class TokenFront:
    """`/token` issues opaque tokens (to user u:p only); `/v2/...` needs one and is proxied
    to the registry behind."""

    def __init__(self, backend: str) -> None:
        self.backend = backend
        self.tokens: dict[str, str] = {}
        self.token_requests: list[str] = []
        self.base = ""


def _front_handler(front: TokenFront) -> type[BaseHTTPRequestHandler]:
    class H(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a: Any) -> None:
            pass

        def _reply(self, status: int, body: bytes, headers: list[tuple[str, str]]) -> None:
            self.send_response(status)
            for k, v in headers:
                self.send_header(k, v)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _token(self) -> None:
            front.token_requests.append(self.path)
            if self.headers.get("Authorization") != "Basic dTpw":  # u:p
                body = b'{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}'
                self._reply(401, body, [("Content-Length", str(len(body)))])
                return
            tok = secrets.token_hex(8)
            front.tokens[tok] = self.path
            body = json.dumps({"access_token": tok, "expires_in": 300}).encode()
            self._reply(200, body, [("Content-Length", str(len(body)))])

        def _proxy(self) -> None:
            if self.path.startswith("/token"):
                self._token()
                return
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            auth = self.headers.get("Authorization", "")
            if not (auth.startswith("Bearer ") and auth[7:] in front.tokens):
                ch = f'Bearer realm="{front.base}/token",service="front"'
                msg = b'{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}'
                self._reply(401, msg, [("WWW-Authenticate", ch), ("Content-Length", str(len(msg)))])
                return
            conn = http.client.HTTPConnection(front.backend, timeout=30)
            try:
                hdrs = {k: v for k, v in self.headers.items() if k.lower() != "authorization"}
                conn.request(self.command, self.path, body=body, headers=hdrs)
                resp = conn.getresponse()
                data = resp.read()
                skip = {"connection", "transfer-encoding", "keep-alive", "content-length"}
                headers = [(k, v) for k, v in resp.getheaders() if k.lower() not in skip]
                length_hdr = resp.getheader("Content-Length") if self.command == "HEAD" else None
                headers.append(("Content-Length", length_hdr or str(len(data))))
                self._reply(resp.status, data, headers)
            finally:
                conn.close()

        do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _proxy

    return H


@contextlib.contextmanager
def run_token_front(backend: str) -> Iterator[TokenFront]:
    front = TokenFront(backend)
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _front_handler(front))
    srv.daemon_threads = True
    front.base = f"http://127.0.0.1:{srv.server_address[1]}"
    t = threading.Thread(target=srv.serve_forever, args=(0.02,), daemon=True)
    t.start()
    try:
        yield front
    finally:
        srv.shutdown()
        srv.server_close()
        t.join()


# --- fixtures -----------------------------------------------------------------------------
@pytest.fixture
def registry(tmp_path: Path) -> Iterator[str]:
    with run_registry(tmp_path / "registry") as addr:
        yield addr


@pytest.fixture
def auth_registry(tmp_path: Path) -> Iterator[str]:
    bcrypt = pytest.importorskip("bcrypt")
    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text("u:" + bcrypt.hashpw(b"p", bcrypt.gensalt(rounds=4)).decode() + "\n")
    with run_registry(tmp_path / "registry-auth", htpasswd) as addr:
        yield addr


# --- our client against the real registry ------------------------------------------------
def test_push_pull_round_trip(registry: str, tmp_path: Path) -> None:
    img = make_image(3, 200_000)
    src = ContentStore(tmp_path / "src")
    mdigest = store_image(src, img)
    client = RegistryClient(registry)
    events: list[ProgressEvent] = []
    ref = parse_reference(f"{registry}/team/app:v1")
    assert push(client, ref, src, mdigest, progress=events.append, chunk_size=64 << 10) == mdigest
    assert {e.status for e in events} >= {"Preparing", "Pushing", "Pushed"}
    dst = ContentStore(tmp_path / "dst")
    r = pull(client, ref, dst)
    assert r.manifest_digest == mdigest
    for d, b in img.blobs.items():
        assert dst.read_bytes(d) == b
    by_digest = pull(
        RegistryClient(registry),
        parse_reference(f"{registry}/team/app@{mdigest}"),
        ContentStore(tmp_path / "dst2"),
    )
    assert by_digest.config_digest == r.config_digest
    # pushing again: every blob is already there
    events.clear()
    push(client, ref, src, mdigest, progress=events.append)
    assert {e.status for e in events} == {"Preparing", "Layer already exists"}
    # cross-repository mount within the registry
    events.clear()
    ref2 = parse_reference(f"{registry}/other/app:v1")
    mounts = {d.digest: "team/app" for d in img.layers} | {r.config_digest: "team/app"}
    push(client, ref2, src, mdigest, progress=events.append, mount_from=mounts)
    assert [e.status for e in events if e.status != "Preparing"] == ["Mounted from"] * 3
    assert client.head_manifest("other/app", "v1") is not None
    # a mount the registry cannot do (source lacks the blobs) falls back to an upload
    events.clear()
    ref3 = parse_reference(f"{registry}/third/app:v1")
    push(
        client,
        ref3,
        src,
        mdigest,
        progress=events.append,
        mount_from={d: "empty/repo" for d in mounts},
    )
    assert [e.status for e in events if e.status not in ("Preparing", "Pushing")] == ["Pushed"] * 3
    assert pull(client, ref3, ContentStore(tmp_path / "dst3")).manifest_digest == mdigest


def test_errors_from_real_registry(registry: str, tmp_path: Path) -> None:
    client = RegistryClient(registry)
    with pytest.raises(NotFound, match="manifest unknown"):
        pull(client, parse_reference(f"{registry}/nope:v1"), ContentStore(tmp_path / "s"))
    assert client.head_manifest("nope", "v1") is None
    assert client.blob_exists("nope", Digest.of(b"x")) is False


def test_basic_auth_registry(
    auth_registry: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker"))
    creds = CredentialStore()
    with pytest.raises(Unauthorized, match="unauthorized"):
        creds.login(auth_registry, "u", "wrong")
    assert creds.get(auth_registry) is None
    creds.login(auth_registry, "u", "p")
    assert creds.get(auth_registry) == Credentials("u", "p")
    img = make_image(2, 50_000)
    src = ContentStore(tmp_path / "src")
    mdigest = store_image(src, img)
    ref = parse_reference(f"{auth_registry}/app:v1")
    push(RegistryClient(auth_registry, credentials=creds), ref, src, mdigest)
    r = pull(RegistryClient(auth_registry, credentials=creds), ref, ContentStore(tmp_path / "d"))
    assert r.manifest_digest == mdigest
    with pytest.raises(Unauthorized, match=r"^unauthorized: authentication required$"):
        pull(RegistryClient(auth_registry), ref, ContentStore(tmp_path / "anon"))


def test_bearer_token_front(registry: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker"))
    with run_token_front(registry) as front:
        host = front.base.removeprefix("http://")
        creds = CredentialStore()
        with pytest.raises(Unauthorized, match="incorrect username or password"):
            creds.login(host, "u", "bad")
        creds.login(host, "u", "p")
        img = make_image(2, 100_000)
        src = ContentStore(tmp_path / "src")
        mdigest = store_image(src, img)
        ref = parse_reference(f"{host}/app:v1")
        client = RegistryClient(host, credentials=creds)
        push(client, ref, src, mdigest, chunk_size=32 << 10)
        r = pull(client, ref, ContentStore(tmp_path / "dst"))
        assert r.manifest_digest == mdigest
        scopes = [p for p in front.token_requests if "scope=" in p]
        assert any("repository%3Aapp%3Apull%2Cpush" in p for p in scopes)
        # a handful of tokens for dozens of requests: they are cached per scope
        assert len(front.token_requests) <= 4
        with pytest.raises(Unauthorized):
            pull(RegistryClient(host), ref, ContentStore(tmp_path / "anon"))


# --- skopeo as a peer --------------------------------------------------------------------
def write_oci_layout(dest: Path, images: dict[str, Image], index: bytes | None = None) -> None:
    """An OCI image layout with `images` tagged by name, or one tag "multi" for `index`."""
    blobs = dest / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    (dest / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    entries = []
    for tag, img in images.items():
        for d, b in [*img.blobs.items(), (img.digest, img.manifest)]:
            (blobs / Digest(d).hex).write_bytes(b)
        if index is None:
            entries.append(
                {
                    "mediaType": mediatypes.OCI_MANIFEST,
                    "digest": img.digest,
                    "size": len(img.manifest),
                    "annotations": {"org.opencontainers.image.ref.name": tag},
                }
            )
    if index is not None:
        (blobs / Digest.of(index).hex).write_bytes(index)
        entries.append(
            {
                "mediaType": mediatypes.OCI_INDEX,
                "digest": Digest.of(index),
                "size": len(index),
                "annotations": {"org.opencontainers.image.ref.name": "multi"},
            }
        )
    (dest / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": entries}))


def skopeo_command() -> list[str]:
    """skopeo, run so that it leaves nothing behind: as root it records blob locations in
    /var/lib/containers/cache, so it runs in a private mount namespace with /var/lib on tmpfs."""
    exe = require_tool("skopeo")
    unshare = shutil.which("unshare")
    if os.geteuid() != 0 or unshare is None:
        return [exe]
    script = 'mount -t tmpfs none /var/lib && exec "$@"'
    return [unshare, "-m", "--propagation", "private", "sh", "-c", script, "sh", exe]


def skopeo(*args: str) -> str:
    cmd = [*skopeo_command(), *args]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert p.returncode == 0, p.stderr
    return p.stdout


@pytest.mark.peer
@pytest.mark.parametrize("fmt", ["oci", "v2s2"])
def test_pull_what_skopeo_pushed(registry: str, tmp_path: Path, fmt: str) -> None:
    img = make_image(2, 100_000)
    write_oci_layout(tmp_path / "layout", {"v1": img})
    skopeo(
        "copy",
        "--dest-tls-verify=false",
        "--format",
        fmt,
        f"oci:{tmp_path / 'layout'}:v1",
        f"docker://{registry}/sk/{fmt}:v1",
    )
    store = ContentStore(tmp_path / "cs")
    r = pull(RegistryClient(registry), parse_reference(f"{registry}/sk/{fmt}:v1"), store)
    want = mediatypes.DOCKER_MANIFEST if fmt == "v2s2" else mediatypes.OCI_MANIFEST
    assert r.manifest.media_type == want
    assert [store.read_bytes(d.digest) for d in r.manifest.layers] == [
        img.blobs[d.digest] for d in img.layers
    ]


@pytest.mark.peer
def test_pull_multi_platform_index_from_skopeo(registry: str, tmp_path: Path) -> None:
    amd, arm = make_image(1, 10_000, "amd64"), make_image(1, 10_000, "arm64")
    index = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": mediatypes.OCI_INDEX,
            "manifests": [
                {
                    "mediaType": mediatypes.OCI_MANIFEST,
                    "digest": amd.digest,
                    "size": len(amd.manifest),
                    "platform": {"os": "linux", "architecture": "amd64"},
                },
                {
                    "mediaType": mediatypes.OCI_MANIFEST,
                    "digest": arm.digest,
                    "size": len(arm.manifest),
                    "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"},
                },
            ],
        }
    ).encode()
    write_oci_layout(tmp_path / "layout", {"a": amd, "b": arm}, index)
    skopeo(
        "copy",
        "--all",
        "--dest-tls-verify=false",
        f"oci:{tmp_path / 'layout'}:multi",
        f"docker://{registry}/sk/multi:v1",
    )
    store = ContentStore(tmp_path / "cs")
    ref = parse_reference(f"{registry}/sk/multi:v1")
    r = pull(RegistryClient(registry), ref, store, platform=Platform("linux", "arm64"))
    assert r.index_digest == Digest.of(index)
    assert r.manifest_digest == arm.digest and r.config.architecture == "arm64"
    r = pull(RegistryClient(registry), ref, store, platform=Platform("linux", "amd64"))
    assert r.manifest_digest == amd.digest
    # and push the whole index back to another repository; skopeo reads it
    push(
        RegistryClient(registry),
        parse_reference(f"{registry}/ours/multi:v2"),
        store,
        Digest.of(index),
    )
    raw = json.loads(
        skopeo("inspect", "--raw", "--tls-verify=false", f"docker://{registry}/ours/multi:v2")
    )
    assert raw["mediaType"] == mediatypes.OCI_INDEX and len(raw["manifests"]) == 2


@pytest.mark.peer
def test_skopeo_reads_what_we_pushed(registry: str, tmp_path: Path) -> None:
    img = make_image(2, 100_000)
    src = ContentStore(tmp_path / "src")
    mdigest = store_image(src, img)
    push(
        RegistryClient(registry),
        parse_reference(f"{registry}/ours/app:v1"),
        src,
        mdigest,
        chunk_size=64 << 10,
    )
    info = json.loads(skopeo("inspect", "--tls-verify=false", f"docker://{registry}/ours/app:v1"))
    assert info["Digest"] == mdigest
    assert info["Layers"] == [d.digest for d in img.layers]
    out = tmp_path / "copy"
    skopeo("copy", "--src-tls-verify=false", f"docker://{registry}/ours/app:v1", f"oci:{out}:v1")
    for d in img.layers:
        assert (out / "blobs" / "sha256" / d.digest.hex).read_bytes() == img.blobs[d.digest]
