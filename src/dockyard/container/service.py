"""The container service (layer L4): create, start, stop, kill, pause, remove, list, wait.

It owns container records (metadata DB), their directories under `<root>/containers/<id>/`
(upper and work dirs of the overlay, the rootfs mount point, the bundle, the log, the
/etc files), and drives the runtime through the supervisor. The supervisor's side of a
container's process (mount, bundle, runtime start, exit, restart) is in `running`.

Invariants:
- A container's name is unique (a UNIQUE column; concurrent creates cannot both win).
- Record changes are read-modify-write under `<dir>/lock` (flock), so concurrent commands and
  the supervisor never lose each other's updates.
- `get`/`list` reconcile: a record that says running while its supervisor is gone is repaired
  (exit code from the supervisor's last word, else 255 with an error), its runtime state
  deleted and its rootfs unmounted, so `ps -a` never lies after a kill -9.
- A `--rm` container's record goes first (its name is free and `ps -a` stops listing it),
  then the supervisor reports the exit code to the attached CLI, then it deletes the runtime
  state, unmounts and removes the directory, under a `removing` marker; listings and the
  image/volume in-use checks wait for such removals or finish them (`finish_removals`).
- The record caches what `create` resolved of the image (its config and layer chain), for
  `running` to start from.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import signal
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dockyard.container.model import Container
from dockyard.container.names import check_name, random_name
from dockyard.errors import Conflict, DockyardError, InvalidArgument, NotFound
from dockyard.linux.proc import alive
from dockyard.units import rfc3339

if TYPE_CHECKING:
    from dockyard.container.supervisor import Attach
    from dockyard.engine import Engine
    from dockyard.runtime.api import Runtime


class ContainerService:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.root = engine.root / "containers"
        self._removing: set[str] = set()  # `--rm` removals this process is doing

    # plumbing ---------------------------------------------------------------------------

    def close_db(self) -> None:
        """Close this process's DB connections before a fork (the supervisor's).

        SQLite keeps per-process lock bookkeeping in memory; a child forked while a connection
        is open inherits that bookkeeping and believes it holds locks the kernel never gave it.
        Its writes can then land in a WAL that the parent deletes on close. With every
        connection closed at fork time, each side opens its own afterwards.
        """
        for attr in ("images", "volumes", "meta"):
            old = self.engine.__dict__.pop(attr, None)
            if attr == "meta" and old is not None:
                old.close()
        nets = self.engine.__dict__.pop("networks", None)
        if nets is not None:  # the network DB too; a parent holds no port reservations
            nets.close()

    @property
    def meta(self) -> Any:
        return self.engine.meta

    def dir(self, cid: str) -> Path:
        return self.root / cid

    def runtime_for(self, c: Container | str) -> Runtime:
        """The container's runtime (`--runtime`): ours by default, or runc/crun, each with a
        state root of its own under the engine's."""
        from dockyard.runtime import get_runtime

        if isinstance(c, str):
            try:
                c = self._load(c)
            except NotFound:
                return get_runtime("dockyard", root=str(self.engine.root / "runtime"))
        return self._runtime_named(c.host_config.get("Runtime") or "dockyard")

    def _runtime_named(self, name: str) -> Runtime:
        from dockyard.runtime import get_runtime

        if name in ("dockyard", "native"):
            return get_runtime("dockyard", root=str(self.engine.root / "runtime"))
        return get_runtime(name, root=str(self.engine.root / f"runtime-{Path(name).name}"))

    @contextlib.contextmanager
    def locked(self, cid: str) -> Iterator[None]:
        d = self.dir(cid)
        fd = os.open(d / "lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _load(self, cid: str) -> Container:
        text = self.meta.container(cid)
        if text is None:
            raise NotFound(f"No such container: {cid}")
        return Container.from_json(text)

    def _save(self, c: Container) -> None:
        with self.meta.tx():
            self.meta.update_container(c.id, c.to_json(), c.name)

    def _update(self, cid: str, fn: Any) -> Container:
        with self.locked(cid):
            c = self._load(cid)
            fn(c)
            self._save(c)
            return c

    # lookup -----------------------------------------------------------------------------

    def lookup(self, name_or_id: str) -> str:
        """Docker's order: full ID, exact name, then unique ID prefix."""
        s = name_or_id.lstrip("/")
        if len(s) == 64 and self.meta.container(s):
            return s
        cid = self.meta.container_by_name(s)
        if cid:
            return str(cid)
        if s and all(ch in "0123456789abcdef" for ch in s):
            ids = self.meta.containers_by_prefix(s)
            if len(ids) == 1:
                return str(ids[0])
            if len(ids) > 1:
                raise InvalidArgument(f"multiple IDs found with provided prefix: {s}")
        raise NotFound(f"No such container: {name_or_id}")

    def get(self, name_or_id: str) -> Container:
        return self.reconcile(self._load(self.lookup(name_or_id)))

    def list_containers(self) -> list[Container]:
        out = [self.reconcile(Container.from_json(t)) for t in self.meta.containers()]
        self.finish_removals({c.id for c in out})
        return out

    def users_of_volume(self, name: str) -> list[str]:
        from dockyard.container.mounts import volume_names

        self.finish_removals()
        return [
            c.id
            for c in (Container.from_json(t) for t in self.meta.containers())
            if name in volume_names(c)
        ]

    def users_of_image(self, image_id: str) -> list[tuple[str, bool]]:
        self.finish_removals()  # an unmounting rootfs still uses the image's snapshots
        out = []
        for t in self.meta.containers_of_image(image_id):
            c = Container.from_json(t)
            out.append((c.id, c.state.running))
        return out

    def supervisor_alive(self, cid: str) -> bool:
        try:
            fd = os.open(self.dir(cid) / "supervisor.lock", os.O_RDWR | os.O_CLOEXEC)
        except FileNotFoundError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            return False
        except BlockingIOError:
            return True
        finally:
            os.close(fd)

    def reconcile(self, c: Container) -> Container:
        """Repair a record whose supervisor died (kill -9, crash, reboot)."""
        if c.state.status not in ("running", "paused", "restarting"):
            return c
        if self.supervisor_alive(c.id):
            return c

        def repair(rec: Container) -> None:
            if rec.state.status not in ("running", "paused", "restarting"):
                return
            if alive(rec.state.pid, rec.state.init_start):
                # the container outlived its supervisor: it is still running, nobody logs it
                return
            rec.state.status = "exited"
            rec.state.pid = 0
            rec.state.exit_code = 255 if rec.state.exit_code == 0 else rec.state.exit_code
            rec.state.error = rec.state.error or "the container's supervisor died"
            rec.state.finished_at = rfc3339()

        c = self._update(c.id, repair)
        if c.state.status == "exited":
            self._cleanup_runtime(c.id)
        return c

    # create -----------------------------------------------------------------------------

    def create(
        self,
        image: str,
        config: dict[str, Any],
        host_config: dict[str, Any],
        *,
        name: str | None = None,
        container_id: str | None = None,
    ) -> Container:
        """A new container record (state `created`). `container_id`: the ID to give it (64
        lowercase hex, unused), as a supervisor made ahead picked it (`prefork`); else a
        random one."""
        if container_id is not None and not _is_id(container_id):
            raise InvalidArgument(f"not a container ID: {container_id!r}")
        image_id, icfg, chain = self.engine.images.run_view(image)
        cfg = dict(config)
        if cfg.get("Entrypoint") is None:
            cfg["Entrypoint"] = icfg.get("Entrypoint")
            if cfg.get("Cmd") is None:
                cfg["Cmd"] = icfg.get("Cmd")
        for k in ("WorkingDir", "User", "StopSignal"):
            if not cfg.get(k) and icfg.get(k):
                cfg[k] = icfg[k]
        if cfg.get("Healthcheck") is None and icfg.get("Healthcheck"):
            cfg["Healthcheck"] = icfg["Healthcheck"]
        cfg["Env"] = _merge_env(icfg.get("Env") or [], cfg.get("Env") or [])
        cfg["Labels"] = {**(icfg.get("Labels") or {}), **(cfg.get("Labels") or {})}
        ports = {**(icfg.get("ExposedPorts") or {}), **(cfg.get("ExposedPorts") or {})}
        if ports:
            cfg["ExposedPorts"] = ports
        cfg["Image"] = image
        if not [*(cfg.get("Entrypoint") or []), *(cfg.get("Cmd") or [])]:
            raise InvalidArgument("no command specified")
        from dockyard.container import mounts, networking

        hc = dict(host_config)
        _check_runtime(hc.get("Runtime") or "dockyard")
        network = networking.prepare(self.engine, self.lookup, cfg, hc)
        mounts.normalize(self.engine, hc, icfg.get("Volumes") or {})
        cid = container_id or os.urandom(32).hex()
        c = Container(
            id=cid,
            name="",
            image=image,
            image_id=image_id,
            created=rfc3339(),
            config=cfg,
            host_config=hc,
            network=network,
            image_config=icfg,
            image_chain=chain,
        )
        d = self.dir(cid)
        try:
            os.mkdir(d, 0o711)
        except FileNotFoundError:
            d.parent.mkdir(parents=True, exist_ok=True)
            os.mkdir(d, 0o711)
        if os.stat(d).st_mode & 0o777 != 0o711:  # a umask took bits away
            os.chmod(d, 0o711)
        for sub in ("upper", "work", "rootfs"):
            os.mkdir(d / sub)
        for attempt in range(10):
            c.name = check_name(name) if name else random_name(attempt)
            try:
                with self.meta.tx():
                    self.meta.put_container(c.id, c.name, c.image_id, time.time(), c.to_json())
                return c
            except sqlite3.IntegrityError:
                if name:
                    shutil.rmtree(d, ignore_errors=True)
                    mounts.remove_anonymous(self.engine, mounts.volume_names(c))
                    other = self.meta.container_by_name(c.name)
                    raise Conflict(
                        f'Conflict. The container name "/{c.name}" is already in use by container '
                        f'"{other}". You have to remove (or rename) that container to be able to '
                        "reuse that name."
                    ) from None
        shutil.rmtree(d, ignore_errors=True)
        raise Conflict("could not find a free container name")

    # start ------------------------------------------------------------------------------

    def start(
        self,
        name_or_id: str,
        attach: Attach | None = None,
        *,
        go: Callable[[str], None] | None = None,
    ) -> Container:
        """Start the container through its supervisor: a new one, or `go(id)` to one forked
        ahead (`run`'s `prefork.Prefork`)."""
        from dockyard.container import supervisor

        c = self.get(name_or_id)
        if c.state.status in ("running", "restarting"):
            return c
        if c.state.status == "paused":
            raise Conflict("cannot start a paused container, try unpause instead")
        if c.state.stopped_by_user:
            self._update(c.id, lambda r: setattr(r.state, "stopped_by_user", False))
        if go is not None:
            go(c.id)
        else:
            supervisor.spawn(self, c.id, attach)
        try:
            return self._load(c.id)
        except NotFound:  # a `--rm` container that already exited and is gone
            return c

    def finish_removals(self, known: set[str] | None = None) -> None:
        """Complete `--rm` removals whose record is already gone (see `removal`)."""
        from dockyard.container import removal

        removal.finish_removals(self, (known or set()) | self._removing)

    # stop, kill, pause ------------------------------------------------------------------

    def _wait_supervisor(self, cid: str, timeout: float | None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.supervisor_alive(cid):
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(0.01)
        return True

    def stop(self, name_or_id: str, timeout: int | None = None, sig: str | None = None) -> None:
        c = self.get(name_or_id)
        if not c.state.running:
            return
        self._update(c.id, lambda r: setattr(r.state, "stopped_by_user", True))
        if c.state.status == "paused":
            with contextlib.suppress(DockyardError):
                self.runtime_for(c).resume(c.id)
        t = timeout if timeout is not None else c.config.get("StopTimeout")
        t = 10 if t is None else int(t)
        signum = parse_signal(sig or c.config.get("StopSignal") or "SIGTERM")
        with contextlib.suppress(DockyardError):
            self.runtime_for(c).kill(c.id, signum)
        if t < 0 or not self._wait_supervisor(c.id, float(t)):
            with contextlib.suppress(DockyardError):
                self.runtime_for(c).kill(c.id, signal.SIGKILL, all=True)
            self._wait_supervisor(c.id, 30)
        self.reconcile(self._load(c.id))

    def kill(self, name_or_id: str, sig: str = "SIGKILL") -> None:
        c = self.get(name_or_id)
        if not c.state.running:
            raise Conflict(f"Cannot kill container: {name_or_id}: Container {c.id} is not running")
        signum = parse_signal(sig)
        self._update(c.id, lambda r: setattr(r.state, "stopped_by_user", True))
        self.runtime_for(c).kill(c.id, signum)
        if signum == signal.SIGKILL:
            self._wait_supervisor(c.id, 10)

    def pause(self, name_or_id: str) -> None:
        c = self.get(name_or_id)
        if c.state.status != "running":
            raise Conflict(f"Container {c.id} is not running")
        self.runtime_for(c).pause(c.id)
        self._update(c.id, lambda r: setattr(r.state, "status", "paused"))

    def unpause(self, name_or_id: str) -> None:
        c = self.get(name_or_id)
        if c.state.status != "paused":
            raise Conflict(f"Container {c.id} is not paused")
        self.runtime_for(c).resume(c.id)
        self._update(c.id, lambda r: setattr(r.state, "status", "running"))

    def wait(self, name_or_id: str) -> int:
        cid = self.lookup(name_or_id)
        while True:
            c = self.get(cid)
            if c.state.status in ("exited", "created", "dead") and not self.supervisor_alive(cid):
                return c.state.exit_code
            self._wait_supervisor(cid, 1.0)
            with contextlib.suppress(NotFound):
                continue

    def rename(self, name_or_id: str, new: str) -> None:
        cid = self.lookup(name_or_id)
        new_name = check_name(new)
        try:
            self._update(cid, lambda r: setattr(r, "name", new_name))
        except sqlite3.IntegrityError:
            raise Conflict(
                f'Error when allocating new name: Conflict. The container name "/{new_name}" is '
                "already in use"
            ) from None

    # remove -----------------------------------------------------------------------------

    def remove(self, name_or_id: str, *, force: bool = False, volumes: bool = False) -> None:
        c = self.get(name_or_id)
        if c.state.running:
            if not force:
                raise Conflict(
                    f"You cannot remove a running container {c.id}. Stop the container before "
                    "attempting removal or force remove"
                )
            self._update(c.id, lambda r: setattr(r.state, "stopped_by_user", True))
            with contextlib.suppress(DockyardError):
                self.runtime_for(c).kill(c.id, signal.SIGKILL, all=True)
            self._wait_supervisor(c.id, 30)
        self._remove_files(c.id)
        if volumes:
            from dockyard.container import mounts

            mounts.remove_anonymous(self.engine, mounts.volume_names(c))

    def _unmount(self, cid: str) -> None:
        from dockyard.linux import fsmount

        target = str(self.dir(cid) / "rootfs")
        while fsmount.unmount(target):
            pass

    def _cleanup_runtime(self, cid: str, runtime: str | None = None) -> None:
        from dockyard.container import networking

        with contextlib.suppress(DockyardError, OSError):
            rt = self.runtime_for(cid) if runtime is None else self._runtime_named(runtime)
            rt.delete(cid, force=True)
        self._unmount(cid)
        networking.suppress_release(self.engine, cid)  # ports, rules, veth, netns

    def _remove_files(self, cid: str) -> None:
        self._cleanup_runtime(cid)
        with self.meta.tx():
            self.meta.delete_container(cid)
        shutil.rmtree(self.dir(cid), ignore_errors=True)


def _merge_env(base: list[str], override: list[str]) -> list[str]:
    env: dict[str, str] = {}
    for e in [*base, *override]:
        k, _, v = e.partition("=")
        env[k] = v
    return [f"{k}={v}" for k, v in env.items()]


def _check_runtime(name: str) -> None:
    if name in ("dockyard", "native") or shutil.which(name):
        return
    raise InvalidArgument(f"unknown or invalid runtime name: {name}")


def parse_signal(sig: str | int) -> int:
    s = str(sig).upper()
    if s.isdigit():
        return int(s)
    if not s.startswith("SIG"):
        s = "SIG" + s
    try:
        return int(signal.Signals[s])
    except KeyError:
        raise InvalidArgument(f"Invalid signal: {sig}") from None


def _is_id(value: str) -> bool:
    return len(value) == 64 and all(ch in "0123456789abcdef" for ch in value)
