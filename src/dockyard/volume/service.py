"""The volume service (layer L3): named volumes of Docker's `local` driver.

Responsibility: create, find, list, remove and prune volumes, and prepare a volume to be
bind-mounted into a container (`prepare_mount`: create on first use, mount a tmpfs-type
volume, copy the image's content up into a new empty volume). Layout:

    <root>/volumes/.lock             flock serialising every change to volumes
    <root>/volumes/<name>/_data      the volume's data: what containers bind-mount
    <root>/meta.db, table volumes    name, driver, created, labels, options, used

Invariants:
- Every change runs under the exclusive flock, so two processes creating the same name at once
  make one volume, and a volume is never removed while another process prepares it.
- A row is inserted only after the volume's `_data` directory exists, and deleted only after
  the directory was renamed away; a directory without a row (a crash during create) is
  adopted by the next create of its name, never wiped.
- A volume in use (the `in_use` hook names the containers using it) is never removed; a
  mounted `_data` (tmpfs-type volumes) is unmounted before anything is deleted, and nothing is
  deleted while a mount remains under the volume.
- Copy-up happens at most once, on a volume's first use and only into an empty volume; for a
  plain volume the copy is built beside `_data` and renamed over it, so a crash never leaves a
  half-copied volume.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import sqlite3
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dockyard.errors import Conflict, DockyardError, InvalidArgument, NotFound, Unavailable
from dockyard.store.meta import MetaDB
from dockyard.volume import copyup
from dockyard.volume.model import (
    ANONYMOUS_LABEL,
    DRIVER,
    PRUNE_FILTERS,
    Volume,
    check_driver,
    check_filters,
    check_name,
    check_options,
    match_labels,
    mount_options,
    natural_key,
    no_such_volume,
    selector,
)

InUse = Callable[[str], list[str]]
Filters = Mapping[str, list[str]]
Names = list[str]
_COLUMNS = "name, driver, created, labels, options, used"


def _nobody_uses(_name: str) -> list[str]:
    return []


class VolumeService:
    def __init__(self, root: Path, meta: MetaDB, in_use: InUse | None = None) -> None:
        self.root = Path(root).absolute()
        self.dir = self.root / "volumes"
        self.meta = meta
        # container IDs using a volume; the engine wires it to its containers
        self.in_use: InUse = in_use or _nobody_uses

    def data_path(self, name: str) -> Path:
        return self.dir / name / "_data"

    # queries ----------------------------------------------------------------------------

    def get(self, name: str) -> Volume:
        v = self._row(name) if name else None
        if v is None:
            raise no_such_volume(name)
        return v

    def exists(self, name: str) -> bool:
        return self._row(name) is not None

    def inspect(self, name: str) -> dict[str, Any]:
        return self.get(name).inspect()

    def list(self, filters: Filters | None = None) -> list[Volume]:
        """Volumes in the Docker CLI's natural name order, `volume ls --filter` applied."""
        rows = self.meta.conn.execute(f"SELECT {_COLUMNS} FROM volumes").fetchall()
        vols = [self._volume(r) for r in rows]
        if filters:
            keep = selector(filters, self.in_use)
            vols = [v for v in vols if keep(v)]
        vols.sort(key=lambda v: natural_key(v.name))
        return vols

    def size(self, name: str) -> int:
        return copyup.tree_size(self.data_path(self.get(name).name))

    # changes ----------------------------------------------------------------------------

    def create(
        self,
        name: str | None = None,
        driver: str = DRIVER,
        labels: Mapping[str, str] | None = None,
        options: Mapping[str, str] | None = None,
    ) -> Volume:
        """Create a volume, or return the existing one of that name (as Docker does).

        Without a name the volume is anonymous: a random 64-hex name and the label
        `com.docker.volume.anonymous`.
        """
        check_driver(driver or DRIVER)
        labels = dict(labels or {})
        options = dict(options or {})
        if not name:
            name = os.urandom(32).hex()
            labels[ANONYMOUS_LABEL] = ""
        check_name(name)
        check_options(name, options)
        with self._lock():
            return self._row(name) or self._create_locked(name, labels, options)

    def remove(self, name: str, force: bool = False) -> bool:
        """Remove a volume; False when it did not exist and `force` is set.

        Raises NotFound ("get NAME: no such volume") and Conflict ("remove NAME: volume is in
        use - [ids]") as Docker does; `force` does not remove a volume in use.
        """
        with self._lock():
            return self._remove_locked(name, force)

    def prune(self, all_volumes: bool = False, filters: Filters | None = None) -> tuple[Names, int]:
        """Remove unused local volumes without mount options: anonymous ones unless
        `all_volumes` (or the filter `all=true`), as Docker >= 23. Returns (names, bytes)."""
        wanted = {k: [*v] for k, v in (filters or {}).items()}
        check_filters(wanted, PRUNE_FILTERS)
        if _prune_all(wanted.pop("all", None)):
            all_volumes = True
        if not all_volumes:
            wanted.setdefault("label", []).append(ANONYMOUS_LABEL)
        deleted: Names = []
        freed = 0
        with self._lock():
            self._sweep_trash()
            for v in self.list():
                if v.driver != DRIVER or v.options or not _labels_match(wanted, v.labels):
                    continue
                if self.in_use(v.name):
                    continue
                size = copyup.tree_size(self.data_path(v.name))
                try:
                    self._remove_locked(v.name, force=False)
                except (Conflict, NotFound, Unavailable):
                    continue
                deleted.append(v.name)
                freed += size
        return deleted, freed

    def prepare_mount(
        self, name: str, image_rootfs_path_at_mountpoint: Path | None, create: bool = True
    ) -> Path:
        """Make volume `name` ready to be bind-mounted into a container; return the source.

        Creates the volume when it is missing and `create` is set (NotFound otherwise), mounts
        a tmpfs-type volume's filesystem at `_data` if it is not mounted, and on the volume's
        first use copies the image's content at the mount point (a host path inside the image
        rootfs; see `copyup.resolve_in_rootfs`) into it when the volume is empty. Pass None
        for no copy (`nocopy`, or nothing in the image there).
        """
        check_name(name)
        src = image_rootfs_path_at_mountpoint
        with self._lock():
            v = self._row(name)
            if v is None:
                if not create:
                    raise no_such_volume(name)
                v = self._create_locked(name, {}, {})
            data = self.data_path(name)
            data.mkdir(parents=True, exist_ok=True)
            if v.needs_mount:
                self._mount(v)
            if not v.used:
                if src is not None and copyup.is_empty_dir(data):
                    try:
                        self._populate(v, src)
                    except OSError as e:
                        raise DockyardError(
                            f"copying the image's {src} into volume {name}: {e}"
                        ) from None
                with self.meta.tx() as c:
                    c.execute("UPDATE volumes SET used=1 WHERE name=?", (name,))
            return data

    # internals --------------------------------------------------------------------------

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o701)
        fd = os.open(self.dir / ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _row(self, name: str) -> Volume | None:
        r = self.meta.conn.execute(
            f"SELECT {_COLUMNS} FROM volumes WHERE name=?", (name,)
        ).fetchone()
        return self._volume(r) if r else None

    def _volume(self, r: tuple[Any, ...]) -> Volume:
        name, driver, created, labels, options, used = r
        return Volume(
            name=name,
            driver=driver,
            created=created,
            mountpoint=str(self.data_path(name)),
            labels=json.loads(labels),
            options=json.loads(options),
            used=bool(used),
        )

    def _create_locked(self, name: str, labels: dict[str, str], options: dict[str, str]) -> Volume:
        # A directory without a row (a crash between mkdir and insert, or a lost DB) is
        # adopted, never wiped: it holds nothing or the user's data.
        vdir = self.dir / name
        vdir.mkdir(exist_ok=True)
        os.chmod(vdir, 0o755)
        with contextlib.suppress(FileExistsError):
            (vdir / "_data").mkdir()
            os.chmod(vdir / "_data", 0o755)
        created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        try:
            with self.meta.tx() as c:
                c.execute(
                    f"INSERT INTO volumes({_COLUMNS}) VALUES (?,?,?,?,?,0)",
                    (name, DRIVER, created, json.dumps(labels), json.dumps(options)),
                )
        except sqlite3.IntegrityError:  # another engine without our lock file; keep theirs
            pass
        v = self._row(name)
        assert v is not None
        return v

    def _remove_locked(self, name: str, force: bool) -> bool:
        if self._row(name) is None:
            if force:
                return False
            raise no_such_volume(name)
        users = self.in_use(name)
        if users:
            raise Conflict(f"remove {name}: volume is in use - [{', '.join(users)}]")
        # directory out of the way first, row second: a crash in between leaves a row
        # whose data is gone (prepare_mount makes a new _data), never old data under a name
        # that was removed
        trash = self._to_trash(name)
        with self.meta.tx() as c:
            c.execute("DELETE FROM volumes WHERE name=?", (name,))
        if trash is not None:
            shutil.rmtree(trash, ignore_errors=True)
        return True

    def _mount(self, v: Volume) -> None:
        from dockyard.linux import fsmount

        data = self.data_path(v.name)
        if fsmount.is_mounted(str(data)):
            return
        fstype, source, opts = mount_options(v.options)
        try:
            fsmount.mount(fstype, source, str(data), opts)
        except OSError as e:
            raise Unavailable(
                f"error while mounting volume '{data}': failed to mount local volume: "
                f"mount {source}:{data}, data: {','.join(opts)}: {os.strerror(e.errno or 5)}"
            ) from None
        except ValueError as e:  # a mount option our parser refuses
            raise InvalidArgument(f"error while mounting volume '{data}': {e}") from None

    def _populate(self, v: Volume, src: Path) -> None:
        data = self.data_path(v.name)
        vdir = data.parent
        for leftover in vdir.glob(".copyup-*"):
            shutil.rmtree(leftover, ignore_errors=True)
        if v.needs_mount:  # a mount point cannot be replaced: copy in place
            copyup.copy_up(src, data)
            return
        tmp = vdir / f".copyup-{os.urandom(8).hex()}"
        tmp.mkdir(mode=0o700)
        try:
            if copyup.copy_up(src, tmp):
                os.rename(tmp, data)  # replaces the empty _data atomically
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)

    def _unmount_all(self, under: Path) -> None:
        """Unmount every mount at or below `under`, deepest first; Unavailable if one stays."""
        found = _mounts_under(under)
        if not found:
            return
        from dockyard.linux import fsmount

        for target in sorted(found, key=len, reverse=True):
            with contextlib.suppress(OSError):
                fsmount.unmount(target)
        if _mounts_under(under):
            raise Unavailable(f"volume at {under} is still mounted; unmount it and retry")

    def _to_trash(self, name: str) -> Path | None:
        """Unmount everything under the volume's directory and rename it to a trash name."""
        vdir = self.dir / name
        if not vdir.exists() and not vdir.is_symlink():
            return None
        self._unmount_all(vdir)
        trash = self.dir / f".trash-{os.urandom(8).hex()}"
        os.rename(vdir, trash)
        return trash

    def _sweep_trash(self) -> None:
        for leftover in self.dir.glob(".trash-*"):
            if not _mounts_under(leftover):
                shutil.rmtree(leftover, ignore_errors=True)


def _labels_match(filters: Mapping[str, list[str]], labels: Mapping[str, str]) -> bool:
    if not match_labels(filters.get("label", []), labels):
        return False
    return not (filters.get("label!") and match_labels(filters["label!"], labels))


def _prune_all(values: list[str] | None) -> bool:
    """The prune filter `all=` (Go's ParseBool), at most one value."""
    if not values:
        return False
    if len(values) > 1:
        raise InvalidArgument(f"invalid filter 'all={values}': only one value is expected")
    v = values[0]
    if v in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if v in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    raise InvalidArgument(
        f"invalid filter 'all': strconv.ParseBool: parsing \"{v}\": invalid syntax"
    )


def _unescape(field: str) -> str:
    """mountinfo escapes space, tab, newline and backslash as octal (\\040)."""
    out, i = [], 0
    while i < len(field):
        code = field[i + 1 : i + 4]
        if field[i] == "\\" and len(code) == 3 and code.isdigit():
            out.append(chr(int(code, 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def _mounts_under(path: Path) -> list[str]:
    top = os.path.realpath(path)
    prefix = top.rstrip("/") + "/"
    found: list[str] = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            target = _unescape(line.split()[4])
            if target == top or target.startswith(prefix):
                found.append(target)
    return found
