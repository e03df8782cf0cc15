"""OCI `linux.resources` → ordered cgroup file writes (pure; no I/O).

Responsibility: validate the OCI runtime-spec resources JSON and translate it into `Write`s for
cgroup v1 or v2, with the unit conversions runc and crun use (cpu.shares → cpu.weight,
memory+swap → swap, blkio weight → io.weight).

Invariants:
- only values that are given produce writes (None, and 0 where OCI defines 0 as "unset", don't);
- writes come in the order the kernel needs; a write marked `retry_after_next` may fail with
  EINVAL until the next one is done (v1 memsw vs. limit, cfs period vs. quota), and the applier
  retries it then;
- a write lists candidate files; the applier uses the first that exists. `optional` writes are
  skipped when none exists, others raise Unavailable naming the file;
- malformed input raises InvalidArgument naming the OCI field.

Not translated: memory.kernel/kernelTCP (deprecated, ignored as runc does), memory.disableOOMKiller
on v2 (no such knob; ignored), devices on v2 (validated only: v2 needs eBPF), unknown keys
(ignored); network and rdma raise Unavailable when given.
"""

from __future__ import annotations

from _collections_abc import Mapping  # what collections.abc re-exports, without `collections`

from dockyard.errors import InvalidArgument, Unavailable

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (startup time)
if TYPE_CHECKING:
    from typing import Any


class Write:
    """Write `value` to the first existing file of `files` in `controller`'s cgroup.

    A plain class with __slots__ (a NamedTuple would import typing and collections on the
    runtime's start path); compares by value."""

    __slots__ = ("controller", "files", "optional", "retry_after_next", "value")

    def __init__(
        self,
        controller: str,  # v1 subsystem name, or the v2 controller ("" for cgroup.* core files)
        files: tuple[str, ...],
        value: str,
        optional: bool = False,
        retry_after_next: bool = False,
    ) -> None:
        self.controller = controller
        self.files = files
        self.value = value
        self.optional = optional
        self.retry_after_next = retry_after_next

    def _key(self) -> tuple[str, tuple[str, ...], str, bool, bool]:
        return (self.controller, self.files, self.value, self.optional, self.retry_after_next)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Write) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return "Write({!r}, {!r}, {!r}, optional={!r}, retry_after_next={!r})".format(*self._key())


# ---- conversions (the formulas runc ≥ 1.3.2 and crun ≥ 1.23 use) ------------------------------


def shares_to_weight(shares: int) -> int:
    """cgroup v1 cpu.shares [2, 262144] → v2 cpu.weight [1, 10000]; 0 stays 0 (unset).

    The quadratic-in-log fit maps 2 → 1, 1024 → 100 (both defaults) and 262144 → 10000.
    """
    if shares == 0:
        return 0
    if shares <= 2:
        return 1
    if shares >= 262144:
        return 10000
    import math  # only here: off the start path when no cpu.shares are given on v1

    level = math.log2(shares)
    exponent = (level * level + 125 * level) / 612.0 - 7.0 / 34.0
    return math.ceil(10**exponent)


def blkio_weight_to_io_weight(weight: int) -> int:
    """blkio.weight [10, 1000] → io.weight [1, 10000] (linear, as runc/crun)."""
    if weight == 0:
        return 0
    return 1 + (weight - 10) * 9999 // 990


def swap_for_v2(memswap: int | None, limit: int | None) -> int | None:
    """OCI memory.swap (memory+swap) → v2 memory.swap.max (swap only); -1 = max, None = unset."""
    if memswap is None or memswap == 0:
        return None
    if memswap == -1:
        return -1
    if limit is None or limit in (0, -1):
        raise InvalidArgument(
            "linux.resources.memory.swap needs linux.resources.memory.limit on cgroup v2"
        )
    if memswap < limit:
        raise InvalidArgument(
            f"linux.resources.memory.swap ({memswap}) must be >= memory.limit ({limit})"
        )
    return memswap - limit


def v2_max(value: int) -> str:
    """A v2 limit value: negative → "max"."""
    return "max" if value < 0 else str(value)


