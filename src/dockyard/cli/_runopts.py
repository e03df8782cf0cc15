"""`run`/`create` flags → the Engine API's Config and HostConfig (an adapter: translation only).

Flag names, defaults and error wording are Docker's. Values are validated here only as far as
parsing goes; the engine validates meaning.
"""

from __future__ import annotations

import argparse
import shlex
from typing import Any

from dockyard.errors import InvalidArgument

USAGE_EXIT = 125


def add_run_flags(p: argparse.ArgumentParser) -> None:
    a = p.add_argument
    a("image", metavar="IMAGE")
    a("command", nargs=argparse.REMAINDER, metavar="[COMMAND] [ARG...]")
    a("--name")
    a("-e", "--env", action="append", default=[])
    a("--env-file", action="append", default=[])
    a("-w", "--workdir")
    a("-u", "--user")
    a("--entrypoint")
    a("-h", "--hostname")
    a("--domainname")
    a("-l", "--label", action="append", default=[])
    a("--label-file", action="append", default=[])
    a("-v", "--volume", action="append", default=[])
    a("--mount", action="append", default=[])
    a("--tmpfs", action="append", default=[])
    a("--read-only", action="store_true")
    a("-m", "--memory")
    a("--memory-swap")
    a("--memory-reservation")
    a("--cpus")
    a("-c", "--cpu-shares", type=int)
    a("--cpu-period", type=int)
    a("--cpu-quota", type=int)
    a("--cpuset-cpus")
    a("--cpuset-mems")
    a("--pids-limit", type=int)
    a("--blkio-weight", type=int)
    a("--ulimit", action="append", default=[])
    a("--cap-add", action="append", default=[])
    a("--cap-drop", action="append", default=[])
    a("--privileged", action="store_true")
    a("--security-opt", action="append", default=[])
    a("--sysctl", action="append", default=[])
    a("--init", action="store_true")
    a("--restart", default="no")
    a("--stop-signal")
    a("--stop-timeout", type=int)
    a("--health-cmd")
    a("--health-interval")
    a("--health-timeout")
    a("--health-retries", type=int)
    a("--health-start-period")
    a("--health-start-interval")
    a("--no-healthcheck", action="store_true")
    a("--runtime")
    a("--network", "--net", default="bridge")
    a("--network-alias", "--net-alias", action="append", default=[])
    a("--ip")
    a("--ip6")
    a("-p", "--publish", action="append", default=[])
    a("-P", "--publish-all", action="store_true")
    a("--expose", action="append", default=[])
    a("--add-host", action="append", default=[])
    a("--dns", action="append", default=[])
    a("--log-driver", default="json-file")
    a("--log-opt", action="append", default=[])
    a("--shm-size")
    a("--platform")
    a("--pull", default="missing", choices=["missing", "always", "never"])
    a("-i", "--interactive", action="store_true")
    a("-t", "--tty", action="store_true")


def _duration_ns(text: str | None, flag: str) -> int | None:
    if not text:
        return None
    units = {"ns": 1, "us": 1000, "ms": 1_000_000, "s": 1_000_000_000, "m": 60_000_000_000,
             "h": 3_600_000_000_000}  # fmt: skip
    for u in sorted(units, key=len, reverse=True):
        if text.endswith(u):
            try:
                return int(float(text[: -len(u)]) * units[u])
            except ValueError:
                break
    raise InvalidArgument(f'invalid argument "{text}" for "{flag}" flag: time: invalid duration')


def _size(text: str | None, flag: str) -> int | None:
    from dockyard.units import parse_size

    if text is None:
        return None
    if text == "-1":
        return -1
    try:
        return parse_size(text)
    except ValueError:
        raise InvalidArgument(
            f'invalid argument "{text}" for "{flag}" flag: invalid size'
        ) from None


def _kv_files(paths: list[str]) -> list[str]:
    out = []
    for path in paths:
        try:
            with open(path) as f:
                for line in f:
                    line = line.strip()
                    if line and not line.startswith("#"):
                        out.append(line)
        except OSError as e:
            raise InvalidArgument(f"open {path}: {(e.strerror or str(e)).lower()}") from None
    return out


def _env(values: list[str]) -> list[str]:
    import os

    out = []
    for v in values:
        if "=" in v:
            out.append(v)
        elif v in os.environ:
            out.append(f"{v}={os.environ[v]}")
    return out


