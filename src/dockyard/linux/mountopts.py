"""OCI mount options to mount(2) arguments (pure, no I/O).

Responsibility: split a mount's `options` list into mount flags, propagation flags, the
filesystem data string (`mode=755,size=65536k`) and whether it is a (recursive) bind, following
the option table of the OCI runtime spec (config.md, "Mounts") and mount(8). Invariants: options
that clear a flag (rw, suid, dev, exec, atime...) clear it even when set earlier, later options
win; unknown options that are not `key=value` pass to the filesystem as data, like mount(8).
"""

from __future__ import annotations

from dockyard.linux import kernel as k

_SET: dict[str, int] = {
    "ro": k.MS_RDONLY,
    "nosuid": k.MS_NOSUID,
    "nodev": k.MS_NODEV,
    "noexec": k.MS_NOEXEC,
    "sync": k.MS_SYNCHRONOUS,
    "remount": k.MS_REMOUNT,
    "mand": k.MS_MANDLOCK,
    "dirsync": k.MS_DIRSYNC,
    "nosymfollow": k.MS_NOSYMFOLLOW,
    "noatime": k.MS_NOATIME,
    "nodiratime": k.MS_NODIRATIME,
    "relatime": k.MS_RELATIME,
    "strictatime": k.MS_STRICTATIME,
    "lazytime": k.MS_LAZYTIME,
    "silent": k.MS_SILENT,
}
_CLEAR: dict[str, int] = {
    "rw": k.MS_RDONLY,
    "suid": k.MS_NOSUID,
    "dev": k.MS_NODEV,
    "exec": k.MS_NOEXEC,
    "async": k.MS_SYNCHRONOUS,
    "nomand": k.MS_MANDLOCK,
    "symfollow": k.MS_NOSYMFOLLOW,
    "atime": k.MS_NOATIME,
    "diratime": k.MS_NODIRATIME,
    "norelatime": k.MS_RELATIME,
    "nostrictatime": k.MS_STRICTATIME,
    "nolazytime": k.MS_LAZYTIME,
    "loud": k.MS_SILENT,
}
PROPAGATION: dict[str, int] = {
    "private": k.MS_PRIVATE,
    "rprivate": k.MS_PRIVATE | k.MS_REC,
    "shared": k.MS_SHARED,
    "rshared": k.MS_SHARED | k.MS_REC,
    "slave": k.MS_SLAVE,
    "rslave": k.MS_SLAVE | k.MS_REC,
    "unbindable": k.MS_UNBINDABLE,
    "runbindable": k.MS_UNBINDABLE | k.MS_REC,
}
# Options runc accepts that change nothing in mount(2) itself.
_IGNORED = frozenset({"defaults", "tmpcopyup", "idmap", "ridmap", "norecursive", "recursive"})


class MountOptions:
    """Parsed options: mount flags, propagation changes (in order), fs data, bind, rbind."""

    __slots__ = ("bind", "data", "flags", "propagation", "recursive")

    def __init__(
        self, flags: int, propagation: list[int], data: str, bind: bool, recursive: bool
    ) -> None:
        self.flags, self.propagation, self.data = flags, propagation, data
        self.bind, self.recursive = bind, recursive


def parse(options: list[str] | None, fstype: str = "") -> MountOptions:
    """Parse OCI `options`; `fstype` "bind" makes it a bind mount even without the option."""
    flags = 0
    propagation: list[int] = []
    data: list[str] = []
    bind = fstype == "bind"
    recursive = False
    for opt in options or []:
        if opt in ("bind", "rbind"):
            bind = True
            recursive = recursive or opt == "rbind"
        elif opt in _SET:
            flags |= _SET[opt]
        elif opt in _CLEAR:
            flags &= ~_CLEAR[opt]
        elif opt in PROPAGATION:
            propagation.append(PROPAGATION[opt])
        elif opt in _IGNORED or (opt.startswith("r") and opt[1:] in _SET):
            continue
        else:
            data.append(opt)
    return MountOptions(flags, propagation, ",".join(data), bind, recursive)


_ST_TO_MS = {
    1: k.MS_RDONLY,
    2: k.MS_NOSUID,
    4: k.MS_NODEV,
    8: k.MS_NOEXEC,
    16: k.MS_SYNCHRONOUS,
    64: k.MS_MANDLOCK,
    1024: k.MS_NOATIME,
    2048: k.MS_NODIRATIME,
    4096: k.MS_RELATIME,
}


def statvfs_flags(f_flag: int) -> int:
    """mount(2) flags matching `os.statvfs().f_flag` (ST_RELATIME is 4096, MS_RELATIME is not)."""
    flags = 0
    for st, ms in _ST_TO_MS.items():
        if f_flag & st:
            flags |= ms
    return flags
