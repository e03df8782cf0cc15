from __future__ import annotations

import json

import jsonschema
import pytest

from dockyard.digest import Digest
from dockyard.errors import InvalidArgument
from dockyard.oci import canonical, mediatypes
from dockyard.oci.types import (
    Descriptor,
    History,
    ImageConfig,
    Index,
    Manifest,
    Platform,
    parse_document,
)
from tests.oci_schema import validate

D1 = Digest.of(b"config")
D2 = Digest.of(b"layer")


def _manifest() -> Manifest:
    return Manifest(
        config=Descriptor(mediatypes.OCI_CONFIG, D1, 6),
        layers=(Descriptor(mediatypes.OCI_LAYER, D2, 5),),
    )


def test_canonical_json_is_stable() -> None:
    assert canonical.dumps({"b": 1, "a": [1, 2]}) == b'{"a":[1,2],"b":1}'
    assert canonical.dumps({"é": "ü"}) == '{"é":"ü"}'.encode()


def test_manifest_round_trip_and_schema() -> None:
    m = _manifest()
    data = m.to_json()
    validate("manifest", data)
    assert Manifest.from_json(data) == m
    assert parse_document(data) == m


def test_index_round_trip_and_schema() -> None:
    idx = Index(
        manifests=(
            Descriptor(
                mediatypes.OCI_MANIFEST,
                D1,
                10,
                platform=Platform("linux", "arm64", "v8"),
                annotations={"org.opencontainers.image.ref.name": "latest"},
            ),
        )
    )
    data = idx.to_json()
    validate("index", data)
    assert parse_document(data) == idx


def test_config_round_trip_and_schema() -> None:
    c = ImageConfig(
        diff_ids=(D2,),
        created="2024-01-01T00:00:00Z",
        config={"Cmd": ["sh"], "Env": ["PATH=/bin"], "ExposedPorts": {"3000/tcp": {}}},
        history=(History(created="2024-01-01T00:00:00Z", created_by="x", empty_layer=True),),
        extra={"moby.buildkit.buildinfo.v1": "e30="},
    )
    data = c.to_json()
    validate("config", data)
    back = ImageConfig.from_json(data)
    assert back == c
    assert back.to_json() == data


def test_schema_rejects_a_bad_manifest() -> None:
    bad = json.loads(_manifest().to_json())
    bad["config"]["digest"] = "no-colon"
    with pytest.raises(jsonschema.ValidationError):
        validate("manifest", bad)


def test_docker_manifest_and_list_parse() -> None:
    m = {
        "schemaVersion": 2,
        "mediaType": mediatypes.DOCKER_MANIFEST,
        "config": {"mediaType": mediatypes.DOCKER_CONFIG, "digest": D1, "size": 6},
        "layers": [{"mediaType": mediatypes.DOCKER_LAYER_GZIP, "digest": D2, "size": 5}],
    }
    doc = parse_document(json.dumps(m).encode())
    assert isinstance(doc, Manifest) and doc.media_type == mediatypes.DOCKER_MANIFEST
    lst = {"schemaVersion": 2, "mediaType": mediatypes.DOCKER_MANIFEST_LIST, "manifests": []}
    assert isinstance(parse_document(json.dumps(lst).encode()), Index)


@pytest.mark.parametrize(
    "doc",
    [
        b"not json",
        b"[]",
        b'{"schemaVersion": 1}',
        b'{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json"}',
        b'{"schemaVersion": 2, "config": {"digest": "sha256:00", "size": 1}}',
        b'{"schemaVersion": 2, "config": {"digest": "' + D1.encode() + b'", "size": -1}}',
    ],
)
def test_invalid_documents_are_refused(doc: bytes) -> None:
    with pytest.raises(InvalidArgument):
        parse_document(doc)


def test_platform_parse_and_host() -> None:
    assert str(Platform.parse("linux/arm/v7")) == "linux/arm/v7"
    with pytest.raises(InvalidArgument):
        Platform.parse("linux")
    assert Platform.host().os == "linux"


def test_layer_compression_from_media_type() -> None:
    assert mediatypes.layer_compression(mediatypes.DOCKER_LAYER_GZIP) == "gzip"
    assert mediatypes.layer_compression(mediatypes.OCI_LAYER_ZSTD) == "zstd"
    assert mediatypes.layer_compression(mediatypes.OCI_LAYER) == "none"