def _restart(text: str) -> dict[str, Any]:
    name, _, count = text.partition(":")
    if name not in ("no", "always", "on-failure", "unless-stopped"):
        raise InvalidArgument(f"invalid restart policy '{text}'")
    if count and name != "on-failure":
        raise InvalidArgument(
            "invalid restart policy format: maximum retry count cannot be used with "
            f"restart policy '{name}'"
        )
    return {"Name": name, "MaximumRetryCount": int(count or 0)}


def _ulimits(values: list[str]) -> list[dict[str, Any]]:
    out = []
    for v in values:
        name, _, lim = v.partition("=")
        soft, _, hard = lim.partition(":")
        try:
            out.append({"Name": name, "Soft": int(soft), "Hard": int(hard or soft)})
        except ValueError:
            raise InvalidArgument(f"invalid ulimit argument: {v}") from None
    return out


def _mount_flag(v: str) -> tuple[str | None, dict[str, str] | None]:
    """--mount type=bind|volume|tmpfs,source=,target=,readonly → a Binds entry or a tmpfs."""
    fields: dict[str, str] = {}
    for part in v.split(","):
        k, sep, val = part.partition("=")
        fields[k.strip().lower()] = val if sep else "true"
    kind = fields.get("type", "volume")
    target = fields.get("target") or fields.get("destination") or fields.get("dst")
    if not target:
        raise InvalidArgument("invalid argument for --mount: target is required")
    ro = fields.get("readonly", fields.get("ro", "false")) in ("true", "1")
    if kind == "tmpfs":
        opts = []
        if "tmpfs-size" in fields:
            opts.append(f"size={fields['tmpfs-size']}")
        if "tmpfs-mode" in fields:
            opts.append(f"mode={fields['tmpfs-mode']}")
        return None, {target: ",".join(opts)}
    source = fields.get("source") or fields.get("src") or ""
    return f"{source}:{target}:{'ro' if ro else 'rw'}", None


def build_config(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any]]:
    cmd = list(args.command or [])
    if cmd and cmd[0] == "--":
        cmd = cmd[1:]
    labels: dict[str, str] = {}
    for lab in [*_kv_files(args.label_file), *args.label]:
        k, _, v = lab.partition("=")
        labels[k] = v
    config: dict[str, Any] = {
        "Hostname": args.hostname or "",
        "Domainname": args.domainname or "",
        "User": args.user or "",
        "AttachStdin": bool(args.interactive),
        "AttachStdout": True,
        "AttachStderr": True,
        "Tty": bool(args.tty),
        "OpenStdin": bool(args.interactive),
        "StdinOnce": bool(args.interactive) and not getattr(args, "detach", False),
        "Env": _env([*_kv_files(args.env_file), *args.env]),
        "Cmd": cmd or None,
        "WorkingDir": args.workdir or "",
        "Entrypoint": None
        if args.entrypoint is None
        else ([args.entrypoint] if args.entrypoint else []),
        "Labels": labels,
    }
    if args.entrypoint is not None and not cmd:
        config["Cmd"] = []
    if args.stop_signal:
        config["StopSignal"] = args.stop_signal
    if args.stop_timeout is not None:
        config["StopTimeout"] = args.stop_timeout
    if args.expose:
        config["ExposedPorts"] = {(e if "/" in e else f"{e}/tcp"): {} for e in args.expose}
    if args.no_healthcheck:
        config["Healthcheck"] = {"Test": ["NONE"]}
    elif args.health_cmd:
        config["Healthcheck"] = {
            "Test": ["CMD-SHELL", args.health_cmd],
            "Interval": _duration_ns(args.health_interval, "--health-interval") or 0,
            "Timeout": _duration_ns(args.health_timeout, "--health-timeout") or 0,
            "StartPeriod": _duration_ns(args.health_start_period, "--health-start-period") or 0,
            "StartInterval": _duration_ns(args.health_start_interval, "--health-start-interval")
            or 0,
            "Retries": args.health_retries or 0,
        }
    binds = list(args.volume)
    tmpfs: dict[str, str] = {}
    for t in args.tmpfs:
        dst, _, opts = t.partition(":")
        tmpfs[dst] = opts
    for m in args.mount:
        bind, tm = _mount_flag(m)
        if bind:
            binds.append(bind)
        if tm:
            tmpfs.update(tm)
    nano = None
    if args.cpus:
        try:
            nano = int(float(args.cpus) * 1e9)
        except ValueError:
            raise InvalidArgument(f'invalid argument "{args.cpus}" for "--cpus" flag') from None
    log_cfg = {}
    for o in args.log_opt:
        k, _, v = o.partition("=")
        log_cfg[k] = v
    sysctls = {}
    for s in args.sysctl:
        k, _, v = s.partition("=")
        sysctls[k] = v
    host: dict[str, Any] = {
        "Binds": binds or None,
        "Tmpfs": tmpfs or None,
        "ReadonlyRootfs": bool(args.read_only),
        "Memory": _size(args.memory, "--memory") or 0,
        "MemorySwap": _size(args.memory_swap, "--memory-swap") or 0,
        "MemoryReservation": _size(args.memory_reservation, "--memory-reservation") or 0,
        "NanoCpus": nano or 0,
        "CpuShares": args.cpu_shares or 0,
        "CpuPeriod": args.cpu_period or 0,
        "CpuQuota": args.cpu_quota or 0,
        "CpusetCpus": args.cpuset_cpus or "",
        "CpusetMems": args.cpuset_mems or "",
        "PidsLimit": args.pids_limit,
        "BlkioWeight": args.blkio_weight or 0,
        "Ulimits": _ulimits(args.ulimit) or None,
        "CapAdd": args.cap_add or None,
        "CapDrop": args.cap_drop or None,
        "Privileged": bool(args.privileged),
        "SecurityOpt": args.security_opt or None,
        "Sysctls": sysctls or None,
        "Init": True if args.init else None,  # None: config.json's `init` decides (Docker)
        "RestartPolicy": _restart(args.restart),
        "AutoRemove": bool(getattr(args, "rm", False)),
        "NetworkMode": "bridge" if args.network == "default" else args.network,
        "PortBindings": {},
        "PublishAllPorts": bool(args.publish_all),
        "ExtraHosts": args.add_host or None,
        "Dns": args.dns or None,
        "LogConfig": {"Type": args.log_driver, "Config": log_cfg},
        "Runtime": args.runtime or "dockyard",
        "ShmSize": _size(args.shm_size, "--shm-size") or 0,
    }
    _network_flags(args, config, host)
    if host["Memory"] and host["MemorySwap"] and 0 < host["MemorySwap"] < host["Memory"]:
        raise InvalidArgument(
            "Minimum memoryswap limit should be larger than memory limit, see usage"
        )
    if args.restart != "no" and host["AutoRemove"]:
        raise InvalidArgument("Conflicting options: --restart and --rm")
    return config, host


