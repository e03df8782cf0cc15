"""OCI / Docker schema-2 documents as frozen dataclasses, parsed from and serialised to JSON.

`from_json` accepts both OCI and Docker shapes (they share field names); `to_json` writes the
OCI shape unless the document's media type is Docker's. Unknown fields are dropped on rewrite,
so code that must keep a document's digest keeps its original bytes instead of re-serialising.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dockyard.digest import Digest
from dockyard.errors import InvalidArgument
from dockyard.oci import canonical, mediatypes


def _obj(data: bytes | dict[str, Any], what: str) -> dict[str, Any]:
    if isinstance(data, dict):
        return data
    try:
        obj = canonical.loads(data)
    except ValueError as e:
        raise InvalidArgument(f"invalid {what} JSON: {e}") from None
    if not isinstance(obj, dict):
        raise InvalidArgument(f"invalid {what}: not a JSON object")
    return obj


_ARCH = {
    "x86_64": ("amd64", None),
    "aarch64": ("arm64", None),
    "armv7l": ("arm", "v7"),
    "armv6l": ("arm", "v6"),
    "i686": ("386", None),
    "ppc64le": ("ppc64le", None),
    "s390x": ("s390x", None),
    "riscv64": ("riscv64", None),
}


@dataclass(frozen=True)
class Platform:
    os: str = "linux"
    architecture: str = "amd64"
    variant: str | None = None
    os_version: str | None = None

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Platform:
        return cls(
            os=d.get("os", ""),
            architecture=d.get("architecture", ""),
            variant=d.get("variant") or None,
            os_version=d.get("os.version") or None,
        )

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"architecture": self.architecture, "os": self.os}
        if self.variant:
            d["variant"] = self.variant
        if self.os_version:
            d["os.version"] = self.os_version
        return d

    def __str__(self) -> str:
        s = f"{self.os}/{self.architecture}"
        return f"{s}/{self.variant}" if self.variant else s

    @classmethod
    def host(cls) -> Platform:
        """The platform of this machine, with Go's architecture names."""
        import os

        m = os.uname().machine
        arch, variant = _ARCH.get(m, (m, None))
        return cls(os="linux", architecture=arch, variant=variant)

    @classmethod
    def parse(cls, s: str) -> Platform:
        parts = s.split("/")
        if len(parts) < 2 or len(parts) > 3 or not all(parts):
            raise InvalidArgument(f"invalid platform {s!r}: expected os/arch[/variant]")
        return cls(
            os=parts[0], architecture=parts[1], variant=parts[2] if len(parts) == 3 else None
        )


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: Digest
    size: int
    annotations: dict[str, str] | None = None
    platform: Platform | None = None
    urls: tuple[str, ...] = ()
    artifact_type: str | None = None

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Descriptor:
        try:
            size = d["size"]
            if not isinstance(size, int) or size < 0:
                raise InvalidArgument(f"invalid descriptor size {size!r}")
            return cls(
                media_type=d.get("mediaType", ""),
                digest=Digest.parse(d["digest"]),
                size=size,
                annotations=d.get("annotations") or None,
                platform=Platform.from_dict(d["platform"]) if d.get("platform") else None,
                urls=tuple(d.get("urls") or ()),
                artifact_type=d.get("artifactType"),
            )
        except KeyError as e:
            raise InvalidArgument(f"invalid descriptor: missing {e.args[0]!r}") from None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "mediaType": self.media_type,
            "digest": str(self.digest),
            "size": self.size,
        }
        if self.annotations:
            d["annotations"] = dict(self.annotations)
        if self.platform:
            d["platform"] = self.platform.to_dict()
        if self.urls:
            d["urls"] = list(self.urls)
        if self.artifact_type:
            d["artifactType"] = self.artifact_type
        return d


@dataclass(frozen=True)
class Manifest:
    config: Descriptor
    layers: tuple[Descriptor, ...]
    media_type: str = mediatypes.OCI_MANIFEST
    annotations: dict[str, str] | None = None
    subject: Descriptor | None = None

    @classmethod
    def from_json(cls, data: bytes | dict[str, Any]) -> Manifest:
        d = _obj(data, "manifest")
        if d.get("schemaVersion") != 2:
            raise InvalidArgument(f"unsupported manifest schemaVersion {d.get('schemaVersion')!r}")
        mt = d.get("mediaType") or mediatypes.OCI_MANIFEST
        if mt not in mediatypes.MANIFESTS:
            raise InvalidArgument(f"not an image manifest: mediaType {mt}")
        if "config" not in d:
            raise InvalidArgument("invalid manifest: missing config")
        return cls(
            config=Descriptor.from_dict(d["config"]),
            layers=tuple(Descriptor.from_dict(x) for x in d.get("layers") or ()),
            media_type=mt,
            annotations=d.get("annotations") or None,
            subject=Descriptor.from_dict(d["subject"]) if d.get("subject") else None,
        )

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "schemaVersion": 2,
            "mediaType": self.media_type,
            "config": self.config.to_dict(),
            "layers": [x.to_dict() for x in self.layers],
        }
        if self.annotations:
            d["annotations"] = dict(self.annotations)
        if self.subject:
            d["subject"] = self.subject.to_dict()
        return d

    def to_json(self) -> bytes:
        return canonical.dumps(self.to_dict())


