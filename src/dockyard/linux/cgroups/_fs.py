"""Cgroup filesystem I/O: the only code in Dockyard that reads or writes cgroupfs files.

Responsibility: read and write single cgroup interface files, list the processes of a cgroup tree,
remove a cgroup tree, and parse `/proc/self/mountinfo` and `/proc/PID/cgroup`.

Invariants:
- every write is one `write(2)` on a file opened `O_WRONLY|O_TRUNC` without `O_CREAT`, as
  cgroupfs requires; a missing interface file raises `Unavailable` naming the file (NotFound when
  the cgroup directory itself is gone), never creates it;
- kernel errors become typed errors that name the file and the value (EINVAL → InvalidArgument,
  EBUSY → Conflict, ESRCH → NotFound, others → DockyardError);
- nothing here knows about OCI resources; callers pass file names and strings;
- paths are plain `str` (normalised, no trailing slash): this package is on the path of every
  `dockyard-runtime run`, and `pathlib` costs more to import than the kernel work it wraps.
"""

from __future__ import annotations

import errno
import os
import time

from dockyard.errors import Conflict, DockyardError, InvalidArgument, NotFound, Unavailable

UNIFIED = "unified"


def join(directory: str, name: str) -> str:
    """`directory`/`name` (os.path.join without its generality; both are well-formed)."""
    return directory + "/" + name if directory != "/" else "/" + name


def write(path: str, value: str | int) -> None:
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


def _error(e: OSError, path: str, value: str | int) -> DockyardError:
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


