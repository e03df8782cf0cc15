"""load of the archive shapes other tools write: compressed archives, Docker < 25 layouts with
`<id>/layer.tar` and symlinked layers, OCI layouts with compressed layers, nested and
multi-platform indexes, and members in any order. Our own output checked against the OCI schemas.
"""

from __future__ import annotations

import gzip
import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from dockyard.engine import Engine
from dockyard.errors import DigestMismatch, InvalidArgument
from dockyard.image import archive_load, archive_save
from dockyard.oci import mediatypes
from dockyard.oci.types import Platform
from tests.oci_schema import validate
from tests.unit.test_archive_support import (
    image_config,
    layer_tar,
    make_image,
    sha,
    tar_members,
    write_tar,
)

L1 = layer_tar({"etc": None, "etc/one": b"1\n"})
L2 = layer_tar({"etc/two": b"2" * 3000})


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    with Engine.open(tmp_path / "root") as e:
        yield e


def load(engine: Engine, data: bytes, platform: str | None = None) -> list[archive_load.Loaded]:
    p = Platform.parse(platform) if platform else Platform(os="linux", architecture="amd64")
    return archive_load.load(engine.images, io.BytesIO(data), platform=p)


def hexof(data: bytes) -> str:
    return sha(data)[7:]


def docker_v1_archive(config: bytes, *, first: str = "manifest") -> bytes:
    """Docker < 25 / podman docker-archive shape, with the second layer as a symlink."""
    cid = hexof(config)
    manifest = json.dumps(
        [
            {
                "Config": f"{cid}.json",
                "RepoTags": ["old:v1"],
                "Layers": ["aaaa/layer.tar", "bbbb/layer.tar"],
            }
        ]
    ).encode()
    entries: list[tuple[str, bytes | str]] = [
        ("aaaa/layer.tar", L1),
        ("cccc/layer.tar", L2),
        ("bbbb/layer.tar", "../cccc/layer.tar"),
        (f"{cid}.json", config),
        ("repositories", b'{"old":{"v1":"bbbb"}}'),
    ]
    meta = ("manifest.json", manifest)
    return write_tar([meta, *entries] if first == "manifest" else [*entries, meta])


@pytest.mark.parametrize("first", ["manifest", "blobs"])
def test_docker_v1_layout_with_symlinked_layer(engine: Engine, first: str) -> None:
    config = image_config([sha(L1), sha(L2)])
    (loaded,) = load(engine, docker_v1_archive(config, first=first))
    assert loaded.image_id == sha(config)
    assert [n.familiar_string() for n in loaded.names] == ["old:v1"]
    img = engine.images.resolve("old:v1")
    assert [x.digest for x in img.manifest.layers] == [sha(L1), sha(L2)]
    assert img.manifest.layers[0].media_type == mediatypes.OCI_LAYER


def test_docker_v1_wrong_diff_id(engine: Engine) -> None:
    config = image_config([sha(L2), sha(L1)])
    with pytest.raises(DigestMismatch, match="layer 1 of image"):
        load(engine, docker_v1_archive(config))
    assert engine.images.list_images() == [] and engine.meta.all_tags() == {}


def test_docker_v1_config_name_must_match(engine: Engine) -> None:
    config = image_config([sha(L1), sha(L2)])
    data = docker_v1_archive(config).replace(b'"history"', b'"histor1"')
    with pytest.raises(DigestMismatch, match="config"):
        load(engine, data)


