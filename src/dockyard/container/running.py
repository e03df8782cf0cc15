"""A container's process lifecycle on the supervisor's side (layer L4): mount the rootfs,
write the bundle, create and start the container through the runtime (`start_process`), and
record what becomes of it: health, a failed start, the exit and the restart policy's verdict
(`finish_process`), and the removal of a `--rm` container afterwards.

The functions take the `ContainerService` (`svc`) and change records only through it
(`svc._update`: read-modify-write under the container lock); `supervisor` calls them.

Invariants:
- The record caches what `create` resolved of the image (its config and layer chain), so a
  start never reads the image again. `--rm` rootfs overlays are `volatile` (no sync at
  unmount); other containers' are not (their writes survive a host crash as on Docker).
- `start_process` undoes a start that fails: the rootfs is unmounted, the network released,
  and the record says again what it said before (so `record_start_failure` tells a first
  start from a restart).
- A `--rm` container is never recorded as exited and never restarts; its record goes first
  (`removal`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dockyard.container.logs import LogWriter
from dockyard.container.model import ZERO_TIME, Container, State
from dockyard.errors import DockyardError, NotFound
from dockyard.linux import spare_ns
from dockyard.linux.proc import start_time
from dockyard.units import rfc3339

if TYPE_CHECKING:
    from dockyard.container.service import ContainerService


@dataclass
class Running:
    """A started container process, as the supervisor holds it."""

    pid: int
    stdout: int  # read end (or the pty master when tty)
    stderr: int  # read end, -1 with a tty
    tty: bool
    log: LogWriter
    auto_remove: bool = False  # `--rm`: removed right after it exits, never restarted
    published: bool = False  # holds host ports (released before the exit is reported)
    stdin_w: int = -1  # write end of the container's stdin pipe (`-i` without an attached CLI)


def mount_rootfs(svc: ContainerService, c: Container) -> Path:
    """Mount the container's rootfs overlay (unless it is mounted); return its path."""
    from dockyard.linux import fsmount

    d = svc.dir(c.id)
    target = d / "rootfs"
    if fsmount.is_mounted(str(target)):
        return target
    # `--rm`: a volatile overlay (no syncfs of the whole upper filesystem at unmount, and
    # fsync inside is a no-op); its upper is thrown away on exit. Other containers keep
    # Docker's durability: their upper survives a host crash as the disk has it.
    volatile = ("volatile",) if c.host_config.get("AutoRemove") else ()
    if volatile:
        # left by an earlier mount; only a supervisor crash lets one be mounted again
        shutil.rmtree(d / "work" / "work" / "incompat", ignore_errors=True)
    chain = _image_chain(svc, c)
    if not chain:
        empty = d / "empty"
        empty.mkdir(exist_ok=True)
        opts = (f"lowerdir={empty}", f"upperdir={d / 'upper'}", f"workdir={d / 'work'}")
        fsmount.mount("overlay", "overlay", str(target), opts + volatile)
        return target
    mounts = svc.engine.snapshots.mounts(chain, d / "upper", d / "work")
    for m in mounts:
        mopts = (*m.options, *volatile) if m.type == "overlay" else m.options
        fsmount.mount(m.type, m.source, str(target), mopts, m.cwd)
    return target


def _image_chain(svc: ContainerService, c: Container) -> list[str]:
    if c.image_chain is not None:
        return c.image_chain
    return [str(x) for x in svc.engine.images.get(c.image_id).chain]


def _image_config(svc: ContainerService, c: Container) -> dict[str, Any]:
    if c.image_config is not None:
        return c.image_config
    return dict(svc.engine.images.get(c.image_id).config.config)


