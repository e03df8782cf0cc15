"""A minimal inotify watch: "did any of these files change since I looked?".

Responsibility: `ChangeWatch(dirs, suffix)` watches directories for files ending in `suffix`
being written, replaced, created, removed or having their attributes changed; `changed()` answers
with one non-blocking read (no per-file stat), so a long-lived process (the command server) can
check before every request that the code it imported is still the code on disk.

Invariants: best effort — when inotify is unavailable (no libc symbol, watch limit reached),
`ChangeWatch.open` returns None and the caller falls back to comparing stat results; a queue
overflow counts as a change; once a change is seen, `changed()` stays true.
"""

from __future__ import annotations

import ctypes
import os
import struct

IN_MODIFY = 0x002
IN_ATTRIB = 0x004
IN_CLOSE_WRITE = 0x008
IN_MOVED_FROM = 0x040
IN_MOVED_TO = 0x080
IN_CREATE = 0x100
IN_DELETE = 0x200
IN_DELETE_SELF = 0x400
IN_MOVE_SELF = 0x800
IN_Q_OVERFLOW = 0x4000
IN_NONBLOCK = os.O_NONBLOCK
IN_CLOEXEC = os.O_CLOEXEC
_MASK = (
    IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE | IN_DELETE
    | IN_DELETE_SELF | IN_MOVE_SELF
)  # fmt: skip
_EVENT = struct.Struct("iIII")  # wd, mask, cookie, len (then len bytes of NUL-padded name)


class ChangeWatch:
    def __init__(self, fd: int, suffix: bytes) -> None:
        self.fd = fd
        self.suffix = suffix
        self._changed = False

    @classmethod
    def open(cls, dirs: list[str], suffix: str) -> ChangeWatch | None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            fd = libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        except (OSError, AttributeError):
            return None
        if fd < 0:
            return None
        for d in dirs:
            if libc.inotify_add_watch(fd, os.fsencode(d), _MASK) < 0:
                os.close(fd)
                return None
        return cls(fd, os.fsencode(suffix))

    def changed(self) -> bool:
        while not self._changed:
            try:
                data = os.read(self.fd, 65536)
            except BlockingIOError:
                break
            off = 0
            while off + _EVENT.size <= len(data):
                _wd, mask, _cookie, n = _EVENT.unpack_from(data, off)
                name = data[off + _EVENT.size : off + _EVENT.size + n].rstrip(b"\0")
                off += _EVENT.size + n
                gone = mask & (IN_Q_OVERFLOW | IN_DELETE_SELF | IN_MOVE_SELF)
                if gone or name.endswith(self.suffix):
                    self._changed = True
        return self._changed

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
