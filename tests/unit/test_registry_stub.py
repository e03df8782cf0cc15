"""An in-process stub registry on 127.0.0.1 and a tiny-image builder, for the registry tests.

The stub serves manifests and blobs from memory and can misbehave on demand: demand a bearer
token (and revoke it), redirect blobs to a second "storage" server, fail with 503/429, serve a
tampered blob, cut a body off halfway, or ignore Range. `running_stub()` starts one and always
stops it.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import random
import secrets
import tarfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from dockyard.digest import Digest
from dockyard.oci import mediatypes
from dockyard.oci.types import Descriptor
from dockyard.registry.client import RegistryClient
from dockyard.registry.credentials import Credentials
from dockyard.store.content import ContentStore


# --- a tiny image ------------------------------------------------------------------------
def layer_bytes(name: str, size: int) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tf:
        data = random.Random(name).randbytes(size)  # incompressible: gzip keeps the size
        info = tarfile.TarInfo(name)
        info.size = size
        tf.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), compresslevel=1, mtime=0)


@dataclass
class Image:
    blobs: dict[str, bytes]
    manifest: bytes
    config: bytes
    layers: list[Descriptor]

    @property
    def digest(self) -> Digest:
        return Digest.of(self.manifest)


def make_image(n_layers: int = 2, size: int = 300_000, arch: str = "amd64") -> Image:
    blobs: dict[str, bytes] = {}
    layers, diff_ids = [], []
    for i in range(n_layers):
        b = layer_bytes(f"{arch}-file{i}", size)
        d = Digest.of(b)
        blobs[d] = b
        layers.append(Descriptor(mediatypes.OCI_LAYER_GZIP, d, len(b)))
        diff_ids.append(str(Digest.of(gzip.decompress(b))))
    config = json.dumps(
        {
            "architecture": arch,
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "config": {"Cmd": ["/bin/sh"]},
        }
    ).encode()
    blobs[Digest.of(config)] = config
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": mediatypes.OCI_MANIFEST,
            "config": {
                "mediaType": mediatypes.OCI_CONFIG,
                "digest": Digest.of(config),
                "size": len(config),
            },
            "layers": [d.to_dict() for d in layers],
        }
    ).encode()
    return Image(blobs, manifest, config, layers)


# --- the stub ------------------------------------------------------------------------------
@dataclass
class Stub:
    manifests: dict[tuple[str, str], tuple[str, bytes]] = field(default_factory=dict)
    blobs: dict[str, bytes] = field(default_factory=dict)
    log: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    auth: str | None = None  # None, "bearer", "basic", "deny"
    tokens: set[str] = field(default_factory=set)
    token_requests: list[str] = field(default_factory=list)
    tamper: set[str] = field(default_factory=set)
    cut_once: dict[str, int] = field(default_factory=dict)
    ignore_range: bool = False
    fail_next: list[int] = field(default_factory=list)
    redirect_to: str | None = None
    tag_digest_lie: bool = False
    base: str = ""

    def add(self, repo: str, tag: str, img: Image) -> None:
        self.blobs.update(img.blobs)
        self.manifests[(repo, tag)] = (mediatypes.OCI_MANIFEST, img.manifest)
        self.manifests[(repo, img.digest)] = (mediatypes.OCI_MANIFEST, img.manifest)


def _handler(stub: Stub) -> type[BaseHTTPRequestHandler]:
    class H(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a: Any) -> None:
            pass

        def _send(
            self, status: int, body: bytes = b"", headers: dict[str, str] | None = None
        ) -> None:
            self.send_response(status)
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _err(
            self, status: int, code: str, msg: str, headers: dict[str, str] | None = None
        ) -> None:
            body = json.dumps({"errors": [{"code": code, "message": msg}]}).encode()
            self._send(status, body, {"Content-Type": "application/json", **(headers or {})})

        def _authorized(self) -> bool:
            h = self.headers.get("Authorization", "")
            if stub.auth is None:
                return True
            if stub.auth == "deny":
                self._err(403, "DENIED", "requested access to the resource is denied")
                return False
            if stub.auth == "basic":
                if h == "Basic dTpw":  # u:p
                    return True
                ch = 'Basic realm="stub"'
            else:
                if h.startswith("Bearer ") and h[7:] in stub.tokens:
                    return True
                ch = f'Bearer realm="{stub.base}/token",service="stub"'
                parts = self.path.split("/")
                if len(parts) > 3:
                    ch += f',scope="repository:{parts[2]}:pull"'
            self._err(401, "UNAUTHORIZED", "authentication required", {"WWW-Authenticate": ch})
            return False

        def do_HEAD(self) -> None:
            self.do_GET()

        def do_GET(self) -> None:
            stub.log.append((self.command, self.path, dict(self.headers)))
            if self.path.startswith("/token"):
                stub.token_requests.append(self.path)
                tok = secrets.token_hex(8)
                stub.tokens.add(tok)
                self._send(200, json.dumps({"token": tok, "expires_in": 300}).encode())
                return
            if not self._authorized():
                return
            if self.path == "/v2/":
                self._send(200, b"{}")
                return
            _, _, repo, kind, ref = self.path.split("/", 4)
            if kind == "manifests":
                if (repo, ref) not in stub.manifests:
                    self._err(404, "MANIFEST_UNKNOWN", "manifest unknown")
                    return
                mt, data = stub.manifests[(repo, ref)]
                dg = Digest.of(b"lie" if stub.tag_digest_lie else data)
                self._send(200, data, {"Content-Type": mt, "Docker-Content-Digest": dg})
                return
            if stub.fail_next:
                status = stub.fail_next.pop(0)
                self._send(status, b"", {"Retry-After": "0"})
                return
            if stub.redirect_to and not self.headers.get("X-Storage"):
                self._send(307, b"", {"Location": f"{stub.redirect_to}/v2/{repo}/blobs/{ref}"})
                return
            self._blob(ref)

        def _blob(self, ref: str) -> None:
            if ref not in stub.blobs:
                self._err(404, "BLOB_UNKNOWN", "blob unknown to registry")
                return
            data = stub.blobs[ref]
            if ref in stub.tamper:
                data = data[:-1] + bytes([data[-1] ^ 1])
            rng = self.headers.get("Range")
            start = int(rng[6:].split("-")[0]) if rng and not stub.ignore_range else 0
            body = data[start:]
            self.send_response(206 if start else 200)
            if start:
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command == "HEAD":
                return
            cut = stub.cut_once.pop(ref, None)
            if cut is not None:
                self.wfile.write(body[:cut])
                self.wfile.flush()
                self.close_connection = True
                return
            self.wfile.write(body)

    return H


@contextlib.contextmanager
def _serve(stub: Stub) -> Iterator[tuple[ThreadingHTTPServer, str]]:
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _handler(stub))
    srv.daemon_threads = True
    t = threading.Thread(target=srv.serve_forever, args=(0.02,), daemon=True)
    t.start()
    try:
        yield srv, f"127.0.0.1:{srv.server_address[1]}"
    finally:
        srv.shutdown()
        srv.server_close()
        t.join()


@contextlib.contextmanager
def running_stub(**kwargs: Any) -> Iterator[Stub]:
    st = Stub(**kwargs)
    with _serve(st) as (_, addr):
        st.base = f"http://{addr}"
        yield st


def client_for(stub: Stub, creds: Credentials | None = None) -> RegistryClient:
    return RegistryClient(stub.base.removeprefix("http://"), credentials=creds, backoff=0.01)


def blob_files(store: ContentStore) -> list[Path]:
    base = store.root / "blobs"
    return sorted(base.rglob("*")) if base.exists() else []


def test_stub_answers_v2() -> None:
    with running_stub() as st:
        client = client_for(st)
        client.ping()
        assert st.log[0][1] == "/v2/"
        client.close()