def device_rule(rule: Mapping[str, Any]) -> tuple[bool, str]:
    """An OCI device rule → (allow, "type major:minor access") as devices.allow/deny take."""
    if not isinstance(rule, Mapping):
        raise InvalidArgument(f"linux.resources.devices: rule {rule!r} is not an object")
    allow = rule.get("allow")
    if not isinstance(allow, bool):
        raise InvalidArgument(f"linux.resources.devices: rule {dict(rule)} needs allow: bool")
    kind = rule.get("type") or "a"
    if kind not in ("a", "b", "c"):
        raise InvalidArgument(f"linux.resources.devices: bad type {kind!r} (want a, b or c)")
    access = rule.get("access") or "rwm"
    if not isinstance(access, str) or not set(access) <= set("rwm"):
        raise InvalidArgument(f"linux.resources.devices: bad access {access!r} (want rwm)")
    numbers = [_device_number(rule.get(k), k) for k in ("major", "minor")]
    return allow, f"{kind} {numbers[0]}:{numbers[1]} {access}"


def _device_number(value: Any, name: str) -> str:
    if value is None or value == -1:
        return "*"
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidArgument(f"linux.resources.devices: bad {name} {value!r}")
    return str(value)


# ---- field access ------------------------------------------------------------------------


def section(resources: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = resources.get(name)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidArgument(f"linux.resources.{name} must be an object")
    return value


def opt_int(sec: Mapping[str, Any], key: str, where: str) -> int | None:
    value = sec.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgument(f"linux.resources.{where}.{key} must be an integer, not {value!r}")
    return value


def opt_str(sec: Mapping[str, Any], key: str, where: str) -> str | None:
    value = sec.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise InvalidArgument(f"linux.resources.{where}.{key} must be a string, not {value!r}")
    return value


def _list(sec: Mapping[str, Any], key: str, where: str) -> list[Mapping[str, Any]]:
    value = sec.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, Mapping) for v in value):
        raise InvalidArgument(f"linux.resources.{where}.{key} must be a list of objects")
    return value


def _unsupported(resources: Mapping[str, Any]) -> None:
    for name in ("network", "rdma"):
        if resources.get(name):
            raise Unavailable(f"linux.resources.{name} is not supported by dockyard's cgroups")


# ---- v1 ---------------------------------------------------------------------------------


def plan_v1(resources: Mapping[str, Any]) -> list[Write]:
    """Writes for cgroup v1 controllers, in kernel-acceptable order."""
    _unsupported(resources)
    return [
        *_v1_memory(section(resources, "memory")),
        *_v1_cpu(section(resources, "cpu")),
        *_pids(section(resources, "pids"), "pids"),
        *_v1_blkio(section(resources, "blockIO")),
        *_hugetlb(resources, "limit_in_bytes"),
        *_v1_devices(resources),
    ]


def _v1_memory(mem: Mapping[str, Any]) -> list[Write]:
    out: list[Write] = []
    limit = opt_int(mem, "limit", "memory")
    swap = opt_int(mem, "swap", "memory")
    if swap is not None and swap != 0:
        # memsw must stay >= limit: write it first; if that fails (lowering), after the limit.
        # A kernel without swap accounting lacks the file: only "no swap limit" may be skipped.
        skippable = swap == -1 or swap == limit
        out.append(Write("memory", ("memory.memsw.limit_in_bytes",), str(swap), skippable, True))
    if limit is not None and limit != 0:
        out.append(Write("memory", ("memory.limit_in_bytes",), str(limit)))
    reservation = opt_int(mem, "reservation", "memory")
    if reservation is not None and reservation != 0:
        out.append(Write("memory", ("memory.soft_limit_in_bytes",), str(reservation)))
    swappiness = opt_int(mem, "swappiness", "memory")
    if swappiness is not None and 0 <= swappiness <= 100:
        out.append(Write("memory", ("memory.swappiness",), str(swappiness)))
    if mem.get("disableOOMKiller") is True:
        out.append(Write("memory", ("memory.oom_control",), "1"))
    return out


