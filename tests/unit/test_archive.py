"""save/load: archive shape (Docker ≥ 25 layout), round trips, names, and failed loads."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from dockyard.engine import Engine
from dockyard.errors import DigestMismatch, InvalidArgument, NotFound
from dockyard.image import archive_load, archive_save
from dockyard.oci import mediatypes
from tests.unit.test_archive_support import layer_tar, make_image, sha, tar_members

A = [{"etc": None, "etc/a": b"layer one\n"}, {"etc/b": b"layer two\n", "bin": None}]
B = [{"srv": None, "srv/data": b"b" * 5000}]


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    with Engine.open(tmp_path / "src") as e:
        yield e


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[Engine]:
    with Engine.open(tmp_path / "dst") as e:
        yield e


def save_bytes(engine: Engine, *names: str) -> bytes:
    out = io.BytesIO()
    archive_save.save(engine.images, list(names), out)
    return out.getvalue()


def load_bytes(engine: Engine, data: bytes) -> list[archive_load.Loaded]:
    return archive_load.load(engine.images, io.BytesIO(data))


def names_of(engine: Engine) -> dict[str, str]:
    return {t: iid for iid, tags in engine.meta.all_tags().items() for t in tags}


def test_archive_layout_is_dockers(engine: Engine) -> None:
    img = make_image(engine, A, ["example.com/app:1", "busy:latest"])
    data = save_bytes(engine, "busy", "example.com/app:1")
    files = tar_members(data)
    assert json.loads(files["oci-layout"]) == {"imageLayoutVersion": "1.0.0"}
    for name, blob in files.items():
        if name.startswith("blobs/"):
            assert name == "blobs/" + sha(blob).replace(":", "/")
    manifest = json.loads(files["manifest.json"])
    assert manifest == [
        {
            "Config": "blobs/sha256/" + img.id.hex,
            "RepoTags": ["busy:latest", "example.com/app:1"],
            "Layers": ["blobs/sha256/" + d.hex for d in img.config.diff_ids],
        }
    ]
    index = json.loads(files["index.json"])
    assert index["schemaVersion"] == 2 and index["mediaType"] == mediatypes.OCI_INDEX
    anns = [m["annotations"] for m in index["manifests"]]
    assert anns == [
        {
            "io.containerd.image.name": "docker.io/library/busy:latest",
            "org.opencontainers.image.ref.name": "latest",
        },
        {
            "io.containerd.image.name": "example.com/app:1",
            "org.opencontainers.image.ref.name": "1",
        },
    ]
    assert {m["digest"] for m in index["manifests"]} == {img.manifest_digest}
    assert json.loads(files["repositories"]) == {
        "busy": {"latest": img.config.diff_ids[-1].hex},
        "example.com/app": {"1": img.config.diff_ids[-1].hex},
    }


def test_archive_is_deterministic_and_sorted(engine: Engine) -> None:
    make_image(engine, A, ["a:1"])
    make_image(engine, B, ["b:1"])
    first = save_bytes(engine, "a:1", "b:1")
    assert first == save_bytes(engine, "a:1", "b:1")
    assert len(first) % 10240 == 0
    import tarfile

    with tarfile.open(fileobj=io.BytesIO(first)) as tar:
        members = tar.getmembers()
    names = [m.name for m in members]
    assert names == sorted(names)
    assert names[:2] == ["blobs", "blobs/sha256"]
    assert all(m.mtime == 0 and m.uid == 0 and m.uname == "" for m in members)


def test_round_trip_keeps_id_tags_layers(engine: Engine, fresh: Engine) -> None:
    img = make_image(engine, A, ["busy:latest", "busy:1.0"])
    loaded = load_bytes(fresh, save_bytes(engine, "busy:latest", "busy:1.0"))
    assert [x.image_id for x in loaded] == [img.id]
    got = fresh.images.resolve("busy:1.0")
    assert got.id == img.id
    assert got.manifest_digest == img.manifest_digest  # the manifest is kept byte for byte
    assert got.config.diff_ids == img.config.diff_ids
    assert sorted(got.tags) == ["docker.io/library/busy:1.0", "docker.io/library/busy:latest"]
    assert fresh.content.read_bytes(img.id) == engine.content.read_bytes(img.id)


def test_multiple_images_and_by_id(engine: Engine, fresh: Engine) -> None:
    a = make_image(engine, A, ["a:1"])
    b = make_image(engine, B, ["b:1"])
    files = tar_members(save_bytes(engine, "a:1", b.id.hex[:12]))
    manifest = json.loads(files["manifest.json"])
    assert [m["RepoTags"] for m in manifest] == [["a:1"], None]
    index = json.loads(files["index.json"])
    assert "annotations" not in index["manifests"][1]
    loaded = archive_load.load(fresh.images, io.BytesIO(save_bytes(engine, "a:1", b.id)))
    assert [(x.image_id, [n.string() for n in x.names]) for x in loaded] == [
        (a.id, ["docker.io/library/a:1"]),
        (b.id, []),
    ]
    assert {i.id for i in fresh.images.list_images()} == {a.id, b.id}


def test_bare_repository_saves_all_its_tags(engine: Engine) -> None:
    a = make_image(engine, A, ["repo:1", "other:x"])
    b = make_image(engine, B, ["repo:2"])
    manifest = json.loads(tar_members(save_bytes(engine, "repo"))["manifest.json"])
    assert {m["Config"]: m["RepoTags"] for m in manifest} == {
        "blobs/sha256/" + a.id.hex: ["repo:1"],
        "blobs/sha256/" + b.id.hex: ["repo:2"],
    }


def test_save_unknown_image(engine: Engine) -> None:
    with pytest.raises(NotFound, match="No such image: nosuch:latest"):
        save_bytes(engine, "nosuch")


def test_load_replaces_a_name(engine: Engine, fresh: Engine) -> None:
    make_image(engine, A, ["app:1"])
    old = make_image(fresh, B, ["app:1"])
    (loaded,) = load_bytes(fresh, save_bytes(engine, "app:1"))
    assert loaded.replaced == {"docker.io/library/app:1": old.id}
    assert names_of(fresh)["docker.io/library/app:1"] == loaded.image_id


def _tamper(data: bytes, blob_hex: str) -> bytes:
    """Flip one byte inside a blob's data without touching the tar headers."""
    import tarfile

    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        m = tar.getmember("blobs/sha256/" + blob_hex)
        pos = m.offset_data + m.size // 2
    return data[:pos] + bytes([data[pos] ^ 0xFF]) + data[pos + 1 :]