@dataclass(frozen=True)
class Index:
    manifests: tuple[Descriptor, ...]
    media_type: str = mediatypes.OCI_INDEX
    annotations: dict[str, str] | None = None

    @classmethod
    def from_json(cls, data: bytes | dict[str, Any]) -> Index:
        d = _obj(data, "index")
        if d.get("schemaVersion") != 2:
            raise InvalidArgument(f"unsupported index schemaVersion {d.get('schemaVersion')!r}")
        mt = d.get("mediaType") or mediatypes.OCI_INDEX
        if mt not in mediatypes.INDEXES:
            raise InvalidArgument(f"not an image index: mediaType {mt}")
        return cls(
            manifests=tuple(Descriptor.from_dict(x) for x in d.get("manifests") or ()),
            media_type=mt,
            annotations=d.get("annotations") or None,
        )

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "schemaVersion": 2,
            "mediaType": self.media_type,
            "manifests": [x.to_dict() for x in self.manifests],
        }
        if self.annotations:
            d["annotations"] = dict(self.annotations)
        return d

    def to_json(self) -> bytes:
        return canonical.dumps(self.to_dict())


@dataclass(frozen=True)
class History:
    created: str | None = None
    created_by: str | None = None
    author: str | None = None
    comment: str | None = None
    empty_layer: bool = False

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> History:
        return cls(
            created=d.get("created"),
            created_by=d.get("created_by"),
            author=d.get("author"),
            comment=d.get("comment"),
            empty_layer=bool(d.get("empty_layer", False)),
        )

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {}
        for k in ("created", "created_by", "author", "comment"):
            v = getattr(self, k)
            if v is not None:
                d[k] = v
        if self.empty_layer:
            d["empty_layer"] = True
        return d


@dataclass(frozen=True)
class ImageConfig:
    """The image configuration document (what an image ID is the digest of).

    `config` is the container config (`User`, `Env`, `Cmd`, `Entrypoint`, `WorkingDir`,
    `ExposedPorts`, `Volumes`, `Labels`, `StopSignal`, `Healthcheck`, `OnBuild`, `Shell`, ...)
    kept as a dict with Docker's field names, since Docker's schema has many optional members.
    """

    diff_ids: tuple[Digest, ...]
    architecture: str = "amd64"
    os: str = "linux"
    variant: str | None = None
    created: str | None = None
    author: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    history: tuple[History, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: bytes | dict[str, Any]) -> ImageConfig:
        d = _obj(data, "image config")
        rootfs = d.get("rootfs") or {}
        if rootfs.get("type") != "layers":
            raise InvalidArgument("invalid image config: rootfs.type must be 'layers'")
        known = {
            "architecture",
            "os",
            "variant",
            "created",
            "author",
            "config",
            "rootfs",
            "history",
        }
        return cls(
            diff_ids=tuple(Digest.parse(x) for x in rootfs.get("diff_ids") or ()),
            architecture=d.get("architecture", ""),
            os=d.get("os", ""),
            variant=d.get("variant") or None,
            created=d.get("created"),
            author=d.get("author"),
            config=dict(d.get("config") or {}),
            history=tuple(History.from_dict(h) for h in d.get("history") or ()),
            extra={k: v for k, v in d.items() if k not in known},
        )

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = dict(self.extra)
        d.update(
            {
                "architecture": self.architecture,
                "os": self.os,
                "config": self.config,
                "rootfs": {"type": "layers", "diff_ids": [str(x) for x in self.diff_ids]},
                "history": [h.to_dict() for h in self.history],
            }
        )
        if self.variant:
            d["variant"] = self.variant
        if self.created:
            d["created"] = self.created
        if self.author:
            d["author"] = self.author
        return d

    def to_json(self) -> bytes:
        return canonical.dumps(self.to_dict())

    @property
    def platform(self) -> Platform:
        return Platform(os=self.os, architecture=self.architecture, variant=self.variant)


def parse_document(data: bytes) -> Manifest | Index:
    """Parse a manifest or an index, telling them apart by mediaType or shape."""
    d = _obj(data, "manifest")
    mt = d.get("mediaType")
    if mt in mediatypes.INDEXES or (mt is None and "manifests" in d):
        return Index.from_json(d)
    return Manifest.from_json(d)
