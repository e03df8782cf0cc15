"""A container's mounts besides its root: bind mounts, named and anonymous volumes, tmpfs.

At create time (`normalize`), every volume the container needs gets a name: `-v /path` and the
image's VOLUME entries become anonymous volumes (a random name, Docker's anonymous label), so
the record says exactly which volumes it uses. At start (`spec_mounts`), named volumes are
created if missing and filled from the image on first use (copy-up), then bind-mounted.
`-v NAME:/path` vs `-v /host:/path`: a source starting with `/` is a host path.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from dockyard.errors import InvalidArgument

if TYPE_CHECKING:
    from dockyard.container.model import Container
    from dockyard.engine import Engine


def _split(bind: str) -> tuple[str, str, str]:
    parts = bind.split(":")
    if len(parts) == 1:
        return "", parts[0], "rw"
    if len(parts) in (2, 3) and parts[1]:
        return parts[0], parts[1], parts[2] if len(parts) == 3 else "rw"
    raise InvalidArgument(f"invalid volume specification: '{bind}'")


def normalize(engine: Engine, host_config: dict[str, Any], image_volumes: dict[str, Any]) -> None:
    """Name every volume of a new container (creating anonymous ones), in place."""
    binds = []
    targets = set()
    for b in host_config.get("Binds") or []:
        src, dst, mode = _split(b)
        if not dst.startswith("/"):
            raise InvalidArgument(
                f"invalid volume specification: '{b}': invalid mount config for type "
                '"volume": invalid mount path: '
                f"'{dst}' mount path must be absolute"
            )
        if not src:
            src = engine.volumes.create().name
        binds.append(f"{src}:{dst}:{mode}")
        targets.add(dst.rstrip("/") or "/")
    for path in image_volumes or {}:
        if (path.rstrip("/") or "/") not in targets and path not in (
            host_config.get("Tmpfs") or {}
        ):
            binds.append(f"{engine.volumes.create().name}:{path}:rw")
    host_config["Binds"] = binds or None


def volume_names(c: Container) -> list[str]:
    out = []
    for b in c.host_config.get("Binds") or []:
        src, _dst, _mode = _split(b)
        if src and not src.startswith("/"):
            out.append(src)
    return out


def spec_mounts(engine: Engine, c: Container, rootfs: Path) -> list[dict[str, Any]]:
    """OCI mounts for the container's binds, volumes and tmpfs (rootfs already mounted)."""
    out: list[dict[str, Any]] = []
    for b in c.host_config.get("Binds") or []:
        src, dst, mode = _split(b)
        opts = mode.split(",")
        if not src.startswith("/"):
            from dockyard.volume.copyup import resolve_in_rootfs

            copy_from = None if "nocopy" in opts else resolve_in_rootfs(rootfs, dst)
            src = str(engine.volumes.prepare_mount(src, copy_from, create=True))
        elif not Path(src).exists():
            Path(src).mkdir(parents=True)  # Docker creates a missing bind source directory
        out.append(
            {
                "destination": dst,
                "type": "bind",
                "source": src,
                "options": ["rbind", "ro" if "ro" in opts else "rw"],
            }
        )
    for dst, topts in (c.host_config.get("Tmpfs") or {}).items():
        o = ["nosuid", "nodev", "noexec", *[x for x in str(topts).split(",") if x]]
        out.append({"destination": dst, "type": "tmpfs", "source": "tmpfs", "options": o})
    return out


def remove_anonymous(engine: Engine, names: list[str]) -> None:
    """Remove the anonymous volumes among `names` (for `rm -v` and `--rm`)."""
    from dockyard.errors import DockyardError

    for n in names:
        try:
            v = engine.volumes.get(n)
            if v.anonymous:
                engine.volumes.remove(n)
        except DockyardError:
            pass
