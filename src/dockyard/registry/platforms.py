"""Platform normalisation and selection of one manifest from an index / manifest list.

Normalisation follows containerd's: `x86_64`→`amd64`, `aarch64`→`arm64` (variant `v8` by
default), `armhf`→`arm/v7`, `armel`→`arm/v6`, `i386`→`386`; a missing arm variant is `v7`.
Selection prefers an exact (normalised) match; an `arm` request also accepts older variants
(v7 runs v6 and v5 images), best first. Entries without a platform are taken only when they are
the index's sole image manifest; attestation manifests (`unknown/unknown`) are never chosen.
"""

from __future__ import annotations

import platform as _host

from dockyard.errors import NotFound
from dockyard.oci import mediatypes
from dockyard.oci.types import Descriptor, Index, Platform

_ARCH_ALIASES = {
    "x86_64": ("amd64", None),
    "x86-64": ("amd64", None),
    "amd64": ("amd64", None),
    "aarch64": ("arm64", None),
    "arm64": ("arm64", None),
    "armhf": ("arm", "v7"),
    "armel": ("arm", "v6"),
    "armv7l": ("arm", "v7"),
    "armv6l": ("arm", "v6"),
    "i386": ("386", None),
    "i686": ("386", None),
    "386": ("386", None),
}


def normalize(p: Platform) -> Platform:
    os_name = (p.os or "").lower()
    arch, implied = _ARCH_ALIASES.get((p.architecture or "").lower(), (p.architecture, None))
    variant = (p.variant or implied or "").lower() or None
    if variant and variant.isdigit():
        variant = "v" + variant
    if arch == "arm64" and variant in (None, "8"):
        variant = "v8"
    elif arch == "arm" and variant is None:
        variant = "v7"
    elif arch == "amd64" and variant == "v1":
        variant = None
    return Platform(os=os_name, architecture=arch, variant=variant, os_version=p.os_version)


def default_platform() -> Platform:
    """The host's platform (linux/amd64 on this machine)."""
    return normalize(Platform(os="linux", architecture=_host.machine() or "amd64"))


def _arm_fallbacks(variant: str | None) -> list[str | None]:
    order = ["v8", "v7", "v6", "v5"]
    if variant in order:
        return list(order[order.index(variant) :])
    return [variant]


def _is_image(d: Descriptor) -> bool:
    return d.media_type in mediatypes.MANIFESTS or d.media_type in mediatypes.INDEXES


def _is_attestation(d: Descriptor) -> bool:
    ann = d.annotations or {}
    if ann.get("vnd.docker.reference.type") == "attestation-manifest":
        return True
    return d.platform is not None and d.platform.os == "unknown"


def select_manifest(index: Index, want: Platform | None = None) -> Descriptor:
    """The index entry to pull for `want` (default: the host platform)."""
    want = normalize(want or default_platform())
    entries = [d for d in index.manifests if _is_image(d) and not _is_attestation(d)]
    with_platform = [(d, normalize(d.platform)) for d in entries if d.platform is not None]
    accepted = [want.variant]
    if want.architecture == "arm":
        accepted = _arm_fallbacks(want.variant)
    for variant in accepted:
        for d, p in with_platform:
            same = p.os == want.os and p.architecture == want.architecture
            if same and (want.variant is None or p.variant == variant):
                return d
    if len(entries) == 1 and entries[0].platform is None:
        return entries[0]
    available = ", ".join(str(p) for _, p in with_platform) or "none"
    raise NotFound(
        f"no matching manifest for {want} in the manifest list entries (available: {available})"
    )
