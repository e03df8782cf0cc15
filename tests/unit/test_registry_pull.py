"""pull() against the stub registry: by tag and digest, platform choice from an index, tampered
blobs, downloads cut off and resumed with Range, streaming layers to `on_layer`, mirrors."""

from __future__ import annotations

import json
import socket
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import pytest

from dockyard.digest import Digest
from dockyard.errors import DigestMismatch, InvalidArgument, NotFound
from dockyard.oci import mediatypes
from dockyard.oci.types import Descriptor, Platform
from dockyard.reference import parse_reference
from dockyard.registry.client import RegistryClient
from dockyard.registry.progress import ProgressEvent
from dockyard.registry.pull import pull, pull_first
from dockyard.store.content import ContentStore
from tests.unit.test_registry_stub import Stub, blob_files, client_for, make_image, running_stub


@pytest.fixture
def stub() -> Iterator[Stub]:
    with running_stub() as st:
        yield st


def test_pull_by_tag_and_digest(stub: Stub, tmp_path: Path) -> None:
    img = make_image()
    stub.add("app", "v1", img)
    store = ContentStore(tmp_path / "cs")
    events: list[ProgressEvent] = []
    r = pull(client_for(stub), parse_reference("127.0.0.1:1/app:v1"), store, progress=events.append)
    assert r.manifest_digest == img.digest and r.index_digest is None
    assert r.config.architecture == "amd64"
    for d, b in img.blobs.items():
        assert store.read_bytes(d) == b
    assert store.read_bytes(img.digest) == img.manifest
    statuses = {e.status for e in events}
    assert {"Pulling fs layer", "Downloading", "Download complete", "Pull complete"} <= statuses
    # again by digest: nothing is downloaded twice
    n = len([x for x in stub.log if "/blobs/" in x[1]])
    ref = parse_reference(f"127.0.0.1:1/app@{img.digest}")
    events.clear()
    r2 = pull(client_for(stub), ref, store, progress=events.append)
    assert r2.manifest_digest == img.digest
    assert len([x for x in stub.log if "/blobs/" in x[1]]) == n
    assert {e.status for e in events} == {"Pulling fs layer", "Already exists"}


def test_index_platform_selection(stub: Stub, tmp_path: Path) -> None:
    amd, arm = make_image(1, 1000, "amd64"), make_image(1, 1000, "arm64")
    stub.add("multi", "x-amd", amd)
    stub.add("multi", "x-arm", arm)
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
    stub.manifests[("multi", "latest")] = (mediatypes.OCI_INDEX, index)
    store = ContentStore(tmp_path / "cs")
    ref = parse_reference("127.0.0.1:1/multi")
    r = pull(client_for(stub), ref, store, platform=Platform("linux", "aarch64"))
    assert r.index_digest == Digest.of(index) and r.manifest_digest == arm.digest
    assert r.config.architecture == "arm64"
    assert store.read_bytes(Digest.of(index)) == index
    with pytest.raises(NotFound, match="no matching manifest for linux/s390x"):
        pull(client_for(stub), ref, store, platform=Platform("linux", "s390x"))


def test_tampered_blob_refused(stub: Stub, tmp_path: Path) -> None:
    img = make_image(2, 100_000)
    stub.add("app", "v1", img)
    bad = img.layers[1].digest
    stub.tamper.add(bad)
    store = ContentStore(tmp_path / "cs")
    seen: list[BaseException] = []

    def on_layer(d: Descriptor, f: BinaryIO) -> int:
        try:
            return len(f.read())
        except DigestMismatch as e:
            seen.append(e)
            raise

    with pytest.raises(DigestMismatch):
        pull(client_for(stub), parse_reference("127.0.0.1:1/app:v1"), store, on_layer=on_layer)
    assert not store.has(bad)
    assert len(seen) == 1  # the consumer saw the error, never a clean EOF
    assert bad.hex not in [p.name for p in blob_files(store)]
    assert not any((store.root / "ingest").iterdir())


def test_cut_download_resumes_with_range(stub: Stub, tmp_path: Path) -> None:
    img = make_image(1, 2_000_000)
    stub.add("app", "v1", img)
    layer = img.layers[0]
    stub.cut_once[layer.digest] = layer.size // 2
    store = ContentStore(tmp_path / "cs")
    got: list[bytes] = []
    pull(
        client_for(stub),
        parse_reference("127.0.0.1:1/app:v1"),
        store,
        on_layer=lambda d, f: got.append(f.read()),
    )
    ranges = [h.get("Range") for m, p, h in stub.log if p.endswith(layer.digest) and m == "GET"]
    assert ranges == [None, f"bytes={layer.size // 2}-"]
    assert got == [img.blobs[layer.digest]]  # the consumer saw each byte once, in order
    assert store.read_bytes(layer.digest) == img.blobs[layer.digest]


