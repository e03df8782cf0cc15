"""`dockyard push` / `pull` / `login` / `logout` / `manifest inspect` end to end against a REAL
registry (Debian's docker-registry on 127.0.0.1, started per test by the fixtures of
tests/compat/test_registry_distribution.py) and against the misbehaving stub registry.

Each test has its own state roots and its own DOCKER_CONFIG under tmp_path; registries and
subprocesses are stopped even when a test fails.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import io
import json
import os
import re
import signal
import socket
import subprocess
import tarfile
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from dockyard.digest import Digest
from dockyard.engine import Engine
from dockyard.image import distribution_push
from dockyard.image.distribution import pull_image
from dockyard.image.distribution_push import push_image
from dockyard.oci import mediatypes
from dockyard.oci.types import Descriptor
from dockyard.reference import parse_reference
from dockyard.registry.client import RegistryClient
from tests.cli import DOCKYARD, dy
from tests.compat.test_registry_distribution import run_registry
from tests.images import busybox_image
from tests.unit.test_registry_stub import make_image, running_stub

pytestmark = [pytest.mark.root, pytest.mark.peer]

SHORT = r"[0-9a-f]{12}"
OCI_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
DIGEST = r"sha256:[0-9a-f]{64}"


@pytest.fixture(autouse=True)
def docker_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "docker-config"
    monkeypatch.setenv("DOCKER_CONFIG", str(d))
    return d


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


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    with Engine.open(tmp_path / "src") as e:
        yield e


def _blobs(root: Path) -> set[str]:
    base = root / "content" / "blobs" / "sha256"
    return {p.name for p in base.iterdir()} if base.is_dir() else set()


def _ingests(root: Path) -> list[Path]:
    base = root / "content" / "ingest"
    return list(base.iterdir()) if base.is_dir() else []


def test_push_then_pull_gives_the_same_image(registry: str, engine: Engine, tmp_path: Path) -> None:
    src = busybox_image(engine, f"{registry}/team/bb:v1")
    r = dy(engine.root, "push", f"{registry}/team/bb:v1")
    lines = r.out.splitlines()
    assert lines[0] == f"The push refers to repository [{registry}/team/bb]"
    assert re.fullmatch(rf"{SHORT}: Preparing", lines[1])
    assert re.fullmatch(rf"{SHORT}: Pushed", lines[2])
    # Docker shows the layer's diff ID in push output
    assert lines[1].startswith(src.config.diff_ids[0].hex[:12])
    m = re.fullmatch(rf"v1: digest: ({DIGEST}) size: (\d+)", lines[-1])
    assert m, r.out
    pushed = m.group(1)
    info = json.loads(dy(engine.root, "inspect", f"{registry}/team/bb:v1").out)[0]
    assert info["Id"] == src.id  # the image ID did not change
    assert f"{registry}/team/bb@{pushed}" in info["RepoDigests"]

    fresh = tmp_path / "fresh"
    r = dy(fresh, "pull", f"{registry}/team/bb:v1")
    lines = r.out.splitlines()
    assert lines[0] == "v1: Pulling from team/bb"
    assert any(re.fullmatch(rf"{SHORT}: Pull complete", x) for x in lines)
    assert lines[-3:] == [
        f"Digest: {pushed}",
        f"Status: Downloaded newer image for {registry}/team/bb:v1",
        f"{registry}/team/bb:v1",
    ]
    got = json.loads(dy(fresh, "inspect", f"{registry}/team/bb:v1").out)[0]
    assert got["Id"] == src.id
    assert got["RootFS"]["Layers"] == [str(d) for d in src.config.diff_ids]
    assert got["RepoDigests"] == [f"{registry}/team/bb@{pushed}"]
    assert "Imported from -" in dy(fresh, "history", f"{registry}/team/bb:v1").out
    # the unpacked snapshot is the busybox tree
    with Engine.open(fresh) as e:
        img = e.images.resolve(f"{registry}/team/bb:v1")
        fs = e.snapshots.dir(img.chain[0])
        assert (fs / "bin" / "busybox").read_bytes() == Path("/bin/busybox").read_bytes()
        assert os.readlink(fs / "bin" / "sh") == "/bin/busybox"
        assert not list((e.snapshots.root / ".staging").iterdir())

    r = dy(fresh, "pull", f"{registry}/team/bb:v1")
    assert r.out.splitlines() == [  # as Docker: no layer is even looked at
        "v1: Pulling from team/bb",
        f"Digest: {pushed}",
        f"Status: Image is up to date for {registry}/team/bb:v1",
        f"{registry}/team/bb:v1",
    ]
    assert dy(fresh, "pull", "-q", f"{registry}/team/bb:v1").out == f"{registry}/team/bb:v1\n"
    # by digest, the whole repository, and docker's default tag
    r = dy(tmp_path / "by-digest", "pull", f"{registry}/team/bb@{pushed}")
    assert r.out.splitlines()[0] == f"{pushed}: Pulling from team/bb"
    assert r.out.splitlines()[-1] == f"{registry}/team/bb@{pushed}"
    dy(engine.root, "tag", f"{registry}/team/bb:v1", f"{registry}/team/bb:latest")
    r = dy(engine.root, "push", "-a", f"{registry}/team/bb")
    assert "latest: digest:" in r.out and "v1: digest:" in r.out
    r = dy(tmp_path / "all", "pull", "-a", f"{registry}/team/bb")
    assert r.out.splitlines()[-1] == f"{registry}/team/bb"
    r = dy(tmp_path / "default", "pull", f"{registry}/team/bb")
    assert r.out.splitlines()[:2] == ["Using default tag: latest", "latest: Pulling from team/bb"]


def test_pull_from_docker_hub_through_a_mirror(
    registry: str, engine: Engine, tmp_path: Path
) -> None:
    """Docker's `registry-mirrors`: a docker.io image comes from the mirror (no internet
    here), and the output is Docker's for a Hub image."""
    src = busybox_image(engine, f"{registry}/library/busybox:latest")
    dy(engine.root, "push", "-q", f"{registry}/library/busybox:latest")
    root = tmp_path / "mirrored"
    root.mkdir()
    (root / "config.json").write_text(json.dumps({"registry-mirrors": [f"http://{registry}"]}))
    lines = dy(root, "pull", "busybox").out.splitlines()
    assert lines[:2] == ["Using default tag: latest", "latest: Pulling from library/busybox"]
    assert lines[-2:] == [
        "Status: Downloaded newer image for busybox:latest",
        "docker.io/library/busybox:latest",
    ]
    assert dy(root, "images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}").out == (
        f"busybox:latest {src.id.short}\n"
    )


