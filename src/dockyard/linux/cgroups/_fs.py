"""Cgroup filesystem I/O: the only code in Dockyard that reads or writes cgroupfs files.

Responsibility: read and write single cgroup interface files, list the processes of a cgroup tree,
remove a cgroup tree, and parse `/proc/self/mountinfo` and `/proc/PID/cgroup`.

Invariants:
- every write is one `write(2)` on a file opened `O_WRONLY|O_TRUNC` without `O_CREAT`, as
  cgroupfs requires; a missing interface file raises `Unavailable` naming the file (NotFound when
  the cgroup directory itself is gone), never creates it;
- kernel errors become typed errors that name the file and the value (EINVAL → InvalidArgument,
  EBUSY → Conflict, ESRCH → NotFound, others → DockyardError);
- nothing here knows about OCI resources; callers pass file names and strings.
"""

from __future__ import annotations

import errno
import os
import time
from pathlib import Path
from typing import NamedTuple

from dockyard.errors import Conflict, DockyardError, InvalidArgument, NotFound, Unavailable

UNIFIED = "unified"


def write(path: Path, value: str | int) -> None:
    """Write `value` to the cgroup file `path` in one write(2)."""
    data = str(value).encode()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC | os.O_CLOEXEC)
    except FileNotFoundError:
        raise _missing(path) from None
    except OSError as e:
        raise _error(e, path, value) from None
    try:
        os.write(fd, data)
    except OSError as e:
        raise _error(e, path, value) from None
    finally:
        os.close(fd)


def _error(e: OSError, path: Path, value: str | int) -> DockyardError:
    what = f"writing {str(value)!r} to {path}: {e.strerror}"
    if e.errno in (errno.EINVAL, errno.ERANGE, errno.EOPNOTSUPP):
        return InvalidArgument(what)
    if e.errno == errno.EBUSY:
        return Conflict(what)
    if e.errno == errno.ESRCH:
        return NotFound(what)
    if e.errno == errno.ENOENT:
        return Unavailable(what)
    return DockyardError(what)


def read(path: Path) -> str:
    """The stripped contents of a cgroup file; Unavailable when it is missing."""
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        raise _missing(path) from None
    except OSError as e:
        raise DockyardError(f"reading {path}: {e.strerror}") from None


def _missing(path: Path) -> DockyardError:
    """NotFound when the cgroup itself is gone, Unavailable when only the file is missing."""
    if not path.parent.is_dir():
        return NotFound(f"cgroup {path.parent} does not exist")
    return Unavailable(f"cgroup file {path} does not exist (controller missing?)")


def read_optional(path: Path) -> str | None:
    """The stripped contents of a cgroup file, or None when it is missing."""
    try:
        return path.read_text().strip()
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as e:
        raise DockyardError(f"reading {path}: {e.strerror}") from None


def read_int(path: Path) -> int | None:
    """An integer file ("max" or a missing file gives None)."""
    text = read_optional(path)
    if text is None or text == "max" or text == "":
        return None
    return int(text.split()[0])


def read_keyed(path: Path) -> dict[str, int]:
    """A flat keyed file ("key value" per line); {} when the file is missing."""
    out: dict[str, int] = {}
    for line in (read_optional(path) or "").splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].lstrip("-").isdigit():
            out[parts[0]] = int(parts[1])
    return out


def tree(directory: Path) -> list[Path]:
    """`directory` and every cgroup below it, children before parents; [] when missing."""
    if not directory.is_dir():
        return []
    out: list[Path] = []
    for top, dirs, _files in os.walk(directory, topdown=False):
        del dirs
        out.append(Path(top))
    return out


def procs(directory: Path) -> set[int]:
    """Every process in the cgroup tree at `directory` (recursive)."""
    found: set[int] = set()
    for d in tree(directory):
        text = read_optional(d / "cgroup.procs") or ""
        found.update(int(p) for p in text.split())
    return found


def mkdir(directory: Path) -> None:
    """Create `directory` and its parents; an existing cgroup is joined, not an error."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DockyardError(f"creating cgroup {directory}: {e.strerror}") from None


def rmdir_tree(directory: Path, deadline: float) -> None:
    """Remove the cgroup tree at `directory` bottom-up, retrying EBUSY until `deadline`."""
    for d in tree(directory):
        while True:
            try:
                os.rmdir(d)
                break
            except FileNotFoundError:
                break
            except OSError as e:
                if e.errno != errno.EBUSY or time.monotonic() > deadline:
                    raise Conflict(f"cannot remove cgroup {d}: {e.strerror}") from None
                time.sleep(0.01)


# ---- /proc parsing -------------------------------------------------------------------------


class Mount(NamedTuple):
    """A mounted cgroup hierarchy: where it is mounted and which cgroup is its root."""

    point: Path
    root: str  # the mounted cgroup as seen from our cgroup namespace ("/" on a host)

    def dir_for(self, cgroup: str) -> Path:
        """The directory of the absolute (namespace-relative) cgroup path `cgroup`."""
        rel = cgroup
        if self.root != "/" and (rel == self.root or rel.startswith(self.root + "/")):
            rel = rel[len(self.root) :]
        return self.point / rel.lstrip("/")


class Hierarchies(NamedTuple):
    """The cgroup hierarchies mounted in our mount namespace."""

    v1: dict[str, Mount]  # subsystem ("cpu", "memory", "name=systemd") → its hierarchy's mount
    unified: Mount | None


def _unescape(field: str) -> str:
    return field.replace("\\040", " ").replace("\\011", "\t").replace("\\134", "\\")


def parse_mountinfo(text: str, known: frozenset[str]) -> Hierarchies:
    """Cgroup mounts from mountinfo `text`; `known` is the kernel's controller names."""
    v1: dict[str, Mount] = {}
    unified: Mount | None = None
    for line in text.splitlines():
        fields = line.split()
        if " - " not in line or len(fields) < 10:
            continue
        sep = fields.index("-")
        fstype, options = fields[sep + 1], fields[sep + 3]
        mount = Mount(Path(_unescape(fields[4])), _unescape(fields[3]))
        if fstype == "cgroup2" and unified is None:
            unified = mount
        elif fstype == "cgroup":
            for opt in options.split(","):
                if (opt in known or opt.startswith("name=")) and opt not in v1:
                    v1[opt] = mount
    return Hierarchies(v1, unified)


def known_controllers() -> frozenset[str]:
    """Controller names the kernel knows (/proc/cgroups), v1 or v2."""
    text = read_optional(Path("/proc/cgroups")) or ""
    names = {line.split()[0] for line in text.splitlines() if line and not line.startswith("#")}
    return frozenset(names)


def parse_proc_cgroup(text: str) -> dict[str, str]:
    """`/proc/PID/cgroup` as {controller: path}; the v2 line ("0::/x") is keyed "unified".

    Co-mounted v1 controllers ("2:cpu,cpuacct:/x") give one key each; named hierarchies keep
    their "name=" prefix ("name=systemd").
    """
    out: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        if controllers == "":
            out[UNIFIED] = path
        for c in controllers.split(","):
            if c:
                out[c] = path
    return out
