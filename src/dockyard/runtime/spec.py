"""Reading OCI bundles and the parts of config.json the runtime acts on (pure, except `load`).

Responsibility: load `<bundle>/config.json`, check what the native runtime needs before any
process exists (ociVersion, process.args, root.path, namespace types), and compute derived
values: clone flags, joined namespace paths, the rootfs path, the state object given to hooks.
`default_spec()` is what `dockyard-runtime spec` writes, modelled on `runc spec`.

Invariants: errors name the bundle and the field (`InvalidArgument`); nothing here touches
the kernel.
"""

from __future__ import annotations

import os

from dockyard.errors import InvalidArgument, NotFound
from dockyard.linux.kernel import NAMESPACES
from dockyard.runtime import jsonio

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (startup time)
if TYPE_CHECKING:
    from typing import Any

OCI_VERSION = "1.0.2"
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_CAP_SETS = ("bounding", "effective", "permitted", "ambient")
if TYPE_CHECKING:
    Spec = dict[str, Any]


def load(bundle: str) -> Spec:
    path = os.path.join(bundle, "config.json")
    try:
        with open(path) as f:
            text = f.read()
    except FileNotFoundError:
        raise NotFound(f"{path} does not exist: is {bundle!r} an OCI bundle?") from None
    try:
        spec: Spec = jsonio.loads(text)
    except ValueError as e:
        raise InvalidArgument(f"{path}: {e}") from None
    check(spec, path)
    return spec


def check(spec: Spec, where: str = "config.json") -> None:
    if not isinstance(spec, dict) or "ociVersion" not in spec:
        raise InvalidArgument(f"{where}: ociVersion is missing")
    process = spec.get("process")
    if not isinstance(process, dict) or not process.get("args"):
        raise InvalidArgument(f"{where}: process.args must name the program to run")
    if not (spec.get("root") or {}).get("path"):
        raise InvalidArgument(f"{where}: root.path is missing")
    for ns in namespaces(spec):
        if ns.get("type") not in NAMESPACES:
            raise InvalidArgument(f"{where}: unknown namespace type {ns.get('type')!r}")


def namespaces(spec: Spec) -> list[dict[str, str]]:
    ns: list[dict[str, str]] = (spec.get("linux") or {}).get("namespaces") or []
    return ns


def has_namespace(spec: Spec, kind: str) -> bool:
    return any(ns.get("type") == kind for ns in namespaces(spec))


def new_namespace_flags(spec: Spec) -> int:
    """clone(2) flags for the namespaces the container gets new (no `path`)."""
    flags = 0
    for ns in namespaces(spec):
        if not ns.get("path"):
            flags |= NAMESPACES[ns["type"]][0]
    return flags


def joined_namespaces(spec: Spec) -> list[tuple[str, str]]:
    """(type, path) of namespaces to join, the user namespace first (as runc's nsexec)."""
    joined = [(ns["type"], ns["path"]) for ns in namespaces(spec) if ns.get("path")]
    return sorted(joined, key=lambda t: t[0] != "user")


def cgroups_path(spec: Spec, container_id: str) -> str:
    """`linux.cgroupsPath`, or the container's ID when there is none (as runc)."""
    path: str = (spec.get("linux") or {}).get("cgroupsPath") or container_id
    return path


def rootfs(spec: Spec, bundle: str) -> str:
    path: str = spec["root"]["path"]
    return os.path.realpath(path if os.path.isabs(path) else os.path.join(bundle, path))


def state_object(
    container_id: str, status: str, pid: int, bundle: str, annotations: dict[str, str] | None
) -> dict[str, Any]:
    """The state JSON of the runtime spec (runtime.md, "State")."""
    state: dict[str, Any] = {
        "ociVersion": OCI_VERSION,
        "id": container_id,
        "status": status,
        "bundle": bundle,
    }
    if status in ("created", "running", "paused", "creating"):
        state["pid"] = pid
    if annotations:
        state["annotations"] = annotations
    return state


# Device cgroup rules runc always adds after the spec's own (specconv's AllowedDevices):
# mknod of anything, and the default devices of the runtime spec, ptys and /dev/net/tun.
_ALLOWED_DEVICES: tuple[tuple[str, int | None, int | None, str], ...] = (
    ("c", None, None, "m"),
    ("b", None, None, "m"),
    ("c", 1, 3, "rwm"),
    ("c", 1, 8, "rwm"),
    ("c", 1, 7, "rwm"),
    ("c", 5, 0, "rwm"),
    ("c", 1, 5, "rwm"),
    ("c", 1, 9, "rwm"),
    ("c", 136, None, "rwm"),
    ("c", 5, 2, "rwm"),
    ("c", 10, 200, "rwm"),
)


def with_default_devices(spec: Spec) -> dict[str, Any]:
    """`linux.resources` with runc's default device rules and `linux.devices` allowed."""
    linux = spec.get("linux") or {}
    resources = dict(linux.get("resources") or {})
    rules = list(resources.get("devices") or [])
    for kind, major, minor, access in _ALLOWED_DEVICES:
        rule: dict[str, Any] = {"allow": True, "type": kind, "access": access}
        if major is not None:
            rule["major"] = major
        if minor is not None:
            rule["minor"] = minor
        rules.append(rule)
    for dev in linux.get("devices") or []:
        rules.append(
            {
                "allow": True,
                "type": dev.get("type", "c"),
                "major": dev.get("major"),
                "minor": dev.get("minor"),
                "access": "rwm",
            }
        )
    resources["devices"] = rules
    return resources


def default_spec() -> Spec:
    """A config.json like `runc spec`: busybox-friendly, read-only root, no terminal."""
    caps = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
    nosuid = ["nosuid", "noexec", "nodev"]
    return {
        "ociVersion": OCI_VERSION,
        "process": {
            "terminal": True,
            "user": {"uid": 0, "gid": 0},
            "args": ["sh"],
            "env": [f"PATH={DEFAULT_PATH}", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {k: list(caps) for k in _CAP_SETS},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": True,
        },
        "root": {"path": "rootfs", "readonly": True},
        "hostname": "dockyard",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": [*nosuid, "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": nosuid},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": [*nosuid, "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
             "options": [*nosuid, "relatime", "ro"]},
        ],
        "linux": {
            "resources": {"devices": [{"allow": False, "access": "rwm"}]},
            "namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount")],
            "maskedPaths": [
                "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware",
                "/proc/scsi",
            ],
            "readonlyPaths": [
                "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
            ],
        },
    }  # fmt: skip