def oci_archive(
    manifests: list[tuple[bytes, list[bytes], str]], index_extra: list[dict[str, object]]
) -> tuple[bytes, list[bytes]]:
    """An OCI layout: (config, gzip layers, platform) per manifest; returns (tar, manifests)."""
    blobs: dict[str, bytes] = {}
    docs = []
    for config, layers, _ in manifests:
        gz = [gzip.compress(x, mtime=0) for x in layers]
        m = {
            "schemaVersion": 2,
            "mediaType": mediatypes.OCI_MANIFEST,
            "config": {
                "mediaType": mediatypes.OCI_CONFIG,
                "digest": sha(config),
                "size": len(config),
            },
            "layers": [
                {"mediaType": mediatypes.OCI_LAYER_GZIP, "digest": sha(x), "size": len(x)}
                for x in gz
            ],
        }
        doc = json.dumps(m).encode()
        docs.append(doc)
        for b in (config, doc, *gz):
            blobs[sha(b)] = b
    entries: list[tuple[str, bytes | str]] = [("oci-layout", b'{"imageLayoutVersion":"1.0.0"}')]
    entries += [("blobs/sha256/" + d[7:], b) for d, b in sorted(blobs.items())]
    index = {"schemaVersion": 2, "manifests": index_extra}
    entries.append(("index.json", json.dumps(index).encode()))
    return write_tar(entries), docs


def desc(doc: bytes, mt: str, **extra: object) -> dict[str, object]:
    return {"mediaType": mt, "digest": sha(doc), "size": len(doc), **extra}


def test_oci_layout_gzip_layers_are_stored_plain(engine: Engine) -> None:
    config = image_config([sha(L1), sha(L2)])
    ann = {"org.opencontainers.image.ref.name": "localhost/app:2"}
    _, docs = oci_archive([(config, [L1, L2], "")], [])
    data, _ = oci_archive(
        [(config, [L1, L2], "")], [desc(docs[0], mediatypes.OCI_MANIFEST, annotations=ann)]
    )
    (loaded,) = load(engine, data)
    assert loaded.image_id == sha(config)
    assert [n.string() for n in loaded.names] == ["localhost/app:2"]
    img = engine.images.resolve("localhost/app:2")
    assert [x.digest for x in img.manifest.layers] == [sha(L1), sha(L2)]
    assert engine.content.read_bytes(sha(L2)) == L2


def test_oci_bare_tag_ref_name_gives_no_name(engine: Engine) -> None:
    config = image_config([sha(L1)])
    _, docs = oci_archive([(config, [L1], "")], [])
    ann = {"org.opencontainers.image.ref.name": "latest"}
    data, _ = oci_archive(
        [(config, [L1], "")], [desc(docs[0], mediatypes.OCI_MANIFEST, annotations=ann)]
    )
    (loaded,) = load(engine, data)
    assert loaded.names == [] and engine.meta.all_tags() == {}


@pytest.mark.parametrize("platform", ["linux/amd64", "linux/arm64"])
def test_nested_multi_platform_index(engine: Engine, platform: str) -> None:
    amd = image_config([sha(L1)])
    arm = image_config([sha(L2)], architecture="arm64")
    specs = [(amd, [L1], "linux/amd64"), (arm, [L2], "linux/arm64")]
    _, docs = oci_archive(specs, [])
    inner = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": mediatypes.OCI_INDEX,
            "manifests": [
                desc(
                    docs[0],
                    mediatypes.OCI_MANIFEST,
                    platform={"os": "linux", "architecture": "amd64"},
                ),
                desc(
                    docs[1],
                    mediatypes.OCI_MANIFEST,
                    platform={"os": "linux", "architecture": "arm64"},
                ),
                desc(
                    b"{}",
                    mediatypes.OCI_MANIFEST,
                    platform={"os": "unknown", "architecture": "unknown"},
                ),
            ],
        }
    ).encode()
    ann = {"io.containerd.image.name": "docker.io/library/multi:1"}
    tar, _ = oci_archive(specs, [desc(inner, mediatypes.OCI_INDEX, annotations=ann)])
    files: dict[str, bytes | str] = dict(tar_members(tar))
    files["blobs/sha256/" + hexof(inner)] = inner  # the nested index is a blob too
    data = write_tar(sorted(files.items()))
    (loaded,) = load(engine, data, platform)
    assert loaded.image_id == sha(amd if platform.endswith("amd64") else arm)
    assert [n.familiar_string() for n in loaded.names] == ["multi:1"]


