"""Build platforms (layer L4): `build --platform`, `FROM --platform`, and what can run here.

`normalize(text)` turns a platform as users write it into containerd's normal form
`os/arch[/variant]` (`x86_64` → `amd64`, `aarch64` and `arm64/v8` → `arm64`, `armhf` →
`arm/v7`, a lone `arm64` → `linux/arm64`, a lone `linux` → this host's architecture).
`host()` is this machine's platform. `image_matches(os, arch, variant, platform)` says whether an
image config is for a platform. `check_run(platform)` lets a RUN step execute only when the
host runs that platform natively (`linux/386` on amd64 included) or a binfmt_misc handler for
it (qemu-user) is registered; otherwise the step fails with an error saying emulation is not
available. A stage for a foreign platform can still be built when nothing in it executes (FROM
an image for that platform, COPY, ADD, metadata), as BuildKit does.

Invariants: pure except `check_run`, which only reads /proc; every malformed platform raises
`InvalidArgument`.
"""

from __future__ import annotations

import os

from dockyard.errors import FailedPrecondition, InvalidArgument

_OSES = ("linux", "windows", "darwin", "freebsd")
_ARCHES = {
    "x86_64": ("amd64", ""),
    "x86-64": ("amd64", ""),
    "amd64": ("amd64", ""),
    "aarch64": ("arm64", ""),
    "arm64": ("arm64", ""),
    "armhf": ("arm", "v7"),
    "armel": ("arm", "v6"),
    "arm": ("arm", ""),
    "i386": ("386", ""),
    "i686": ("386", ""),
    "386": ("386", ""),
}
_QEMU = {"amd64": "x86_64", "arm64": "aarch64", "arm": "arm", "386": "i386"}


def _arch(arch: str, variant: str) -> tuple[str, str]:
    a, v = _ARCHES.get(arch.lower(), (arch.lower(), ""))
    variant = (v or variant).lower()
    if a == "arm64" and variant in ("8", "v8"):
        variant = ""
    elif a == "arm":
        variant = {"": "v7", "5": "v5", "6": "v6", "7": "v7", "8": "v8"}.get(variant, variant)
    elif a == "amd64" and variant == "v1":
        variant = ""
    return a, variant


def host() -> str:
    m = os.uname().machine
    a, v = _arch(m, "v7" if m == "armv7l" else "v6" if m == "armv6l" else "")
    return f"linux/{a}/{v}" if v else f"linux/{a}"


def normalize(text: str) -> str:
    """`text` in normal form. Raises `InvalidArgument` when malformed or several."""
    if "," in text:
        raise InvalidArgument(
            f"--platform {text}: building for several platforms at once is not supported"
        )
    parts = text.strip().split("/")
    if not all(parts) or len(parts) > 3:
        raise InvalidArgument(f"invalid platform {text!r}: expected os/arch[/variant]")
    if len(parts) == 1:
        if parts[0].lower() in _OSES:
            h = host().split("/")
            parts = [parts[0], *h[1:]]
        else:
            parts = ["linux", parts[0]]
    os_ = parts[0].lower()
    if os_ == "macos":
        os_ = "darwin"
    arch, variant = _arch(parts[1], parts[2] if len(parts) == 3 else "")
    return f"{os_}/{arch}/{variant}" if variant else f"{os_}/{arch}"


def image_matches(os_: str, arch: str, variant: str | None, platform: str) -> bool:
    """Whether an image config (`os`, `architecture`, `variant`) is for `platform`; an image
    that names no architecture matches every platform."""
    if not arch:
        return True
    want = normalize(platform).split("/")
    got = normalize(f"{os_ or 'linux'}/{arch}" + (f"/{variant}" if variant else "")).split("/")
    if want[:2] != got[:2]:
        return False
    return len(want) < 3 or len(got) < 3 or want[2] == got[2]


def native(platform: str) -> bool:
    """Whether this host runs `platform`'s binaries without emulation."""
    p, h = normalize(platform), host()
    return p == h or (p == "linux/386" and h == "linux/amd64")


def emulated(platform: str) -> bool:
    """Whether a binfmt_misc handler (qemu-user) for `platform` is registered and enabled."""
    parts = normalize(platform).split("/")
    name = _QEMU.get(parts[1], parts[1])
    try:
        with open(f"/proc/sys/fs/binfmt_misc/qemu-{name}") as f:
            return f.readline().strip() == "enabled"
    except OSError:
        return False


def check_run(platform: str) -> None:
    """Raise unless a RUN for `platform` can execute on this host."""
    if native(platform) or emulated(platform):
        return
    raise FailedPrecondition(
        f"cannot run a RUN step for platform {normalize(platform)} on this {host()} host: "
        "emulation is not available (no qemu-user binfmt_misc handler is registered). Build "
        f"for {host()}, or keep {normalize(platform)} stages to FROM, COPY and ADD"
    )
