"""Docker-shaped views of images (layer L2, pure data): `image inspect` JSON, `history` rows,
and the summary the `images` list and the Engine API share."""

from __future__ import annotations

from typing import Any

from dockyard.errors import InvalidArgument
from dockyard.image.model import Image
from dockyard.reference import parse_reference

# The container-config members Docker always shows, in Docker's order, with their zero values.
_CONFIG_DEFAULTS: tuple[tuple[str, Any], ...] = (
    ("Hostname", ""),
    ("Domainname", ""),
    ("User", ""),
    ("AttachStdin", False),
    ("AttachStdout", False),
    ("AttachStderr", False),
    ("Tty", False),
    ("OpenStdin", False),
    ("StdinOnce", False),
    ("Env", None),
    ("Cmd", None),
    ("Image", ""),
    ("Volumes", None),
    ("WorkingDir", ""),
    ("Entrypoint", None),
    ("OnBuild", None),
    ("Labels", None),
)


def familiar(name: str) -> str:
    try:
        return parse_reference(name, default_tag=False).familiar_string()
    except InvalidArgument:
        return name


def container_config(cfg: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, zero in _CONFIG_DEFAULTS:
        out[k] = cfg.get(k, zero)
    for k, v in cfg.items():
        if k not in out:
            out[k] = v
    return out


def inspect_image(
    img: Image, graph: dict[str, str] | None = None, manifest_size: int = 0
) -> dict[str, Any]:
    c = img.config
    return {
        "Id": str(img.id),
        "RepoTags": [familiar(t) for t in img.tags],
        "RepoDigests": [familiar(d) for d in img.repo_digests],
        "Parent": c.extra.get("parent", ""),
        "Comment": _comment(img),
        "Created": img.created or "0001-01-01T00:00:00Z",
        "DockerVersion": c.extra.get("docker_version", ""),
        "Author": c.author or "",
        "Config": container_config(c.config),
        "Architecture": c.architecture,
        **({"Variant": c.variant} if c.variant else {}),
        "Os": c.os,
        "Size": img.size,
        "GraphDriver": {"Data": graph or {}, "Name": "overlay2"},
        "RootFS": {"Type": "layers", "Layers": [str(d) for d in c.diff_ids]},
        "Metadata": {"LastTagTime": "0001-01-01T00:00:00Z"},
        "Descriptor": {
            "mediaType": img.manifest.media_type,
            "digest": str(img.manifest_digest),
            "size": manifest_size,
        },
    }


def _comment(img: Image) -> str:
    if img.config.history:
        return img.config.history[-1].comment or ""
    return ""


def history_rows(img: Image) -> list[dict[str, Any]]:
    """One row per history entry, newest first, as `docker history` lists them.

    The ID column shows the image ID on the newest row and `<missing>` on the others, since
    layers are not images of their own (Docker prints the same for pulled images).
    """
    c = img.config
    sizes = list(_layer_sizes(img))
    rows: list[dict[str, Any]] = []
    li = 0
    for h in c.history:
        size = 0
        if not h.empty_layer:
            size = sizes[li] if li < len(sizes) else 0
            li += 1
        rows.append(
            {
                "Created": h.created or "",
                "CreatedBy": h.created_by or "",
                "Comment": h.comment or "",
                "Size": size,
                "Tags": [],
            }
        )
    if not c.history:
        for s in sizes:
            rows.append(
                {"Created": img.created, "CreatedBy": "", "Comment": "", "Size": s, "Tags": []}
            )
    rows.reverse()
    for i, r in enumerate(rows):
        r["Id"] = str(img.id) if i == 0 else "<missing>"
        if i == 0:
            r["Tags"] = [familiar(t) for t in img.tags]
    return rows


def _layer_sizes(img: Image) -> list[int]:
    return [int(getattr(d, "size", 0)) for d in img.manifest.layers]
