"""Validate documents against the OCI image-spec JSON schemas in ../shared/conformance.

The schemas are draft-04 with `id`s that nest; every `$ref` resolves against the enclosing
`id`, so the retriever serves a schema file by the last path segment of any URI it is asked
for. Tests skip when the conformance data is not beside the checkout.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest

SCHEMAS = (
    Path(__file__).resolve().parents[1].parent / "shared" / "conformance" / "oci-image-schemas"
)
FILES = {
    "manifest": "image-manifest-schema.json",
    "index": "image-index-schema.json",
    "config": "config-schema.json",
    "layout": "image-layout-schema.json",
    "descriptor": "content-descriptor.json",
}


@cache
def _validator(kind: str) -> Any:
    import jsonschema
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT4

    def retrieve(uri: str) -> Resource[Any]:
        name = uri.rstrip("/").rsplit("/", 1)[-1]
        return Resource.from_contents(json.loads((SCHEMAS / name).read_text()), DRAFT4)

    schema = json.loads((SCHEMAS / FILES[kind]).read_text())
    return jsonschema.Draft4Validator(schema, registry=Registry(retrieve=retrieve))  # type: ignore[call-arg]


def validate(kind: str, doc: bytes | dict[str, Any]) -> None:
    if not SCHEMAS.is_dir():
        pytest.skip("OCI schemas not found beside the checkout (../shared/conformance)")
    obj = json.loads(doc) if isinstance(doc, bytes) else doc
    _validator(kind).validate(obj)
