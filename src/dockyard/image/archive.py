"""Image archives (layer L2): `docker save` / `docker load` tars — the shared vocabulary.

The archive we write is what Docker ≥ 25 writes: an OCI image layout (`oci-layout`,
`index.json`, `blobs/<alg>/<hex>`) that also carries Docker's legacy `manifest.json` and
`repositories`, so that old and new readers (docker, podman, skopeo, umoci) all accept it.
Writing lives in `archive_save`, reading in `archive_load`; this module holds the names and
helpers both sides use, and the two entry points.

Invariants:
- Blob paths are always `blobs/<algorithm>/<hex>` and name the digest of the bytes stored there.
- Only pure path and naming logic here; no I/O.
"""

from __future__ import annotations

import posixpath
import re

from dockyard.digest import Digest
from dockyard.errors import InvalidArgument

OCI_LAYOUT_FILE = "oci-layout"
OCI_INDEX_FILE = "index.json"
DOCKER_MANIFEST_FILE = "manifest.json"
REPOSITORIES_FILE = "repositories"

# index.json annotations, as Docker (through containerd) and the OCI image-layout spec name them
ANNOTATION_IMAGE_NAME = "io.containerd.image.name"
ANNOTATION_REF_NAME = "org.opencontainers.image.ref.name"

_BLOB_RE = re.compile(r"blobs/(sha256|sha512)/([0-9a-f]+)")


def blob_path(digest: str) -> str:
    """`blobs/sha256/<hex>` for a digest (forward slashes on every OS, as Docker writes)."""
    d = Digest.parse(digest)
    return f"blobs/{d.algorithm}/{d.hex}"


def blob_digest(path: str) -> Digest | None:
    """The digest a `blobs/<alg>/<hex>` path names, or None for any other path."""
    m = _BLOB_RE.fullmatch(path)
    if m is None:
        return None
    return Digest.parse(f"{m.group(1)}:{m.group(2)}")


def clean_member_name(name: str) -> str:
    """An archive member name as a clean relative path (`./a//b` → `a/b`); refuse escapes."""
    p = posixpath.normpath("/" + name.replace("\\", "/")).lstrip("/")
    if "\0" in p:
        raise InvalidArgument(f"invalid archive member name {name!r}")
    return p


def resolve_link(base: str, target: str) -> str:
    """Where a symlink member at `base` pointing at `target` leads, as an archive path."""
    if target.startswith("/"):
        return clean_member_name(target)
    return clean_member_name(posixpath.join(posixpath.dirname(base), target))