def start_process(svc: ContainerService, cid: str, *, stdin_fd: int = -1) -> Running:
    """Mount, write the bundle, create and start the container (in the supervisor)."""
    from dockyard.container import mounts, networking
    from dockyard.container.spec import build_spec, init_binary
    from dockyard.runtime import jsonio

    c = svc._load(cid)
    d = svc.dir(cid)
    net = networking.attach(svc.engine, c, svc.lookup)  # ports held here until release
    # namespaces a supervisor forked ahead made while it waited (`linux.spare_ns`); held
    # until the init has joined them
    premade = spare_ns.take()
    try:
        rootfs = mount_rootfs(svc, c)
        extra = net.mounts + mounts.spec_mounts(svc.engine, c, rootfs)
        spec = build_spec(
            c, _image_config(svc, c), rootfs, netns=net.netns, extra_mounts=extra,
            seccomp=_seccomp(c), init=init_binary(c.host_config, svc.engine.config.extra),
        )  # fmt: skip
        if premade is not None:
            premade.apply(spec)
        bundle = d / "bundle"
        bundle.mkdir(exist_ok=True)
        (bundle / "config.json").write_text(jsonio.dumps(spec))
    except BaseException:
        if premade is not None:
            premade.close()
        svc._unmount(cid)
        networking.suppress_release(svc.engine, cid)
        raise
    log = LogWriter(
        d / f"{cid}-json.log",
        **_log_opts(c.host_config.get("LogConfig") or {}),
    )
    tty = bool(c.config.get("Tty"))
    keep = -1
    rt = svc.runtime_for(c)
    with contextlib.suppress(DockyardError):
        rt.delete(cid, force=True)  # a leftover from a crash
    console = None
    if tty:  # the runtime makes the pty in the container's devpts and sends us its master
        from dockyard.runtime.console import ConsoleServer

        console = ConsoleServer()
        null = os.open(os.devnull, os.O_RDWR)
        child_fds = (null, null, null)
        parent_fds = (-1, -1)
    else:
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        if stdin_fd >= 0 and c.config.get("OpenStdin"):
            sin = os.dup(stdin_fd)
        elif c.config.get("OpenStdin"):
            sin, keep = os.pipe()  # kept open (`Running.stdin_w`): no EOF on stdin
        else:
            sin = os.open(os.devnull, os.O_RDONLY)
        child_fds = (sin, out_w, err_w)
        parent_fds = (out_r, err_r)

    def running(r: Container, pid: int) -> None:
        r.state = State(
            status="running",
            pid=pid,
            started_at=rfc3339(),
            finished_at=ZERO_TIME,
            supervisor_pid=os.getpid(),
            supervisor_start=start_time(os.getpid()) or 0,
            init_start=start_time(pid) or 0,
            health=r.state.health,
        )
        r.network = {**(r.network or {}), "Settings": net.settings}

    before = c.state
    recorded: list[int] = []

    def spawned(pid: int) -> None:
        # recorded while the init sets itself up (it runs on the other core), not after
        # `start`: the record is written before the process can exit, and costs no time
        svc._update(cid, lambda r: running(r, pid))
        recorded.append(pid)

    def unspawned() -> None:
        # the init is gone again: the record says what it said before (so that
        # `record_start_failure` tells a first start from a restart)
        if recorded:
            with contextlib.suppress(Exception):
                svc._update(cid, lambda r: setattr(r, "state", before))

    saved = [os.dup(i) for i in (0, 1, 2)]
    try:
        for i, fd in enumerate(child_fds):
            os.dup2(fd, i, inheritable=True)
        # Without a tty the init goes straight on to the process: no exec FIFO to make, open
        # and unlink, no second wake-up (its output waits in the pipes). With one, the pty's
        # master reaches us first, before anything can be written to it.
        pid = rt.create(
            cid, str(bundle), console_socket=console.path if console else None,
            on_spawned=spawned, started=not tty,
        )  # fmt: skip
        if console is not None:
            parent_fds = (console.receive(), -1)
    except BaseException:
        unspawned()
        for fd in (*parent_fds, keep):
            if fd >= 0:
                os.close(fd)
        log.close()
        svc._unmount(cid)
        networking.suppress_release(svc.engine, cid)
        raise
    finally:
        if premade is not None:
            premade.close()  # the init is in them now (or gone)
        if console is not None:
            console.close()
        for i, fd in enumerate(saved):
            os.dup2(fd, i)
            os.close(fd)
        for fd in set(child_fds):
            os.close(fd)
    if tty:
        try:
            rt.start(cid)
        except BaseException:
            unspawned()
            raise
    if not recorded:  # a runtime that did not call `on_spawned`
        svc._update(cid, lambda r: running(r, pid))
    return Running(
        pid=pid,
        stdout=parent_fds[0],
        stderr=parent_fds[1],
        tty=tty,
        log=log,
        auto_remove=bool(c.host_config.get("AutoRemove")),
        published=bool(net.settings.get("Ports")),
        stdin_w=keep,
    )


def set_health(svc: ContainerService, cid: str, health: dict[str, Any]) -> None:
    svc._update(cid, lambda r: setattr(r.state, "health", health))


def record_start_failure(svc: ContainerService, cid: str, error: str, code: int) -> None:
    def failed(r: Container) -> None:
        r.state.status = "exited" if r.state.started_at != ZERO_TIME else "created"
        r.state.error = error
        r.state.exit_code = code
        r.state.pid = 0

    svc._update(cid, failed)
    svc._cleanup_runtime(cid)