def _read_text(path: str) -> str:
    """The whole file, with open/read/close alone (a buffered file object adds five system
    calls per read: fstat twice, an ioctl, two lseeks)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        chunks = []
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
    finally:
        os.close(fd)
    return b"".join(chunks).decode()


def read(path: str) -> str:
    """The stripped contents of a cgroup file; Unavailable when it is missing."""
    try:
        return _read_text(path).strip()
    except FileNotFoundError:
        raise _missing(path) from None
    except OSError as e:
        raise DockyardError(f"reading {path}: {e.strerror}") from None


def _missing(path: str) -> DockyardError:
    """NotFound when the cgroup itself is gone, Unavailable when only the file is missing."""
    parent = os.path.dirname(path)
    if not os.path.isdir(parent):
        return NotFound(f"cgroup {parent} does not exist")
    return Unavailable(f"cgroup file {path} does not exist (controller missing?)")


def read_optional(path: str) -> str | None:
    """The stripped contents of a cgroup file, or None when it is missing."""
    try:
        return _read_text(path).strip()
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as e:
        raise DockyardError(f"reading {path}: {e.strerror}") from None


def read_int(path: str) -> int | None:
    """An integer file ("max" or a missing file gives None)."""
    text = read_optional(path)
    if text is None or text == "max" or text == "":
        return None
    return int(text.split()[0])


def read_keyed(path: str) -> dict[str, int]:
    """A flat keyed file ("key value" per line); {} when the file is missing."""
    out: dict[str, int] = {}
    for line in (read_optional(path) or "").splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].lstrip("-").isdigit():
            out[parts[0]] = int(parts[1])
    return out


def tree(directory: str) -> list[str]:
    """`directory` and every cgroup below it, children before parents; [] when missing."""
    try:
        entries = list(os.scandir(directory))
    except (FileNotFoundError, NotADirectoryError):
        return []
    out: list[str] = []
    for e in entries:
        if e.is_dir(follow_symlinks=False):
            out.extend(tree(e.path))
    out.append(directory)
    return out


def procs(directory: str) -> set[int]:
    """Every process in the cgroup tree at `directory` (recursive)."""
    found: set[int] = set()
    for d in tree(directory):
        text = read_optional(join(d, "cgroup.procs")) or ""
        found.update(int(p) for p in text.split())
    return found


def mkdir(directory: str) -> None:
    """Create `directory` and its parents; an existing cgroup is joined, not an error."""
    try:
        os.mkdir(directory)
    except FileExistsError:
        return
    except FileNotFoundError:
        pass  # a parent is missing
    except OSError as e:
        raise DockyardError(f"creating cgroup {directory}: {e.strerror}") from None
    else:
        return
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError as e:
        raise DockyardError(f"creating cgroup {directory}: {e.strerror}") from None


def remove_if_empty(directory: str) -> bool:
    """rmdir(2) the cgroup `directory` if it has no processes and no children; whether it is
    gone now (False: still in use, or a non-cgroup directory with files in it)."""
    try:
        os.rmdir(directory)
    except FileNotFoundError:
        return True
    except OSError as e:
        if e.errno in (errno.EBUSY, errno.ENOTEMPTY, errno.EEXIST):
            return False
        raise Conflict(f"cannot remove cgroup {directory}: {e.strerror}") from None
    return True


def rmdir_tree(directory: str, deadline: float) -> None:
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


def normpath(path: str | os.PathLike[str]) -> str:
    """A directory given as str or Path, normalised (no trailing slash, no "." or "//")."""
    return os.path.normpath(os.fspath(path))


def is_within(directory: str, root: str) -> bool:
    """Whether `directory` is `root` or below it (both normalised)."""
    return directory == root or directory.startswith(root.rstrip("/") + "/")


# ---- /proc parsing -------------------------------------------------------------------------


class Mount:
    """A mounted cgroup hierarchy: where it is mounted and which cgroup is its root."""

    __slots__ = ("point", "root")

    def __init__(self, point: str | os.PathLike[str], root: str) -> None:
        self.point = normpath(point)
        self.root = root  # the mounted cgroup as seen from our cgroup namespace ("/" on a host)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Mount) and (self.point, self.root) == (other.point, other.root)

    def __hash__(self) -> int:
        return hash((self.point, self.root))

    def __repr__(self) -> str:
        return f"Mount({self.point!r}, {self.root!r})"

    def dir_for(self, cgroup: str) -> str:
        """The directory of the absolute (namespace-relative) cgroup path `cgroup`."""
        rel = cgroup
        if self.root != "/" and (rel == self.root or rel.startswith(self.root + "/")):
            rel = rel[len(self.root) :]
        rel = rel.strip("/")
        return normpath(join(self.point, rel)) if rel else self.point


class Hierarchies:
    """The cgroup hierarchies mounted in our mount namespace."""

    __slots__ = ("unified", "v1")

    def __init__(self, v1: dict[str, Mount], unified: Mount | None) -> None:
        self.v1 = v1  # subsystem ("cpu", "memory", "name=systemd") → its hierarchy's mount
        self.unified = unified


def _unescape(field: str) -> str:
    return field.replace("\\040", " ").replace("\\011", "\t").replace("\\134", "\\")


def parse_mountinfo(text: str, known: frozenset[str]) -> Hierarchies:
    """Cgroup mounts from mountinfo `text`; `known` is the kernel's controller names."""
    v1: dict[str, Mount] = {}
    unified: Mount | None = None
    for line in text.splitlines():
        if "cgroup" not in line or " - " not in line:
            continue
        fields = line.split()
        if len(fields) < 10:
            continue
        sep = fields.index("-")
        fstype, options = fields[sep + 1], fields[sep + 3]
        if fstype not in ("cgroup", "cgroup2"):
            continue
        mount = Mount(_unescape(fields[4]), _unescape(fields[3]))
        if fstype == "cgroup2" and unified is None:
            unified = mount
        elif fstype == "cgroup":
            for opt in options.split(","):
                if (opt in known or opt.startswith("name=")) and opt not in v1:
                    v1[opt] = mount
    return Hierarchies(v1, unified)


def known_controllers() -> frozenset[str]:
    """Controller names the kernel knows (/proc/cgroups), v1 or v2."""
    text = read_optional("/proc/cgroups") or ""
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
