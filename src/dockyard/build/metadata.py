"""Config-only instructions and history text (layer L4, pure data).

`apply_meta(config, ins, cmd_set)` applies ENV, LABEL, WORKDIR (the path part), USER, EXPOSE,
VOLUME, CMD, ENTRYPOINT, SHELL, STOPSIGNAL, HEALTHCHECK, ONBUILD, MAINTAINER and ARG to an
image config section (Docker's field names) the way BuildKit does, and `created_by(ins, ...)`
gives the history line BuildKit writes for each instruction.

Invariants: `config` is modified in place and only through the fields the instruction owns;
ENTRYPOINT clears a CMD inherited from the base image (not one set earlier in the stage).
"""

from __future__ import annotations

import json
import posixpath
from typing import Any

from dockyard.build.model import (
    Arg,
    Cmd,
    Copy,
    Entrypoint,
    Env,
    Expose,
    Healthcheck,
    Instruction,
    Label,
    Maintainer,
    Onbuild,
    Run,
    Shell,
    StopSignal,
    User,
    Volume,
    Workdir,
)

DEFAULT_SHELL = ["/bin/sh", "-c"]


def set_env(config: dict[str, Any], key: str, value: str) -> None:
    env = [e for e in (config.get("Env") or []) if e.partition("=")[0] != key]
    env.append(f"{key}={value}")
    config["Env"] = env


def env_map(config: dict[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for e in config.get("Env") or []:
        k, _, v = e.partition("=")
        out[k] = v
    return out


def shell_of(config: dict[str, Any]) -> list[str]:
    return list(config.get("Shell") or DEFAULT_SHELL)


def workdir_of(config: dict[str, Any], path: str) -> str:
    return posixpath.normpath(posixpath.join(config.get("WorkingDir") or "/", path))


def _command(config: dict[str, Any], command: tuple[str, ...], shell_form: bool) -> list[str]:
    if shell_form:
        return [*shell_of(config), *command] if command else []
    return list(command)


def _ports(specs: tuple[str, ...]) -> list[str]:
    out = []
    for p in specs:
        num, _, proto = p.partition("/")
        lo, _, hi = num.partition("-")
        for n in range(int(lo), int(hi or lo) + 1):
            out.append(f"{n}/{(proto or 'tcp').lower()}")
    return out


def apply_meta(config: dict[str, Any], ins: Instruction, cmd_set: bool) -> bool:
    """Apply a config-only instruction; returns the new `cmd_set` (CMD seen in this stage)."""
    if isinstance(ins, Env):
        for k, v in ins.pairs:
            set_env(config, k, v)
    elif isinstance(ins, Label):
        labels = dict(config.get("Labels") or {})
        labels.update(ins.pairs)
        config["Labels"] = labels
    elif isinstance(ins, Workdir):
        config["WorkingDir"] = workdir_of(config, ins.path)
    elif isinstance(ins, User):
        config["User"] = ins.user
    elif isinstance(ins, Expose):
        ports = dict(config.get("ExposedPorts") or {})
        ports.update({p: {} for p in _ports(ins.ports)})
        config["ExposedPorts"] = ports
    elif isinstance(ins, Volume):
        vols = dict(config.get("Volumes") or {})
        vols.update({p: {} for p in ins.paths})
        config["Volumes"] = vols
    elif isinstance(ins, Cmd):
        config["Cmd"] = _command(config, ins.command, ins.shell_form) or None
        return True
    elif isinstance(ins, Entrypoint):
        config["Entrypoint"] = _command(config, ins.command, ins.shell_form) or None
        if not cmd_set:
            config["Cmd"] = None
    elif isinstance(ins, Shell):
        config["Shell"] = list(ins.shell)
    elif isinstance(ins, StopSignal):
        config["StopSignal"] = ins.signal
    elif isinstance(ins, Healthcheck):
        config["Healthcheck"] = _healthcheck(ins)
    elif isinstance(ins, Onbuild):
        config["OnBuild"] = [*(config.get("OnBuild") or []), ins.trigger]
    return cmd_set


def _healthcheck(h: Healthcheck) -> dict[str, Any]:
    out: dict[str, Any] = {"Test": list(h.test)}
    for key, value in (
        ("Interval", h.interval),
        ("Timeout", h.timeout),
        ("StartPeriod", h.start_period),
        ("StartInterval", h.start_interval),
        ("Retries", h.retries),
    ):
        if value:
            out[key] = value
    return out


def _go_list(items: list[str]) -> str:
    return "[" + " ".join(items) + "]"


def created_by(ins: Instruction, config: dict[str, Any], run_args: list[str] | None = None) -> str:
    """BuildKit's history `created_by` for `ins` (config: the state after the step)."""
    if isinstance(ins, Run):
        return f"RUN {' '.join(run_args or ins.command)} # buildkit"
    if isinstance(ins, Copy):
        kw = "ADD" if ins.add else "COPY"
        return f"{kw} {' '.join(ins.sources)} {ins.dest} # buildkit"
    if isinstance(ins, Env | Label):
        kw = "ENV" if isinstance(ins, Env) else "LABEL"
        return kw + " " + " ".join(f"{k}={v}" for k, v in ins.pairs)
    if isinstance(ins, Workdir):
        return f"WORKDIR {config.get('WorkingDir') or ins.path}"
    if isinstance(ins, User):
        return f"USER {ins.user}"
    if isinstance(ins, Expose):
        return "EXPOSE map[" + " ".join(f"{p}:{{}}" for p in _ports(ins.ports)) + "]"
    if isinstance(ins, Volume):
        return f"VOLUME {_go_list(list(ins.paths))}"
    if isinstance(ins, Cmd | Entrypoint):
        kw = "CMD" if isinstance(ins, Cmd) else "ENTRYPOINT"
        field = "Cmd" if isinstance(ins, Cmd) else "Entrypoint"
        return f"{kw} {json.dumps(config.get(field) or [])}"
    if isinstance(ins, Shell):
        return f"SHELL {_go_list(list(ins.shell))}"
    if isinstance(ins, StopSignal):
        return f"STOPSIGNAL {ins.signal}"
    if isinstance(ins, Healthcheck):
        return f"HEALTHCHECK {json.dumps(list(ins.test))}"
    if isinstance(ins, Onbuild):
        return f"ONBUILD {ins.trigger}"
    if isinstance(ins, Maintainer):
        return f"MAINTAINER {ins.name}"
    if isinstance(ins, Arg):
        return "ARG " + " ".join(k if v is None else f"{k}={v}" for k, v in ins.args)
    return type(ins).__name__.upper()
