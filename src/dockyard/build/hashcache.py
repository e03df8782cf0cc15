"""Persistent file-hash cache for build contexts (layer L4).

A file is re-hashed only when its (path, size, mtime_ns, inode, ctime_ns) changed since the last
build: the cache maps that key to the file's sha256 and its xattrs (ctime changes whenever
content, mode, owner or xattrs change, so the cached xattrs are as fresh as the digest).

Storage is one small file per context root under a caller-given state dir (`marshal` of a dict,
loaded whole at open in milliseconds, rewritten atomically — temp file + rename — at close when
something changed), so a cached rebuild costs one lstat and one dict lookup per file.
`hash_calls` counts actual hashing (tests use it).

Invariants: a stale entry is never returned (the whole key must match, and a file changed within
`RACY_NS` of being hashed is not trusted later, since file times are coarse); a crash loses at
most the updates of the current build; the cache is only an accelerator — deleting it is safe.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import marshal
import os
import tempfile
import time
from pathlib import Path

_CHUNK = 1 << 20
RACY_NS = 100_000_000
Key = tuple[int, int, int, int]
Entry = tuple[Key, str, str]


def hash_file(path: str | Path) -> str:
    """sha256 hex of a file's bytes, read in large chunks."""
    h = hashlib.sha256()
    with open(path, "rb", buffering=0) as f:
        while True:
            b = f.read(_CHUNK)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


def read_xattrs(path: str | Path) -> str:
    """The file's xattrs as canonical JSON ("" when none or unsupported)."""
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return ""
    if not names:
        return ""
    out = {}
    for n in sorted(names):
        try:
            out[n] = os.getxattr(path, n, follow_symlinks=False).hex()
        except OSError:
            continue
    return json.dumps(out, sort_keys=True, separators=(",", ":")) if out else ""


class HashCache:
    """Cache of (digest, xattrs) per file of one context root. Use as a context manager."""

    VERSION = 1

    def __init__(self, state_dir: Path | None, root: Path) -> None:
        self.root = str(root.resolve())
        self.hash_calls = 0
        self._rows: dict[str, Entry] = {}
        self._dirty = False
        self._file: Path | None = None
        if state_dir is not None:
            name = hashlib.sha256(self.root.encode("utf-8", "surrogateescape")).hexdigest()
            self._file = state_dir / "build-hashcache" / f"{name[:32]}.bin"
            self._load()

    def _load(self) -> None:
        assert self._file is not None
        try:
            data = marshal.loads(self._file.read_bytes())
        except (OSError, ValueError, EOFError, TypeError):
            return
        if isinstance(data, tuple) and len(data) == 3 and data[:2] == (self.VERSION, self.root):
            rows = data[2]
            if isinstance(rows, dict):
                self._rows = rows

    def __enter__(self) -> HashCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def lookup(self, rel: str, st: os.stat_result) -> tuple[str, str]:
        """(sha256 hex, xattrs) of regular file `rel` whose lstat is `st`."""
        key = (st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns)
        hit = self._rows.get(rel)
        if hit is not None and hit[0] == key:
            return hit[1], hit[2]
        full = os.path.join(self.root, rel)
        self.hash_calls += 1
        started = time.time_ns()
        entry = (key, hash_file(full), read_xattrs(full))
        if started - max(st.st_mtime_ns, st.st_ctime_ns) > RACY_NS:
            self._rows[rel] = entry
            self._dirty = True
        elif rel in self._rows:
            del self._rows[rel]
            self._dirty = True
        return entry[1], entry[2]

    @property
    def rows(self) -> dict[str, Entry]:
        """The entries (read-only use: a build worker reports the ones it added)."""
        return self._rows

    def merge(self, rows: dict[str, Entry]) -> None:
        """Take entries another process computed (a build worker's)."""
        if rows:
            self._rows.update(rows)
            self._dirty = True

    def xattrs(self, rel: str) -> str:
        """xattrs of a non-regular entry (not cached: directories and links are few)."""
        return read_xattrs(os.path.join(self.root, rel))

    def close(self) -> None:
        """Persist new entries (atomically); safe to call twice."""
        if self._file is None or not self._dirty:
            return
        self._file.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self._file.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(marshal.dumps((self.VERSION, self.root, self._rows)))
            os.replace(tmp, self._file)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        self._dirty = False