def _v1_cpu(cpu: Mapping[str, Any]) -> list[Write]:
    out: list[Write] = []
    shares = opt_int(cpu, "shares", "cpu")
    if shares:
        out.append(Write("cpu", ("cpu.shares",), str(shares)))
    period = opt_int(cpu, "period", "cpu")
    quota = opt_int(cpu, "quota", "cpu")
    if period:
        out.append(Write("cpu", ("cpu.cfs_period_us",), str(period), retry_after_next=bool(quota)))
    if quota:
        out.append(Write("cpu", ("cpu.cfs_quota_us",), str(quota if quota > 0 else -1)))
    burst = opt_int(cpu, "burst", "cpu")
    if burst is not None:
        out.append(Write("cpu", ("cpu.cfs_burst_us",), str(burst)))
    for key, file in (
        ("realtimePeriod", "cpu.rt_period_us"),
        ("realtimeRuntime", "cpu.rt_runtime_us"),
    ):
        value = opt_int(cpu, key, "cpu")
        if value:
            out.append(Write("cpu", (file,), str(value)))
    idle = opt_int(cpu, "idle", "cpu")
    if idle is not None:
        out.append(Write("cpu", ("cpu.idle",), str(idle)))
    out.extend(_cpuset(cpu))
    return out


def _cpuset(cpu: Mapping[str, Any]) -> list[Write]:
    out: list[Write] = []
    for key in ("cpus", "mems"):
        value = opt_str(cpu, key, "cpu")
        if value is not None:
            out.append(Write("cpuset", (f"cpuset.{key}",), value))
    return out


def _pids(pids: Mapping[str, Any], controller: str) -> list[Write]:
    limit = opt_int(pids, "limit", "pids")
    if limit is None or limit == 0:
        return []
    return [Write(controller, ("pids.max",), v2_max(limit))]


def _v1_blkio(blkio: Mapping[str, Any]) -> list[Write]:
    out: list[Write] = []
    weight = opt_int(blkio, "weight", "blockIO")
    if weight:
        out.append(Write("blkio", ("blkio.weight", "blkio.bfq.weight"), str(weight), True))
    leaf = opt_int(blkio, "leafWeight", "blockIO")
    if leaf:
        out.append(Write("blkio", ("blkio.leaf_weight",), str(leaf), True))
    for dev in _list(blkio, "weightDevice", "blockIO"):
        w = opt_int(dev, "weight", "blockIO.weightDevice")
        if w:
            files = ("blkio.weight_device", "blkio.bfq.weight_device")
            out.append(Write("blkio", files, f"{_majmin(dev)} {w}", True))
    for key, file in _THROTTLE_V1.items():
        for dev in _list(blkio, key, "blockIO"):
            rate = opt_int(dev, "rate", f"blockIO.{key}")
            out.append(Write("blkio", (file,), f"{_majmin(dev)} {rate or 0}"))
    return out


_THROTTLE_V1 = {
    "throttleReadBpsDevice": "blkio.throttle.read_bps_device",
    "throttleWriteBpsDevice": "blkio.throttle.write_bps_device",
    "throttleReadIOPSDevice": "blkio.throttle.read_iops_device",
    "throttleWriteIOPSDevice": "blkio.throttle.write_iops_device",
}
_THROTTLE_V2 = {
    "throttleReadBpsDevice": "rbps",
    "throttleWriteBpsDevice": "wbps",
    "throttleReadIOPSDevice": "riops",
    "throttleWriteIOPSDevice": "wiops",
}


def _majmin(dev: Mapping[str, Any]) -> str:
    major = opt_int(dev, "major", "blockIO")
    minor = opt_int(dev, "minor", "blockIO")
    if major is None or minor is None or major < 0 or minor < 0:
        raise InvalidArgument(f"linux.resources.blockIO: device {dict(dev)} needs major and minor")
    return f"{major}:{minor}"


def _hugetlb(resources: Mapping[str, Any], suffix: str) -> list[Write]:
    out: list[Write] = []
    for entry in _list(resources, "hugepageLimits", "hugepageLimits"):
        size = opt_str(entry, "pageSize", "hugepageLimits")
        limit = opt_int(entry, "limit", "hugepageLimits")
        if size is None or limit is None or "/" in size:
            raise InvalidArgument(f"linux.resources.hugepageLimits: bad entry {dict(entry)}")
        value = v2_max(limit) if suffix == "max" else str(limit)
        out.append(Write("hugetlb", (f"hugetlb.{size}.{suffix}",), value))
    return out