def test_no_image_for_platform(engine: Engine) -> None:
    config = image_config([sha(L1)], architecture="s390x")
    _, docs = oci_archive([(config, [L1], "")], [])
    plat = {"os": "linux", "architecture": "s390x"}
    data, _ = oci_archive(
        [(config, [L1], "")], [desc(docs[0], mediatypes.OCI_MANIFEST, platform=plat)]
    )
    with pytest.raises(InvalidArgument, match="no image for platform linux/amd64"):
        load(engine, data)


def test_missing_blob(engine: Engine) -> None:
    config = image_config([sha(L1)])
    _, docs = oci_archive([(config, [L1], "")], [])
    data, _ = oci_archive([(config, [L1], "")], [desc(docs[0], mediatypes.OCI_MANIFEST)])
    files = {k: v for k, v in tar_members(data).items() if v != gzip.compress(L1, mtime=0)}
    with pytest.raises(InvalidArgument, match="missing layer blob"):
        load(engine, write_tar(sorted(files.items())))
    assert engine.images.list_images() == []


@pytest.mark.parametrize("compress", ["gzip", "zstd"])
def test_compressed_archive(tmp_path: Path, compress: str) -> None:
    with Engine.open(tmp_path / "a") as src, Engine.open(tmp_path / "b") as dst:
        img = make_image(src, [{"x": b"y"}], ["zip:1"])
        out = io.BytesIO()
        archive_save.save(src.images, ["zip:1"], out)
        raw = out.getvalue()
        data = gzip.compress(raw) if compress == "gzip" else _zstd(raw)
        (loaded,) = archive_load.load(dst.images, io.BytesIO(data))
        assert loaded.image_id == img.id


def _zstd(data: bytes) -> bytes:
    import zstandard

    return bytes(zstandard.ZstdCompressor().compress(data))


def test_saved_documents_match_oci_schemas(engine: Engine) -> None:
    make_image(engine, [{"x": b"y"}], ["s:1"])
    img = make_image(engine, [{"z": b"w"}], [])
    out = io.BytesIO()
    archive_save.save(engine.images, ["s:1", img.id], out)
    files = tar_members(out.getvalue())
    validate("layout", files["oci-layout"])
    validate("index", files["index.json"])
    for d in json.loads(files["index.json"])["manifests"]:
        validate("manifest", files["blobs/sha256/" + d["digest"][7:]])


def test_docker_archive_with_gzip_layer_files(engine: Engine) -> None:
    config = image_config([sha(L1)])
    manifest = json.dumps([{"Config": "c.json", "RepoTags": None, "Layers": ["l/layer.tar"]}])
    data = write_tar(
        [
            ("l/layer.tar", gzip.compress(L1)),
            ("c.json", config),
            ("manifest.json", manifest.encode()),
        ]
    )
    (loaded,) = load(engine, data)
    assert loaded.image_id == sha(config) and loaded.names == []
    assert engine.content.read_bytes(sha(L1)) == L1


def test_tampered_compressed_blob(engine: Engine) -> None:
    config = image_config([sha(L1)])
    _, docs = oci_archive([(config, [L1], "")], [])
    data, _ = oci_archive([(config, [L1], "")], [desc(docs[0], mediatypes.OCI_MANIFEST)])
    gz = gzip.compress(L1, mtime=0)
    files: dict[str, bytes | str] = dict(tar_members(data))
    bad = bytearray(gz)
    bad[-5] ^= 0xFF  # the gzip trailer: the layer still decompresses, its name no longer fits
    files["blobs/sha256/" + hexof(gz)] = bytes(bad)
    with pytest.raises(DigestMismatch, match="is corrupt"):
        load(engine, write_tar(sorted(files.items())))
    assert engine.images.list_images() == []