def test_cut_download_server_ignores_range(stub: Stub, tmp_path: Path) -> None:
    img = make_image(1, 2_000_000)
    stub.add("app", "v1", img)
    layer = img.layers[0]
    stub.cut_once[layer.digest] = layer.size // 3
    stub.ignore_range = True
    store = ContentStore(tmp_path / "cs")
    got: list[bytes] = []
    pull(
        client_for(stub),
        parse_reference("127.0.0.1:1/app:v1"),
        store,
        on_layer=lambda d, f: got.append(f.read()),
    )
    assert got == [img.blobs[layer.digest]]
    assert store.read_bytes(layer.digest) == img.blobs[layer.digest]


def test_interrupted_pull_resumes_next_time(stub: Stub, tmp_path: Path) -> None:
    img = make_image(1, 3_000_000)
    stub.add("app", "v1", img)
    layer = img.layers[0]
    store = ContentStore(tmp_path / "cs")

    class Stop(Exception):
        pass

    def progress(e: ProgressEvent) -> None:
        if e.status == "Downloading" and e.current >= 1 << 20:
            raise Stop

    with pytest.raises(Stop):
        pull(client_for(stub), parse_reference("127.0.0.1:1/app:v1"), store, progress=progress)
    assert not store.has(layer.digest)
    got: list[bytes] = []
    pull(
        client_for(stub),
        parse_reference("127.0.0.1:1/app:v1"),
        store,
        on_layer=lambda d, f: got.append(f.read()),
    )
    ranges = [h.get("Range") for m, p, h in stub.log if p.endswith(layer.digest) and m == "GET"]
    assert ranges[0] is None and ranges[1] is not None and ranges[1].startswith("bytes=")
    assert int(ranges[1][6:-1]) >= 1 << 20
    assert got == [img.blobs[layer.digest]]  # fed from the store after the resumed download
    assert store.read_bytes(layer.digest) == img.blobs[layer.digest]


def test_on_layer_streams_while_downloading(stub: Stub, tmp_path: Path) -> None:
    img = make_image(3, 500_000)
    stub.add("app", "v1", img)
    store = ContentStore(tmp_path / "cs")

    def on_layer(d: Descriptor, f: BinaryIO) -> str:
        with tarfile.open(fileobj=f, mode="r|gz") as tf:
            return next(m.name for m in tf)

    r = pull(client_for(stub), parse_reference("127.0.0.1:1/app:v1"), store, on_layer=on_layer)
    assert r.layer_results == ("amd64-file0", "amd64-file1", "amd64-file2")
    # the consumer may stop early: the blob still lands in the store verified
    r = pull(
        client_for(stub),
        parse_reference("127.0.0.1:1/app:v1"),
        store,
        on_layer=lambda d, f: f.read(10),
    )
    assert all(store.has(d.digest) for d in img.layers)


def test_repeated_layer_and_mirror_fallback(stub: Stub, tmp_path: Path) -> None:
    img = make_image(1, 1000)
    layer = img.layers[0]
    config = json.loads(img.config)
    config["rootfs"]["diff_ids"] *= 2
    cfg = json.dumps(config).encode()
    manifest = json.loads(img.manifest)
    manifest["layers"] = [layer.to_dict(), layer.to_dict()]
    manifest["config"].update(digest=Digest.of(cfg), size=len(cfg))
    data = json.dumps(manifest).encode()
    stub.blobs.update(img.blobs)
    stub.blobs[Digest.of(cfg)] = cfg
    stub.manifests[("app", "v1")] = (mediatypes.OCI_MANIFEST, data)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"127.0.0.1:{s.getsockname()[1]}"  # nothing listens there once closed
    mirror = RegistryClient(dead, backoff=0.001, retries=1)
    store = ContentStore(tmp_path / "cs")
    got: list[bytes] = []
    r = pull_first(
        [mirror, client_for(stub)],
        parse_reference("127.0.0.1:1/app:v1"),
        store,
        on_layer=lambda d, f: got.append(f.read()),
    )
    assert r.manifest_digest == Digest.of(data)
    assert got == [img.blobs[layer.digest]] * 2
    gets = [p for m, p, _ in stub.log if m == "GET" and p.endswith(layer.digest)]
    assert len(gets) == 1


def test_config_and_manifest_disagree(stub: Stub, tmp_path: Path) -> None:
    img = make_image(1, 1000)
    manifest = json.loads(img.manifest)
    manifest["layers"] = [*manifest["layers"], *manifest["layers"]]
    data = json.dumps(manifest).encode()
    stub.blobs.update(img.blobs)
    stub.manifests[("app", "v1")] = (mediatypes.OCI_MANIFEST, data)
    with pytest.raises(InvalidArgument, match="lists 1 layers"):
        pull(client_for(stub), parse_reference("127.0.0.1:1/app:v1"), ContentStore(tmp_path))