def _v1_devices(resources: Mapping[str, Any]) -> list[Write]:
    out: list[Write] = []
    for rule in _list(resources, "devices", "devices"):
        allow, text = device_rule(rule)
        out.append(Write("devices", ("devices.allow" if allow else "devices.deny",), text))
    return out


# ---- v2 ---------------------------------------------------------------------------------


def plan_v2(resources: Mapping[str, Any]) -> list[Write]:
    """Writes for the unified hierarchy. Device rules are validated but produce no writes:
    on v2 the device controller is an eBPF program, which dockyard does not attach."""
    _unsupported(resources)
    for rule in _list(resources, "devices", "devices"):
        device_rule(rule)
    return [
        *_v2_memory(section(resources, "memory")),
        *_v2_cpu(section(resources, "cpu")),
        *_pids(section(resources, "pids"), "pids"),
        *_v2_io(section(resources, "blockIO")),
        *_hugetlb(resources, "max"),
        *plan_unified(resources),
    ]


def _v2_memory(mem: Mapping[str, Any]) -> list[Write]:
    out: list[Write] = []
    limit = opt_int(mem, "limit", "memory")
    swap = swap_for_v2(opt_int(mem, "swap", "memory"), limit)
    if swap is not None:
        out.append(Write("memory", ("memory.swap.max",), v2_max(swap), optional=swap == -1))
    if limit is not None and limit != 0:
        out.append(Write("memory", ("memory.max",), v2_max(limit)))
    reservation = opt_int(mem, "reservation", "memory")
    if reservation is not None and reservation != 0:
        out.append(Write("memory", ("memory.low",), v2_max(reservation)))
    return out


def _v2_cpu(cpu: Mapping[str, Any]) -> list[Write]:
    out: list[Write] = []
    weight = shares_to_weight(opt_int(cpu, "shares", "cpu") or 0)
    if weight:
        out.append(Write("cpu", ("cpu.weight",), str(weight)))
    quota = opt_int(cpu, "quota", "cpu") or 0
    period = opt_int(cpu, "period", "cpu") or 0
    if quota or period:
        value = str(quota) if quota > 0 else "max"
        out.append(Write("cpu", ("cpu.max",), f"{value} {period}" if period else value))
    burst = opt_int(cpu, "burst", "cpu")
    if burst is not None:
        out.append(Write("cpu", ("cpu.max.burst",), str(burst)))
    idle = opt_int(cpu, "idle", "cpu")
    if idle is not None:
        out.append(Write("cpu", ("cpu.idle",), str(idle)))
    if opt_int(cpu, "realtimeRuntime", "cpu") or opt_int(cpu, "realtimePeriod", "cpu"):
        raise Unavailable("linux.resources.cpu.realtime* is not supported on cgroup v2")
    return out + _cpuset(cpu)


def _v2_io(blkio: Mapping[str, Any]) -> list[Write]:
    out: list[Write] = []
    weight = opt_int(blkio, "weight", "blockIO")
    if weight:
        # io.bfq.weight takes the blkio range; io.weight takes "default N" in [1, 10000].
        io_weight = f"default {blkio_weight_to_io_weight(weight)}"
        out.append(Write("io", ("io.bfq.weight",), str(weight), optional=True))
        out.append(Write("io", ("io.weight",), io_weight, optional=True))
    for key, name in _THROTTLE_V2.items():
        for dev in _list(blkio, key, "blockIO"):
            rate = opt_int(dev, "rate", f"blockIO.{key}")
            out.append(Write("io", ("io.max",), f"{_majmin(dev)} {name}={rate or 'max'}"))
    return out


def plan_unified(resources: Mapping[str, Any]) -> list[Write]:
    """linux.resources.unified: raw v2 files, written last so they override converted values."""
    out: list[Write] = []
    for name, value in section(resources, "unified").items():
        if not isinstance(name, str) or "/" in name or name.startswith(".") or "." not in name:
            raise InvalidArgument(f"linux.resources.unified: bad file name {name!r}")
        if not isinstance(value, str):
            raise InvalidArgument(f"linux.resources.unified.{name} must be a string")
        prefix = name.split(".", 1)[0]
        out.append(Write("" if prefix == "cgroup" else prefix, (name,), value))
    return out


def controllers(writes: list[Write]) -> set[str]:
    """The v2 controllers the writes need enabled."""
    return {w.controller for w in writes if w.controller}
