"""Build a container's OCI runtime spec from its record and its image (pure data, no I/O
except reading the image's /etc/passwd and /etc/group inside the rootfs).

Defaults are Docker's: the default capability set, masked and read-only /proc paths, private
pid/ipc/uts/mount namespaces, /dev as tmpfs with the standard devices, cgroup at
/dockyard/<id>, RLIMIT_NOFILE clamped to what this host allows. `--privileged` means what it
means in Docker: every capability, no masked or read-only paths, /sys writable, no seccomp.
`--init` (HostConfig.Init) is Docker's too: the host's init binary (tini) bind-mounted read-only
at /sbin/docker-init, running as PID 1 with the container's command as its child.
"""

from __future__ import annotations

import os
import resource
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dockyard.container.model import Container
from dockyard.errors import InvalidArgument

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DEFAULT_CAPS = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
)  # fmt: skip
MASKED = (
    "/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
    "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
    "/sys/firmware", "/sys/devices/virtual/powercap",
)  # fmt: skip
INIT_IN_CONTAINER = "/sbin/docker-init"
# Where `--init` looks for the host's init binary after config.json's `init-path`. Debian's
# `tini` package ships tini-static, which also runs in images without a libc (FROM scratch).
INIT_CANDIDATES = ("/usr/bin/docker-init", "/usr/bin/tini-static", "/usr/bin/tini")
READONLY = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")
_NOSUID = ["nosuid", "noexec", "nodev"]
# Docker's default device cgroup rules: deny all, then the standard devices and pty/tty.
_DEVICE_RULES = [
    {"allow": False, "access": "rwm"},
    {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"},  # null
    {"allow": True, "type": "c", "major": 1, "minor": 5, "access": "rwm"},  # zero
    {"allow": True, "type": "c", "major": 1, "minor": 7, "access": "rwm"},  # full
    {"allow": True, "type": "c", "major": 1, "minor": 8, "access": "rwm"},  # random
    {"allow": True, "type": "c", "major": 1, "minor": 9, "access": "rwm"},  # urandom
    {"allow": True, "type": "c", "major": 5, "minor": 0, "access": "rwm"},  # tty
    {"allow": True, "type": "c", "major": 5, "minor": 1, "access": "rwm"},  # console
    {"allow": True, "type": "c", "major": 5, "minor": 2, "access": "rwm"},  # ptmx
    {"allow": True, "type": "c", "major": 136, "access": "rwm"},  # pts
    {"allow": False, "type": "c", "major": 10, "minor": 229, "access": "rwm"},  # fuse
]


def all_caps() -> list[str]:
    from dockyard.linux.caps import CAPABILITIES, last_cap

    return [f"CAP_{n}" for n in CAPABILITIES[: last_cap() + 1]]


def _cap_name(name: str) -> str:
    n = name.upper()
    return n if n.startswith("CAP_") else f"CAP_{n}"


def capabilities(hc: dict[str, Any]) -> list[str]:
    if hc.get("Privileged"):
        return all_caps()
    caps = list(DEFAULT_CAPS)
    add = [_cap_name(c) for c in hc.get("CapAdd") or []]
    drop = [_cap_name(c) for c in hc.get("CapDrop") or []]
    if "CAP_ALL" in add:
        caps = all_caps()
    if "CAP_ALL" in drop:
        caps = []
    known = set(all_caps())
    for c in add:
        if c != "CAP_ALL":
            if c not in known:
                raise InvalidArgument(f"unknown capability: {c!r}")
            if c not in caps:
                caps.append(c)
    return [c for c in caps if c not in drop]


def _read_db(rootfs: Path, name: str) -> list[list[str]]:
    """Lines of /etc/passwd or /etc/group inside `rootfs`, its symlinks resolved in scope
    (an image's absolute link never reaches the host's file)."""
    from dockyard.linux.rootpath import secure_join

    try:
        with open(
            secure_join(str(rootfs), f"/etc/{name}"), encoding="utf-8", errors="replace"
        ) as f:
            return [line.rstrip("\n").split(":") for line in f if line.strip() and ":" in line]
    except OSError:
        return []


def resolve_user(rootfs: Path, user: str) -> tuple[int, int, list[int], str]:
    """Docker's user resolution: name|uid[:group|gid] → (uid, gid, additional gids, home)."""
    spec_user, _, spec_group = (user or "root").partition(":")
    passwd = _read_db(rootfs, "passwd")
    groups = _read_db(rootfs, "group")
    uid = gid = -1
    home = "/"
    uname = ""
    for e in passwd:
        if len(e) >= 7 and (e[0] == spec_user or e[2] == spec_user):
            uid, gid, home, uname = int(e[2]), int(e[3]), e[5] or "/", e[0]
            break
    if uid < 0:
        if not spec_user.isdigit():
            raise InvalidArgument(
                f"unable to find user {spec_user}: no matching entries in passwd file"
            )
        uid, gid = int(spec_user), 0
    if spec_group:
        for e in groups:
            if len(e) >= 3 and (e[0] == spec_group or e[2] == spec_group):
                gid = int(e[2])
                break
        else:
            if not spec_group.isdigit():
                raise InvalidArgument(
                    f"unable to find group {spec_group}: no matching entries in group file"
                )
            gid = int(spec_group)
    extra: list[int] = []
    if uname:
        for e in groups:
            if len(e) >= 4 and uname in e[3].split(",") and int(e[2]) != gid:
                extra.append(int(e[2]))
    return uid, gid, extra, home


def environment(c: Container, image_env: list[str], hostname: str, home: str) -> list[str]:
    env: dict[str, str] = {}
    for e in [*image_env, *(c.config.get("Env") or [])]:
        k, _, v = e.partition("=")
        env[k] = v
    out = {"PATH": DEFAULT_PATH, "HOSTNAME": hostname}
    if c.config.get("Tty"):
        out["TERM"] = "xterm"
    out.update(env)
    out.setdefault("HOME", home)
    return [f"{k}={v}" for k, v in out.items()]


def _nofile() -> dict[str, Any]:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    lim = 1048576 if hard == resource.RLIM_INFINITY else min(1048576, hard)
    return {"type": "RLIMIT_NOFILE", "soft": lim, "hard": lim}


def _rlimits(hc: dict[str, Any]) -> list[dict[str, Any]]:
    out = {"RLIMIT_NOFILE": _nofile()}
    for u in hc.get("Ulimits") or []:
        t = "RLIMIT_" + str(u["Name"]).upper()
        out[t] = {"type": t, "soft": int(u["Soft"]), "hard": int(u["Hard"])}
    return list(out.values())


def resources(hc: dict[str, Any]) -> dict[str, Any]:
    r: dict[str, Any] = {"devices": [{"allow": True, "access": "rwm"}]}
    if not hc.get("Privileged"):
        r["devices"] = [dict(x) for x in _DEVICE_RULES]
    mem: dict[str, Any] = {}
    if hc.get("Memory"):
        mem["limit"] = int(hc["Memory"])
        swap = hc.get("MemorySwap")
        if swap is not None and int(swap) != 0:
            mem["swap"] = int(swap)  # -1 = unlimited
        else:
            mem["swap"] = 2 * int(hc["Memory"])  # Docker: swap = memory by default
    if hc.get("MemoryReservation"):
        mem["reservation"] = int(hc["MemoryReservation"])
    if mem:
        r["memory"] = mem
    cpu: dict[str, Any] = {}
    if hc.get("NanoCpus"):
        cpu["period"] = 100000
        cpu["quota"] = int(hc["NanoCpus"]) * 100000 // 1_000_000_000
    if hc.get("CpuShares"):
        cpu["shares"] = int(hc["CpuShares"])
    if hc.get("CpuQuota"):
        cpu["quota"] = int(hc["CpuQuota"])
    if hc.get("CpuPeriod"):
        cpu["period"] = int(hc["CpuPeriod"])
    if hc.get("CpusetCpus"):
        cpu["cpus"] = str(hc["CpusetCpus"])
    if hc.get("CpusetMems"):
        cpu["mems"] = str(hc["CpusetMems"])
    if cpu:
        r["cpu"] = cpu
    if hc.get("PidsLimit") and int(hc["PidsLimit"]) > 0:
        r["pids"] = {"limit": int(hc["PidsLimit"])}
    if hc.get("BlkioWeight"):
        r["blockIO"] = {"weight": int(hc["BlkioWeight"])}
    return r


def default_mounts(hc: dict[str, Any], shm_size: int = 64 << 20) -> list[dict[str, Any]]:
    sys_opts = [*_NOSUID] if hc.get("Privileged") else [*_NOSUID, "ro"]
    return [
        {"destination": "/proc", "type": "proc", "source": "proc", "options": _NOSUID},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": sys_opts},
        {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
         "options": [*_NOSUID, "relatime", "ro"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": _NOSUID},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
         "options": [*_NOSUID, "mode=1777", f"size={shm_size // 1024}k"]},
    ]  # fmt: skip


def init_binary(hc: Mapping[str, Any], settings: Mapping[str, object]) -> str | None:
    """The host path of the init binary for a container that asks for one (`--init`, or
    config.json's `"init": true` when HostConfig.Init is unset), else None.

    Looked for at config.json's `init-path` (Docker's daemon.json key), then INIT_CANDIDATES.
    """
    wanted = hc.get("Init")
    if wanted is None:
        wanted = settings.get("init") is True
    if not wanted:
        return None
    configured = settings.get("init-path")
    if isinstance(configured, str) and configured:
        if not os.access(configured, os.X_OK):
            raise InvalidArgument(
                f"--init: the init binary {configured} (init-path in config.json) is missing "
                "or not executable"
            )
        return configured
    for path in INIT_CANDIDATES:
        if os.access(path, os.X_OK):
            return path
    raise InvalidArgument(
        "--init needs an init binary on the host: install Debian's `tini` package "
        "(apt-get install tini) or set init-path in config.json "
        f"(looked at {', '.join(INIT_CANDIDATES)})"
    )


def _with_init(args: list[str], init: str | None) -> tuple[list[str], list[dict[str, Any]]]:
    """The process args and extra mounts for running `args` under the init binary `init`."""
    if init is None:
        return args, []
    mount = {"destination": INIT_IN_CONTAINER, "type": "bind", "source": init,
             "options": ["bind", "ro"]}  # fmt: skip
    return [INIT_IN_CONTAINER, "--", *args], [mount]


def build_spec(
    c: Container,
    image_config: dict[str, Any],
    rootfs: Path,
    *,
    netns: str | None,
    extra_mounts: list[dict[str, Any]] | None = None,
    seccomp: dict[str, Any] | None = None,
    init: str | None = None,
) -> dict[str, Any]:
    """The OCI runtime spec (config.json) for `c`, its root at `rootfs` (already mounted).

    `netns`: a path to join, "" for a new empty namespace, None to share the host's.
    `init`: the host's init binary (`init_binary`) to run the command under, or None.
    """
    hc = c.host_config
    cfg = c.config
    if not c.command:
        raise InvalidArgument("no command specified")
    args, init_mounts = _with_init(c.command, init)
    hostname = cfg.get("Hostname") or c.id[:12]
    uid, gid, extra_gids, home = resolve_user(rootfs, cfg.get("User") or "")
    caps = capabilities(hc)
    privileged = bool(hc.get("Privileged"))
    process: dict[str, Any] = {
        "terminal": bool(cfg.get("Tty")),
        "user": {"uid": uid, "gid": gid, "additionalGids": extra_gids},
        "args": args,
        "env": environment(c, image_config.get("Env") or [], hostname, home),
        "cwd": cfg.get("WorkingDir") or "/",
        "capabilities": {
            "bounding": caps,
            "effective": caps,
            "permitted": caps,
        },
        "rlimits": _rlimits(hc),
        "noNewPrivileges": "no-new-privileges" in (hc.get("SecurityOpt") or [])
        or "no-new-privileges:true" in (hc.get("SecurityOpt") or []),
    }
    if uid != 0:
        # Docker gives a non-root user no effective or permitted capabilities.
        process["capabilities"]["effective"] = []
        process["capabilities"]["permitted"] = []
    size = hc.get("ConsoleSize") or []  # Docker's [height, width], set by `run -t`
    valid = len(size) == 2 and all(type(n) is int and 0 < n < 65536 for n in size)
    if process["terminal"] and valid:
        process["consoleSize"] = {"height": size[0], "width": size[1]}
    namespaces: list[dict[str, str]] = [{"type": t} for t in ("pid", "ipc", "uts", "mount")]
    if netns is not None:
        namespaces.append({"type": "network", "path": netns} if netns else {"type": "network"})
    linux: dict[str, Any] = {
        "namespaces": namespaces,
        "cgroupsPath": f"/dockyard/{c.id}",
        "resources": resources(hc),
    }
    if not privileged:
        linux["maskedPaths"] = list(MASKED)
        linux["readonlyPaths"] = list(READONLY)
        if seccomp is not None:
            linux["seccomp"] = seccomp
    if hc.get("Sysctls"):
        linux["sysctl"] = dict(hc["Sysctls"])
    spec: dict[str, Any] = {
        "ociVersion": "1.0.2",
        "process": process,
        "root": {"path": str(rootfs), "readonly": bool(hc.get("ReadonlyRootfs"))},
        "hostname": hostname,
        "mounts": [*default_mounts(hc), *init_mounts, *(extra_mounts or [])],
        "linux": linux,
    }
    if cfg.get("Domainname"):
        spec["domainname"] = cfg["Domainname"]
    return spec
