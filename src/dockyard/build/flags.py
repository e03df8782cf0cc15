"""Instruction flags (`--name=value`) and their typed values (layer L4, pure).

`parse_flags` checks a raw instruction's flags against the set it allows, with BuildKit's messages
(`unknown flag: --x`, `Duplicate flag specified: --x`). `parse_mount` turns a `RUN --mount` CSV
value into a typed `Mount`; `parse_duration` reads Go durations (`1m30s`) as nanoseconds.

Invariants: values are returned unexpanded; every malformed value raises `InvalidArgument`.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from typing import Literal

from dockyard.errors import InvalidArgument

FlagKind = Literal["str", "bool", "list"]
FlagValue = str | bool | list[str]

_DURATION_RE = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNITS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 10**9, "m": 60 * 10**9}
_UNITS["h"] = 3600 * 10**9


def parse_flags(flags: tuple[str, ...], allowed: dict[str, FlagKind]) -> dict[str, FlagValue]:
    """Parse `--name[=value]` flags; lists accumulate, bools accept no value or true/false."""
    out: dict[str, FlagValue] = {}
    for raw in flags:
        if not raw.startswith("--"):
            raise InvalidArgument(f"invalid flag format: {raw}")
        name, eq, value = raw[2:].partition("=")
        kind = allowed.get(name)
        if kind is None:
            raise InvalidArgument(f"unknown flag: {name}")
        if kind == "list":
            lst = out.setdefault(name, [])
            assert isinstance(lst, list)
            lst.append(value)
            continue
        if name in out:
            raise InvalidArgument(f"Duplicate flag specified: {name}")
        if kind == "bool":
            if not eq:
                out[name] = True
            elif value.lower() in ("true", "false"):
                out[name] = value.lower() == "true"
            else:
                raise InvalidArgument(f"expecting boolean value for flag {name}, not: {value}")
        else:
            if not eq:
                raise InvalidArgument(f"missing a value on flag: {name}")
            out[name] = value
    return out


def flag_str(flags: dict[str, FlagValue], name: str, default: str = "") -> str:
    v = flags.get(name, default)
    return v if isinstance(v, str) else default


def flag_bool(flags: dict[str, FlagValue], name: str) -> bool:
    return flags.get(name) is True


def flag_list(flags: dict[str, FlagValue], name: str) -> list[str]:
    v = flags.get(name)
    return list(v) if isinstance(v, list) else []


def parse_duration(text: str, flag: str) -> int:
    """A Go duration (`300ms`, `1m30s`, `0`) as nanoseconds."""
    s = text.strip()
    if s in ("0", ""):
        return 0
    pos, total = 0, 0.0
    for m in _DURATION_RE.finditer(s):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if pos != len(s) or pos == 0:
        raise InvalidArgument(f"invalid duration {text!r} for --{flag}")
    return int(total)


MountType = Literal["bind", "cache", "tmpfs", "secret", "ssh"]
Sharing = Literal["shared", "private", "locked"]


@dataclass(frozen=True)
class Mount:
    """A `RUN --mount`: typed with BuildKit's defaults applied."""

    type: MountType
    target: str
    source: str = ""
    from_: str = ""
    readonly: bool = False
    id: str = ""
    sharing: Sharing = "shared"
    mode: int | None = None
    uid: int | None = None
    gid: int | None = None
    size: int | None = None
    required: bool = False
    env: str = ""


_MOUNT_KEYS = {
    "type": "type",
    "target": "target",
    "dst": "target",
    "destination": "target",
    "source": "source",
    "src": "source",
    "from": "from",
    "ro": "ro",
    "readonly": "ro",
    "rw": "rw",
    "readwrite": "rw",
    "id": "id",
    "sharing": "sharing",
    "mode": "mode",
    "uid": "uid",
    "gid": "gid",
    "size": "size",
    "required": "required",
    "env": "env",
}


def _bool_opt(key: str, value: str | None) -> bool:
    if value is None or value.lower() == "true":
        return True
    if value.lower() == "false":
        return False
    raise InvalidArgument(f"invalid value for {key}: {value}")


def _int_opt(key: str, value: str | None, base: int = 10) -> int:
    try:
        return int(value or "", base)
    except ValueError:
        raise InvalidArgument(f"invalid value for {key}: {value}") from None


def _split_csv(value: str) -> dict[str, str | None]:
    fields = next(csv.reader([value]), [])
    opts: dict[str, str | None] = {}
    for f in fields:
        key, eq, v = f.partition("=")
        k = _MOUNT_KEYS.get(key.strip().lower())
        if k is None:
            raise InvalidArgument(f"unexpected key '{key}' in '{f}'")
        opts[k] = v if eq else None
    return opts


def parse_mount(value: str) -> Mount:
    """Parse one `--mount=` value (`type=cache,target=/root/.cache,sharing=locked`)."""
    o = _split_csv(value)
    mtype = (o.get("type") or "bind").lower()
    if mtype not in ("bind", "cache", "tmpfs", "secret", "ssh"):
        raise InvalidArgument(f"unsupported mount type {mtype!r}")
    target = o.get("target") or ""
    ident = o.get("id") or ""
    if mtype == "secret" and not target and not o.get("env"):
        if not ident:
            ident = (o.get("source") or "").rsplit("/", 1)[-1]
        target = f"/run/secrets/{ident}" if ident else ""
    if mtype == "ssh":  # no target: /run/buildkit/ssh_agent.N, N counting the RUN's ssh mounts
        ident = ident or "default"
    if not target and not (mtype == "secret" and o.get("env")) and mtype != "ssh":
        raise InvalidArgument(f"mount destination not set for --mount={value}")
    if mtype == "secret" and not ident:
        ident = (o.get("source") or target).rsplit("/", 1)[-1]
    if mtype == "cache" and not ident:
        ident = target
    sharing = (o.get("sharing") or "shared").lower()
    if sharing not in ("shared", "private", "locked"):
        raise InvalidArgument(f"unsupported sharing value {sharing!r}")
    readonly = mtype in ("bind", "secret", "ssh")
    if "ro" in o:
        readonly = _bool_opt("readonly", o["ro"])
    if "rw" in o:
        readonly = not _bool_opt("readwrite", o["rw"])
    if mtype in ("tmpfs",) and (o.get("source") or o.get("from")):
        raise InvalidArgument("tmpfs mounts take no source or from")
    return Mount(
        type=mtype,  # type: ignore[arg-type]
        target=target,
        source=o.get("source") or "",
        from_=o.get("from") or "",
        readonly=readonly,
        id=ident,
        sharing=sharing,  # type: ignore[arg-type]
        mode=_int_opt("mode", o["mode"], 8) if o.get("mode") is not None else None,
        uid=_int_opt("uid", o["uid"]) if o.get("uid") is not None else None,
        gid=_int_opt("gid", o["gid"]) if o.get("gid") is not None else None,
        size=_parse_size(o["size"]) if o.get("size") is not None else None,
        required=_bool_opt("required", o["required"]) if "required" in o else False,
        env=o.get("env") or "",
    )


def _parse_size(value: str | None) -> int:
    m = re.fullmatch(r"(\d+)\s*([kmgt]?)i?b?", (value or "").strip().lower())
    if not m:
        raise InvalidArgument(f"invalid size {value!r}")
    power: int = " kmgt".index(m.group(2) or " ")
    return int(m.group(1)) * (1 << (10 * power))