def assert_nothing_loaded(engine: Engine) -> None:
    assert engine.images.list_images() == []
    assert engine.meta.all_tags() == {}
    engine.images.gc()
    assert list(engine.content.walk()) == []


def test_tampered_layer_fails_and_leaves_nothing(engine: Engine, fresh: Engine) -> None:
    img = make_image(engine, A, ["app:1"])
    bad = _tamper(save_bytes(engine, "app:1"), img.config.diff_ids[1].hex)
    with pytest.raises(DigestMismatch, match="corrupt"):
        load_bytes(fresh, bad)
    assert_nothing_loaded(fresh)


@pytest.mark.parametrize("cut", [0.5, 0.97])
def test_truncated_archive_fails_and_leaves_nothing(
    engine: Engine, fresh: Engine, cut: float
) -> None:
    make_image(engine, A + B, ["app:1"])
    data = save_bytes(engine, "app:1")
    with pytest.raises(InvalidArgument):
        load_bytes(fresh, data[: int(len(data) * cut)])
    assert_nothing_loaded(fresh)


def test_not_an_archive(fresh: Engine) -> None:
    with pytest.raises(InvalidArgument, match="invalid archive"):
        load_bytes(fresh, b"")
    with pytest.raises(InvalidArgument, match=r"no manifest\.json or index\.json"):
        load_bytes(fresh, layer_tar({"a": b"x"}))