def _network_flags(args: argparse.Namespace, config: dict[str, Any], host: dict[str, Any]) -> None:
    """`-p` → `HostConfig.PortBindings` (and `ExposedPorts`), as Docker's CLI shapes them;
    `--network-alias`/`--ip` → the API's `NetworkingConfig` (popped by the engine's create)."""
    if args.publish:
        from dockyard.container.networking import port_bindings_shape

        bindings = port_bindings_shape(list(args.publish))
        host["PortBindings"] = bindings
        exposed = dict(config.get("ExposedPorts") or {})
        for key in bindings:
            exposed.setdefault(key, {})
        config["ExposedPorts"] = exposed
    if args.network_alias or args.ip or args.ip6:
        ep: dict[str, Any] = {"Aliases": list(args.network_alias) or None}
        if args.ip or args.ip6:
            ips = {"IPv4Address": args.ip, "IPv6Address": args.ip6}
            ep["IPAMConfig"] = {k: v for k, v in ips.items() if v}
        config["NetworkingConfig"] = {"EndpointsConfig": {host["NetworkMode"]: ep}}


def quote_command(args: list[str]) -> str:
    return " ".join(shlex.quote(a) for a in args)


def ensure_image(ctx: Any, image: str, policy: str, platform: str | None) -> None:
    """`--pull missing|always|never` for run/create: pull the image first when asked to, or
    when it is missing, printing what Docker prints to stderr."""
    from dockyard.errors import NotFound

    if policy == "never":
        return
    if policy == "missing":
        try:
            ctx.engine.images.lookup_id(image)  # a name lookup: `create` reads the image
            return
        except NotFound:
            pass
    from dockyard.cli._progress import ProgressPrinter
    from dockyard.cli.pull import _pull_one
    from dockyard.reference import parse_reference

    ref = parse_reference(image).pinned()
    if policy == "missing":
        ctx.err.write(f"Unable to find image '{ref.familiar_string()}' locally\n")
    _pull_one(ctx, ref, platform, ProgressPrinter(ctx.err), show_status=True)