def finish_process(svc: ContainerService, cid: str, run: Running, code: int) -> bool:
    """Record the exit; return whether the restart policy restarts the container.

    A `--rm` container is not recorded as exited (`remove_after_exit` deletes its record
    next) and never restarts."""
    oom = False
    with contextlib.suppress(DockyardError, OSError):
        from dockyard.linux.cgroups import open_cgroup

        oom = open_cgroup(f"/dockyard/{cid}").oom_killed()
    run.log.close()
    if run.auto_remove:
        return False
    svc._cleanup_runtime(cid)
    restart = False

    def exited(r: Container) -> None:
        nonlocal restart
        r.state.status = "exited"
        r.state.pid = 0
        r.state.exit_code = code
        r.state.oom_killed = oom
        r.state.finished_at = rfc3339()
        policy = r.host_config.get("RestartPolicy") or {}
        restart = _should_restart(policy, code, r.restart_count, r.state.stopped_by_user)
        if restart:
            r.state.status = "restarting"
            r.restart_count += 1

    svc._update(cid, exited)
    return restart


def remove_after_exit(
    svc: ContainerService, cid: str, report: Callable[[], None], *, ports: bool
) -> None:
    """`--rm`: remove the container, reporting its exit early (see `removal`)."""
    from dockyard.container import removal

    svc._removing.add(cid)
    removal.remove_after_exit(svc, cid, report, ports=ports)


def after_exit(svc: ContainerService, cid: str) -> bool:
    """After a failed start: remove a `--rm` container; return whether it was removed."""
    try:
        c = svc._load(cid)
    except NotFound:
        return True
    if c.host_config.get("AutoRemove"):
        from dockyard.container import mounts

        svc._remove_files(cid)
        mounts.remove_anonymous(svc.engine, mounts.volume_names(c))
        return True
    return False


def _should_restart(policy: dict[str, Any], code: int, count: int, by_user: bool) -> bool:
    name = policy.get("Name") or "no"
    if by_user or name == "no":
        return False
    if name == "on-failure":
        limit = int(policy.get("MaximumRetryCount") or 0)
        return code != 0 and (limit == 0 or count < limit)
    return name in ("always", "unless-stopped")


def _log_opts(cfg: dict[str, Any]) -> dict[str, int]:
    from dockyard.container.logs import DEFAULT_MAX_FILE, DEFAULT_MAX_SIZE
    from dockyard.units import parse_size

    opts = cfg.get("Config") or {}
    size = opts.get("max-size")
    files = opts.get("max-file")
    return {
        "max_size": parse_size(size) if size else DEFAULT_MAX_SIZE,
        "max_file": int(files) if files else DEFAULT_MAX_FILE,
    }


def _seccomp(c: Container) -> dict[str, Any] | None:
    """The container's seccomp filter: Docker's default for its capabilities, a profile
    given with --security-opt seccomp=FILE, or none (unconfined, --privileged)."""
    from dockyard.container.seccomp import from_security_opts
    from dockyard.container.spec import capabilities

    hc = c.host_config
    return from_security_opts(
        hc.get("SecurityOpt"), capabilities(hc), privileged=bool(hc.get("Privileged"))
    )


def rehearse(container_id: str = "0" * 64) -> dict[str, Any]:
    """Build, with no effect anywhere, what `start_process` builds for a typical container (a
    record, its spec and JSON, the init's process preparation with the seccomp memo), so that a
    supervisor forked ahead (`prefork`) has touched those pages before its command comes: each
    page a forked Python process first writes costs a copy-on-write fault (~3 µs here).
    Returns the spec (`make_standby` takes its cgroup path and resources)."""
    from dockyard.container.model import Container
    from dockyard.container.spec import build_spec
    from dockyard.linux.caps import last_cap
    from dockyard.runtime import jsonio
    from dockyard.runtime.process import Prepared

    c = Container(
        id=container_id, name="rehearsal", image="rehearsal", image_id="sha256:" + "0" * 64,
        created=rfc3339(), config={"Cmd": ["true"], "Env": ["PATH=/usr/bin:/bin"], "User": "0:0"},
        host_config={"NetworkMode": "none", "AutoRemove": True},
    )  # fmt: skip
    spec = build_spec(c, {}, Path("/nonexistent/rehearsal"), netns="", seccomp=_seccomp(c))
    jsonio.loads(jsonio.dumps(spec))
    Container.from_json(c.to_json())
    Prepared(spec["process"], last_cap(), spec["linux"])  # memo only: no cache dir, no file
    return spec


def make_standby(svc: ContainerService, container_id: str) -> None:
    """In a supervisor forked ahead for container `container_id` (not created yet): its init
    started now, in a cgroup made now (`runtime.standby`), used if the container turns out as
    typical as `rehearse` assumes. The standby warms up at our priority (a spare's nice 10)
    and takes the normal one with its job."""
    from dockyard.runtime import standby
    from dockyard.runtime.native import NativeRuntime

    rt = svc.runtime_for(container_id)
    if not isinstance(rt, NativeRuntime):
        return
    spec = rehearse(container_id)
    if standby.make_ready(rt.states.root, rt.seccomp_cache, container_id, spec) is not None:
        rehearse()  # the fork shared our pages until the standby's execve: ours again now
