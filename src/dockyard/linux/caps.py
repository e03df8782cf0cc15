"""Linux capabilities: OCI names to numbers, and applying the five OCI sets to a process.

Responsibility: translate `process.capabilities` (names like "CAP_KILL") to bit masks and apply
them through a `Kernel`: drop the bounding set, set effective/permitted/inheritable with capset,
then the ambient set. Invariants: unknown names raise `InvalidArgument`; capabilities the running
kernel does not know (above cap_last_cap) are skipped, as runc does; ambient raises that the
kernel refuses (not permitted+inheritable) are ignored, as runc does.
"""

from __future__ import annotations

from dockyard.errors import InvalidArgument
from dockyard.linux.kernel import (
    PR_CAP_AMBIENT,
    PR_CAP_AMBIENT_CLEAR_ALL,
    PR_CAP_AMBIENT_RAISE,
    PR_CAPBSET_DROP,
)

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (startup time)

if TYPE_CHECKING:
    from dockyard.linux.kernel import Kernel

CAPABILITIES: tuple[str, ...] = (
    "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID",
    "SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW",
    "IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT",
    "SYS_ADMIN", "SYS_BOOT", "SYS_NICE", "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD",
    "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG",
    "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF", "CHECKPOINT_RESTORE",
)  # fmt: skip
_NUMBERS = {f"CAP_{name}": i for i, name in enumerate(CAPABILITIES)}
SETS = ("bounding", "effective", "permitted", "inheritable", "ambient")


def last_cap() -> int:
    """The highest capability number the running kernel knows."""
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            return int(f.read())
    except OSError:
        return len(CAPABILITIES) - 1


def cap_number(name: str) -> int:
    try:
        return _NUMBERS[name.upper()]
    except KeyError:
        raise InvalidArgument(
            f"unknown capability {name!r}: expected a name like CAP_KILL"
        ) from None


def mask(names: list[str] | None, limit: int) -> int:
    """Bit mask of `names`, keeping only capabilities <= `limit`."""
    bits = 0
    for name in names or []:
        n = cap_number(name)
        if n <= limit:
            bits |= 1 << n
    return bits


def masks(capabilities: dict[str, list[str]] | None, limit: int) -> dict[str, int]:
    """The five OCI sets as bit masks (absent sets are empty)."""
    caps = capabilities or {}
    for key in caps:
        if key not in SETS:
            raise InvalidArgument(f"unknown capability set {key!r}: expected one of {SETS}")
    return {key: mask(caps.get(key), limit) for key in SETS}


def drop_bounding(kernel: Kernel, sets: dict[str, int], limit: int) -> None:
    """Drop from the bounding set what `sets["bounding"]` lacks (needs CAP_SETPCAP: do it first)."""
    for n in range(limit + 1):
        if not (sets["bounding"] >> n) & 1:
            kernel.prctl(PR_CAPBSET_DROP, n)


def set_sets(kernel: Kernel, sets: dict[str, int], limit: int) -> None:
    """capset the effective/permitted/inheritable sets, then raise the ambient set."""
    kernel.capset(sets["effective"], sets["permitted"], sets["inheritable"])
    try:
        kernel.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL)
    except OSError:
        return
    for n in range(limit + 1):
        if (sets["ambient"] >> n) & 1:
            try:
                kernel.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, n)
            except OSError:
                continue


def apply(kernel: Kernel, sets: dict[str, int], limit: int) -> None:
    """Make the calling process's capabilities exactly `sets` (see `masks`)."""
    drop_bounding(kernel, sets, limit)
    set_sets(kernel, sets, limit)


def status_hex(bits: int) -> str:
    """A mask as /proc/PID/status prints it (CapEff: 0000000020000420)."""
    return f"{bits:016x}"