def test_second_push_compresses_nothing(
    registry: str, engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[Descriptor] = []
    real = distribution_push._compress_layer

    def counting(e: Engine, src: Descriptor) -> Descriptor:
        calls.append(src)
        return real(e, src)

    monkeypatch.setattr(distribution_push, "_compress_layer", counting)
    img = busybox_image(engine, "bb:v1")
    first = _push_as(engine, "bb:v1", f"{registry}/a/bb:v1")
    assert len(calls) == 1
    engine.images.gc()  # the gzip variant survives GC while the image lives
    with run_registry(tmp_path / "registry2") as other:
        assert _push_as(engine, "bb:v1", f"{other}/b/bb:v1") == first
    assert _push_as(engine, "bb:v1", f"{registry}/c/bb:v2") == first
    assert len(calls) == 1
    variant = engine.meta.layer_variant(str(img.config.diff_ids[0]), OCI_GZIP)
    assert variant is not None and engine.content.has(variant[0])
    assert engine.images.resolve("bb:v1").id == img.id
    # a pulled image pushes its own (already compressed) manifest, byte for byte
    with Engine.open(tmp_path / "pulled") as e2:
        pulled = pull_image(e2, parse_reference(f"{registry}/a/bb:v1"))
        assert pulled.manifest_digest == first
        assert _push_as(e2, f"{registry}/a/bb:v1", f"{registry}/d/bb:v1") == first
    assert len(calls) == 1
    # once the image is gone, GC takes the variant too
    for name in ("bb:v1", f"{other}/b/bb:v1", f"{registry}/a/bb:v1", f"{registry}/c/bb:v2"):
        dy(engine.root, "rmi", name, check=False)
    engine.images.gc()
    assert not engine.content.has(variant[0])


def _push_as(engine: Engine, source: str, target: str) -> Digest:
    ref = parse_reference(target)
    engine.images.tag(source, ref)
    return push_image(engine, ref)


@contextlib.contextmanager
def oci_refusing_front(backend: str) -> Iterator[tuple[str, list[str]]]:
    """An HTTP front to `backend` that refuses OCI manifests (400 MANIFEST_INVALID), as old
    registries do, and forwards everything else. Yields its address and the media types of
    the manifests it refused."""
    seen: list[str] = []

    class H(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a: object) -> None:
            pass

        def _any(self) -> None:
            n = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(n) if n else None
            ctype = self.headers.get("Content-Type", "")
            if self.command == "PUT" and "/manifests/" in self.path and "oci" in ctype:
                seen.append(ctype)
                err = b'{"errors":[{"code":"MANIFEST_INVALID","message":"manifest invalid"}]}'
                self._reply(400, [("Content-Type", "application/json")], err)
                return
            conn = http.client.HTTPConnection(backend, timeout=30)
            try:
                conn.request(self.command, self.path, body=body, headers=dict(self.headers))
                resp = conn.getresponse()
                data = resp.read()
                hop = {"connection", "transfer-encoding", "keep-alive", "content-length"}
                hdrs = [(k, v) for k, v in resp.getheaders() if k.lower() not in hop]
                length = resp.getheader("Content-Length") if self.command == "HEAD" else None
                self._reply(resp.status, hdrs, data, length)
            finally:
                conn.close()

        def _reply(
            self, status: int, hdrs: list[tuple[str, str]], body: bytes, length: str | None = None
        ) -> None:
            self.send_response(status)
            for k, v in hdrs:
                self.send_header(k, v)
            self.send_header("Content-Length", length or str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = _any

    srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
    srv.daemon_threads = True
    t = threading.Thread(target=srv.serve_forever, args=(0.02,), daemon=True)
    t.start()
    try:
        yield f"127.0.0.1:{srv.server_address[1]}", seen
    finally:
        srv.shutdown()
        srv.server_close()
        t.join()


def test_push_falls_back_to_docker_schema2(registry: str, engine: Engine) -> None:
    img = busybox_image(engine, "bb:v1")
    with oci_refusing_front(registry) as (front, refused):
        digest = _push_as(engine, "bb:v1", f"{front}/old/bb:v1")
    assert refused == [mediatypes.OCI_MANIFEST]
    client = RegistryClient(registry)
    try:
        got = client.get_manifest("old/bb", "v1")
    finally:
        client.close()
    assert got.digest == digest and got.media_type == mediatypes.DOCKER_MANIFEST
    doc = json.loads(got.data)
    assert doc["config"] == {
        "mediaType": mediatypes.DOCKER_CONFIG,
        "digest": str(img.id),  # the same config: the image ID does not change
        "size": img.manifest.config.size,
    }
    assert [x["mediaType"] for x in doc["layers"]] == [mediatypes.DOCKER_LAYER_GZIP]


def test_pull_errors_exit_1(registry: str, engine: Engine, tmp_path: Path) -> None:
    busybox_image(engine, f"{registry}/x/bb:v1")
    dy(engine.root, "push", "-q", f"{registry}/x/bb:v1")
    r = dy(tmp_path / "r", "pull", f"{registry}/x/bb:nope", check=False)
    assert r.rc == 1
    assert r.err == (
        f"Error response from daemon: manifest for {registry}/x/bb:nope not found: "
        "manifest unknown: manifest unknown\n"
    )
    r = dy(tmp_path / "r", "manifest", "inspect", f"{registry}/x/bb:nope", check=False)
    assert r.rc == 1 and "no such manifest" in r.err
    r = dy(tmp_path / "r", "push", f"{registry}/x/missing:v1", check=False)
    assert r.rc == 1
    assert "An image does not exist locally with the tag: " in r.err
    doc = json.loads(dy(tmp_path / "r", "manifest", "inspect", f"{registry}/x/bb:v1").out)
    assert doc["schemaVersion"] == 2 and len(doc["layers"]) == 1
    assert not _blobs(tmp_path / "r")


def test_login_logout_with_htpasswd(
    auth_registry: str, engine: Engine, docker_config: Path, tmp_path: Path
) -> None:
    busybox_image(engine, f"{auth_registry}/p/bb:v1")
    r = dy(engine.root, "push", f"{auth_registry}/p/bb:v1", check=False)
    assert r.rc == 1 and "unauthorized: authentication required" in r.err
    r = dy(engine.root, "login", "-u", "u", "-p", "wrong", auth_registry, check=False)
    assert r.rc == 1 and "Login Succeeded" not in r.out
    assert not (docker_config / "config.json").exists()
    r = dy(engine.root, "login", "-u", "u", "-p", "p", auth_registry)
    assert r.out == "Login Succeeded\n"
    assert "WARNING! Using --password via the CLI is insecure" in r.err
    cfg = docker_config / "config.json"
    assert cfg.stat().st_mode & 0o777 == 0o600
    assert auth_registry in json.loads(cfg.read_text())["auths"]
    dy(engine.root, "push", f"{auth_registry}/p/bb:v1")
    dy(tmp_path / "other", "pull", f"{auth_registry}/p/bb:v1")
    r = dy(engine.root, "logout", auth_registry)
    assert r.out == f"Removing login credentials for {auth_registry}\n"
    assert auth_registry not in json.loads(cfg.read_text()).get("auths", {})
    assert dy(engine.root, "logout", auth_registry).out == f"Not logged in to {auth_registry}\n"
    r = dy(tmp_path / "third", "pull", f"{auth_registry}/p/bb:v1", check=False)
    assert r.rc == 1 and "pull access denied" in r.err
    r = dy(engine.root, "login", "-u", "u", "--password-stdin", auth_registry, input=b"p\n")
    assert r.out == "Login Succeeded\n" and r.err == ""
    r = dy(engine.root, "login", "--password-stdin", auth_registry, input=b"p\n", check=False)
    assert r.rc == 1 and "Must provide --username with --password-stdin" in r.err


@contextlib.contextmanager
def throttled_proxy(backend: str, rate: int) -> Iterator[str]:
    """A TCP proxy on 127.0.0.1 to `backend` whose replies flow at about `rate` bytes/s, so a
    pull stays mid-download long enough to be killed. Yields its "127.0.0.1:PORT"."""
    host, port = backend.rsplit(":", 1)
    lsock = socket.create_server(("127.0.0.1", 0))
    lsock.settimeout(0.05)
    stop = threading.Event()

    def pump(src: socket.socket, dst: socket.socket, slow: bool) -> None:
        with contextlib.suppress(OSError):
            while not stop.is_set() and (data := src.recv(32 << 10)):
                dst.sendall(data)
                if slow:
                    time.sleep(len(data) / rate)
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def serve() -> None:
        with contextlib.suppress(OSError):
            while not stop.is_set():
                try:
                    client, _ = lsock.accept()
                except TimeoutError:
                    continue
                client.settimeout(None)
                up = socket.create_connection((host, int(port)))
                for args in ((client, up, False), (up, client, True)):
                    threading.Thread(target=pump, args=args, daemon=True).start()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        yield f"127.0.0.1:{lsock.getsockname()[1]}"
    finally:
        stop.set()
        lsock.close()
        t.join(5)


def test_pull_killed_halfway_then_pull_again(registry: str, engine: Engine, tmp_path: Path) -> None:
    from dockyard.image.importer import import_rootfs

    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tf:
        ti = tarfile.TarInfo("blob")
        ti.size = 8 << 20
        tf.addfile(ti, io.BytesIO(os.urandom(ti.size)))  # incompressible
    raw.seek(0)
    img = import_rootfs(engine.images, raw, ref=parse_reference(f"{registry}/big/file:v1"))
    push_image(engine, parse_reference(f"{registry}/big/file:v1"))
    layer = engine.meta.layer_variant(str(img.config.diff_ids[0]), OCI_GZIP)
    assert layer is not None
    root = tmp_path / "killed"
    key = hashlib.sha256(f"registry-pull:{layer[0]}".encode()).hexdigest()[:32]
    ingest = root / "content" / "ingest" / key  # where the layer's download goes
    with throttled_proxy(registry, 16 << 20) as slow:
        ref = parse_reference(f"{slow}/big/file:v1")
        p = subprocess.Popen(
            [DOCKYARD, "--root", str(root), "pull", ref.string()],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                if 0 < _size(ingest / "data") < layer[1]:
                    break
                assert p.poll() is None, "the pull finished before it could be killed"
                time.sleep(0.005)
            else:
                pytest.fail("no partial download appeared")
        finally:
            p.send_signal(signal.SIGKILL)
            p.wait()
        assert Digest(layer[0]).hex not in _blobs(root)  # nothing partial is visible
        assert 0 < _size(ingest / "data") < layer[1]  # kept for a resume
        r = dy(root, "pull", ref.string())
    assert "Status: Downloaded newer image" in r.out
    with Engine.open(root) as e:
        assert e.images.resolve(ref.string()).id == img.id
        assert e.snapshots.has(img.chain[0])
        assert not list((e.snapshots.root / ".staging").iterdir())  # dead pull's debris gone
        assert not ingest.exists()  # the download resumed and was committed
        e.images.gc()
    assert not _ingests(root)  # GC removes what the killed process was writing


def _size(p: Path) -> int:
    try:
        return p.stat().st_size
    except FileNotFoundError:
        return 0


def test_tampered_registry_is_refused_and_leaves_nothing(tmp_path: Path) -> None:
    img = make_image(2, 300_000)
    root = tmp_path / "root"
    with running_stub() as st:
        st.add("tamp", "v1", img)
        st.tamper.add(img.layers[1].digest)
        addr = st.base.removeprefix("http://")
        r = dy(root, "pull", f"{addr}/tamp:v1", check=False)
    assert r.rc == 1 and "digest" in r.err.lower(), r.err
    assert not _blobs(root)
    assert not _ingests(root)
    assert dy(root, "images", "-q").out == ""
    with Engine.open(root) as e:
        assert e.snapshots.list() == []
        assert not list((e.snapshots.root / ".staging").iterdir())


def test_run_pulls_a_missing_image(registry: str, engine: Engine, tmp_path: Path) -> None:
    busybox_image(engine, f"{registry}/team/runme:v1")
    dy(engine.root, "push", f"{registry}/team/runme:v1")
    fresh = tmp_path / "fresh-run"
    r = dy(fresh, "run", "--rm", "--network", "none", "--pull", "never",
           f"{registry}/team/runme:v1", "true", check=False)  # fmt: skip
    assert r.rc == 125 and "No such image" in r.err
    r = dy(fresh, "run", "--rm", "--network", "none", f"{registry}/team/runme:v1",
           "echo", "ran")  # fmt: skip
    assert r.out == "ran\n"
    assert f"Unable to find image '{registry}/team/runme:v1' locally" in r.err
    assert "Status: Downloaded newer image" in r.err
    r = dy(fresh, "create", "--pull", "always", "--network", "none", f"{registry}/team/runme:v1")
    assert "Status: Image is up to date" in r.err
    dy(fresh, "rm", r.out.strip())
