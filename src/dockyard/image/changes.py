"""Apply Dockerfile-style `--change` instructions to an image's container config (pure data).

Used by `import` and `commit` (`-c/--change`): CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD,
STOPSIGNAL, USER, VOLUME, WORKDIR — the set Docker allows there. Values follow the Dockerfile
forms: a JSON array is the exec form, anything else the shell form (`/bin/sh -c ...`).
"""

from __future__ import annotations

import json
import posixpath
import shlex
from typing import Any

from dockyard.errors import InvalidArgument

ALLOWED = ("CMD", "ENTRYPOINT", "ENV", "EXPOSE", "LABEL", "ONBUILD", "STOPSIGNAL", "USER",
           "VOLUME", "WORKDIR")  # fmt: skip


def _exec_or_shell(value: str, shell: list[str]) -> list[str]:
    v = value.strip()
    if v.startswith("["):
        try:
            parsed = json.loads(v)
        except ValueError:
            parsed = None
        if isinstance(parsed, list) and all(isinstance(x, str) for x in parsed):
            return parsed
    return [*shell, v]


def _pairs(value: str, instr: str) -> list[tuple[str, str]]:
    words = shlex.split(value, posix=True)
    if not words:
        raise InvalidArgument(f"{instr} requires at least one argument")
    if "=" not in words[0]:
        if len(words) < 2:
            raise InvalidArgument(f"{instr} must have two arguments")
        key, _, rest = value.strip().partition(" ")
        return [(key, rest.strip())]
    out = []
    for w in words:
        if "=" not in w:
            raise InvalidArgument(f"{instr} names can not be blank: {w!r} is not key=value")
        k, _, v = w.partition("=")
        if not k:
            raise InvalidArgument(f"{instr} names can not be blank")
        out.append((k, v))
    return out


def apply_change(cfg: dict[str, Any], line: str) -> None:
    text = line.strip()
    if not text:
        return
    instr, _, value = text.partition(" ")
    instr = instr.upper()
    value = value.strip()
    if instr not in ALLOWED:
        raise InvalidArgument(f"{instr} is not a valid change command")
    shell = cfg.get("Shell") or ["/bin/sh", "-c"]
    if instr == "CMD":
        cfg["Cmd"] = _exec_or_shell(value, shell)
    elif instr == "ENTRYPOINT":
        cfg["Entrypoint"] = _exec_or_shell(value, shell)
    elif instr == "ENV":
        env = list(cfg.get("Env") or [])
        for k, v in _pairs(value, "ENV"):
            env = [e for e in env if e.split("=", 1)[0] != k]
            env.append(f"{k}={v}")
        cfg["Env"] = env
    elif instr == "LABEL":
        labels = dict(cfg.get("Labels") or {})
        labels.update(_pairs(value, "LABEL"))
        cfg["Labels"] = labels
    elif instr == "EXPOSE":
        ports = dict(cfg.get("ExposedPorts") or {})
        for p in value.split():
            port, _, proto = p.partition("/")
            if not port.replace("-", "").isdigit():
                raise InvalidArgument(f"invalid containerPort: {port}")
            ports[f"{port}/{(proto or 'tcp').lower()}"] = {}
        cfg["ExposedPorts"] = ports
    elif instr == "VOLUME":
        vols = dict(cfg.get("Volumes") or {})
        paths = _exec_or_shell(value, []) if value.startswith("[") else value.split()
        for p in paths:
            vols[p] = {}
        cfg["Volumes"] = vols
    elif instr == "WORKDIR":
        cur = cfg.get("WorkingDir") or "/"
        cfg["WorkingDir"] = posixpath.normpath(posixpath.join(cur, value))
    elif instr == "USER":
        cfg["User"] = value
    elif instr == "STOPSIGNAL":
        cfg["StopSignal"] = value
    elif instr == "ONBUILD":
        cfg["OnBuild"] = [*(cfg.get("OnBuild") or []), value]


def apply_changes(cfg: dict[str, Any], lines: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(json.dumps(cfg))
    for line in lines:
        apply_change(out, line)
    return out