def test_gc_during_load_keeps_the_leased_blobs(
    engine: Engine, fresh: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    img = make_image(engine, A, ["app:1"])
    data = save_bytes(engine, "app:1")
    real_unpack = fresh.images.unpack

    def gc_then_unpack(*args: object, **kw: object) -> int:
        fresh.images.gc()  # another process's GC, between spooling and registering
        return real_unpack(*args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(fresh.images, "unpack", gc_then_unpack)
    (loaded,) = load_bytes(fresh, data)
    assert loaded.image_id == img.id
    monkeypatch.undo()
    fresh.images.gc()  # the lease is gone; the image itself keeps its blobs
    assert fresh.images.resolve("app:1").id == img.id
    for d in (img.id, img.manifest_digest, *img.config.diff_ids):
        assert fresh.content.has(d)


def test_cli_save_o_and_load_i_in_process(
    engine: Engine, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from dockyard.cli import main

    img = make_image(engine, A, ["app:1", "app:2"])
    other = make_image(engine, B, [])
    out = tmp_path / "a.tar"
    src = str(engine.root)
    assert main(["--root", src, "save", "-o", str(out), "app", other.id.hex[:10]]) == 0
    assert out.exists() and not list(tmp_path.glob(".dockyard_temp_*"))
    capsys.readouterr()
    dst = str(tmp_path / "cli-dst")
    with Engine.open(dst) as e:
        make_image(e, B, ["app:2"])
    assert main(["--root", dst, "load", "-i", str(out)]) == 0
    assert capsys.readouterr().out == (
        "Loaded image: app:1\n"
        f"The image app:2 already exists, renaming the old one with ID {other.id} "
        "to empty string\n"
        "Loaded image: app:2\n"
        f"Loaded image ID: {other.id}\n"
    )
    with Engine.open(dst) as e:
        assert e.images.resolve("app:2").id == img.id


def test_cli_save_errors(
    engine: Engine, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from dockyard.cli import main

    src = str(engine.root)
    assert main(["--root", src, "save", "-o", str(tmp_path / "no" / "x.tar"), "a"]) == 1
    assert capsys.readouterr().err == (
        f'failed to save image: invalid output path: directory "{tmp_path / "no"}" does not exist\n'
    )
    assert main(["--root", src, "save", "-o", str(tmp_path / "x.tar"), "nosuch:1"]) == 1
    assert capsys.readouterr().err == "Error response from daemon: No such image: nosuch:1\n"
    assert list(tmp_path.iterdir()) == [engine.root]


def test_image_with_compressed_layers_round_trips(engine: Engine, fresh: Engine) -> None:
    """A pulled image keeps its gzip layers: saved as they are, loaded back plain, same ID."""
    import gzip

    from dockyard.oci.types import Descriptor, Manifest
    from dockyard.reference import parse_reference
    from tests.unit.test_archive_support import image_config

    plain = layer_tar({"opt": None, "opt/x": b"x" * 10000})
    gz = gzip.compress(plain, mtime=0)
    config = image_config([sha(plain)])
    m = Manifest(
        config=Descriptor(mediatypes.OCI_CONFIG, engine.content.put_bytes(config), len(config)),
        layers=(Descriptor(mediatypes.OCI_LAYER_GZIP, engine.content.put_bytes(gz), len(gz)),),
    )
    md = engine.content.put_bytes(m.to_json())
    img = engine.images.register(md, [parse_reference("pulled:1")])
    files = tar_members(save_bytes(engine, "pulled:1"))
    assert json.loads(files["manifest.json"])[0]["Layers"] == ["blobs/sha256/" + sha(gz)[7:]]
    (loaded,) = load_bytes(fresh, save_bytes(engine, "pulled:1"))
    assert loaded.image_id == img.id
    got = fresh.images.resolve("pulled:1")
    assert [(x.media_type, x.digest) for x in got.manifest.layers] == [
        (mediatypes.OCI_LAYER, sha(plain))
    ]
