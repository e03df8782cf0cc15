"""Build context: a directory, a tar (plain/gzip) or stdin; COPY source lookup; checksums (L4).

`open_build(context, dockerfile, stdin=..., work_dir=...)` returns a `BuildInput` (the Dockerfile
text and a `BuildContext`). `-` as context reads stdin: a tar is a context, anything else is the
Dockerfile alone with an empty context; `-f -` reads the Dockerfile from stdin. A tar is
extracted (no path escapes) into a private directory under `work_dir`, removed by `close()`.

`BuildContext.resolve(src)` lists the context paths a COPY source names (Go filepath.Match
wildcards, `.dockerignore` applied); `checksum(srcs)` is the CONTENT checksum for the cache key:
per entry its relative name, type, mode bits, uid/gid as the layer will record them, size, sha256
of the bytes, symlink target and xattrs — never mtimes. File digests come from a persistent
`HashCache` keyed by (path, size, mtime_ns, inode, ctime), so unchanged files are not re-read.

Invariants: every path handed out is relative, `/`-separated and inside the context root;
symlinks are never followed (lstat), so a link cannot pull files from outside the context.
"""

from __future__ import annotations

import hashlib
import io
import os
import posixpath
import shutil
import stat
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from dockyard.build.dockerignore import Matcher, find_ignore_file, read_patterns, walk
from dockyard.build.gomatch import has_meta, match
from dockyard.build.hashcache import HashCache
from dockyard.digest import Digest
from dockyard.errors import InvalidArgument, NotFound

Owner = tuple[int, int] | None


def clean_source(src: str) -> str:
    """A COPY source as a context-relative path ("." for the root); `..` cannot escape."""
    p = posixpath.normpath("/" + src).lstrip("/")
    return p or "."


class BuildContext:
    """Files of a build context rooted at `root`, filtered by `.dockerignore` patterns."""

    def __init__(
        self,
        root: Path,
        patterns: list[str] | None = None,
        *,
        state_dir: Path | None = None,
        cleanup: Path | None = None,
    ) -> None:
        self.root = root
        self.matcher = Matcher(patterns or [])
        self._state_dir = state_dir
        self._cleanup = cleanup
        self._cache: HashCache | None = None

    def __enter__(self) -> BuildContext:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def hash_cache(self) -> HashCache:
        if self._cache is None:
            self._cache = HashCache(self._state_dir, self.root)
        return self._cache

    def close(self) -> None:
        if self._cache is not None:
            self._cache.close()
            self._cache = None
        if self._cleanup is not None:
            shutil.rmtree(self._cleanup, ignore_errors=True)
            self._cleanup = None

    # --- listing -------------------------------------------------------------------------------
    def is_excluded(self, path: str) -> bool:
        return self.matcher.is_excluded(clean_source(path))

    def files(self, start: str = ".") -> list[str]:
        """Every non-excluded path under `start` (itself excluded), parents before children."""
        return [rel for rel, _ in self._walk(start)]

    def _walk(self, start: str) -> Iterator[tuple[str, os.DirEntry[str]]]:
        start = clean_source(start)
        if start == ".":
            return walk(self.root, self.matcher)
        if self.is_excluded(start) and not self.matcher.could_reinclude(start):
            return iter(())
        return walk(os.path.join(self.root, start), self.matcher, start + "/")

    def _lstat(self, rel: str) -> os.stat_result | None:
        try:
            return os.lstat(self.root / rel) if rel != "." else os.lstat(self.root)
        except (FileNotFoundError, NotADirectoryError):
            return None

    def resolve(self, src: str) -> list[str]:
        """Context paths a COPY/ADD source names; `NotFound` when nothing matches."""
        rel = clean_source(src)
        if not has_meta(rel):
            if self._lstat(rel) is None or (rel != "." and self.is_excluded(rel)):
                raise NotFound(f'"{src}": not found')
            return [rel]
        found = self._glob(rel.split("/"))
        if not found:
            raise NotFound(f'"{src}": no source files were specified')
        return found

    def _glob(self, segs: list[str]) -> list[str]:
        current = [""]
        for i, seg in enumerate(segs):
            last = i == len(segs) - 1
            nxt: list[str] = []
            for d in current:
                full = self.root / d if d else self.root
                if not has_meta(seg):
                    cand = [seg] if os.path.lexists(full / seg) else []
                else:
                    try:
                        names = sorted(os.listdir(full))
                    except (NotADirectoryError, FileNotFoundError):
                        continue
                    cand = [n for n in names if match(seg, n)]
                for name in cand:
                    rel = f"{d}/{name}" if d else name
                    if self.is_excluded(rel):
                        continue
                    full_rel = self.root / rel
                    if last or (full_rel.is_dir() and not full_rel.is_symlink()):
                        nxt.append(rel)
            current = nxt
        return current

    # --- checksums -----------------------------------------------------------------------------
    def checksum(self, sources: list[str], owner: Owner = (0, 0)) -> Digest:
        """Content checksum of resolved sources (each a file, link or directory tree).
        `owner` is the uid/gid the layer will record (None: as on disk)."""
        h = hashlib.sha256()
        for src in sources:
            h.update(f"{src}\0{self.checksum_path(src, owner)}\n".encode())
        return Digest("sha256:" + h.hexdigest())

    def checksum_path(self, src: str, owner: Owner = (0, 0)) -> Digest:
        """Checksum of one source; a directory covers its whole (non-excluded) tree, with
        names relative to it."""
        rel = clean_source(src)
        st = self._lstat(rel)
        if st is None:
            raise NotFound(f'"{src}": not found')
        parts = [self._record(".", rel, st, owner)]
        if stat.S_ISDIR(st.st_mode):
            cut = 0 if rel == "." else len(rel) + 1
            record = self._record
            for path, entry in self._walk(rel):
                parts.append(record(path[cut:], path, entry.stat(follow_symlinks=False), owner))
        return Digest("sha256:" + hashlib.sha256(b"".join(parts)).hexdigest())

    def _record(self, name: str, rel: str, st: os.stat_result, owner: Owner) -> bytes:
        """One entry's line: name, type, mode bits, uid, gid, size, sha256, link target, xattrs."""
        mode = st.st_mode
        uid, gid = owner if owner is not None else (st.st_uid, st.st_gid)
        perm = stat.S_IMODE(mode)
        if stat.S_ISREG(mode):
            digest, xattrs = self.hash_cache.lookup(rel, st)
            line = f"{name}\0f\0{perm:o}\0{uid}\0{gid}\0{st.st_size}\0{digest}\0\0{xattrs}\n"
        elif stat.S_ISDIR(mode):
            xattrs = self.hash_cache.xattrs(rel)
            line = f"{name}\0d\0{perm:o}\0{uid}\0{gid}\0\0\0\0{xattrs}\n"
        elif stat.S_ISLNK(mode):
            link = os.readlink(os.path.join(self.root, rel))
            line = f"{name}\0l\0{perm:o}\0{uid}\0{gid}\0\0\0{link}\0\n"
        else:
            line = f"{name}\0o\0{stat.S_IFMT(mode):o}{perm:o}\0{uid}\0{gid}\0\0\0\0\n"
        return line.encode("utf-8", "surrogateescape")


@dataclass
class BuildInput:
    context: BuildContext
    dockerfile: str
    dockerfile_name: str


def _looks_like_tar(head: bytes) -> bool:
    if head[:2] == b"\x1f\x8b":
        return True
    return len(head) >= 262 and head[257:262] == b"ustar"


def _safe_members(tf: tarfile.TarFile) -> list[tarfile.TarInfo]:
    """Members with cleaned names; refuses `..` escapes and paths through symlinks."""
    out = []
    links: set[str] = set()
    for m in tf.getmembers():
        name = posixpath.normpath(m.name.lstrip("/"))
        parts = name.split("/")
        through_link = any("/".join(parts[:i]) in links for i in range(1, len(parts)))
        if name.startswith("../") or name == ".." or through_link:
            raise InvalidArgument(f"build context tar: path {m.name!r} escapes the context")
        if m.issym():
            links.add(name)
        if m.islnk():
            target = posixpath.normpath(m.linkname.lstrip("/"))
            if target.startswith("../") or target == "..":
                raise InvalidArgument(f"build context tar: link {m.name!r} escapes the context")
            m.linkname = target
        if m.isdev():
            continue
        m.name = name
        out.append(m)
    return out


def extract_tar(data: BinaryIO, dest: Path) -> None:
    """Extract a plain or gzip tar stream into `dest`, refusing paths that escape it."""
    with tarfile.open(fileobj=data, mode="r:*") as tf:
        members = _safe_members(tf)  # checked here: no extraction filter needed on top
        if hasattr(tarfile, "fully_trusted_filter"):  # 3.11.4+: say so (3.12 warns otherwise)
            tf.extractall(dest, members=members, filter="fully_trusted")
        else:  # Debian 12's 3.11.2 has no extraction filters
            tf.extractall(dest, members=members)


def _ignore_patterns(root: Path, dockerfile: Path | None) -> list[str]:
    f = find_ignore_file(root, dockerfile)
    return read_patterns(f.read_text(encoding="utf-8", errors="replace")) if f else []


def open_build(
    context: str,
    dockerfile: str | None = None,
    *,
    stdin: BinaryIO | None = None,
    work_dir: Path,
    state_dir: Path | None = None,
) -> BuildInput:
    """Open a build: context dir, tar file, or `-`; Dockerfile path, `-`, or default."""
    work_dir.mkdir(parents=True, exist_ok=True)
    df_text: str | None = None
    if dockerfile == "-":
        if stdin is None or context == "-":
            raise InvalidArgument(
                "invalid argument: can't use stdin for both build context and dockerfile"
            )
        df_text = stdin.read().decode("utf-8", "replace")
    if context == "-":
        if stdin is None:
            raise InvalidArgument("no stdin to read the build context from")
        data = stdin.read()
        tmp = Path(tempfile.mkdtemp(prefix="context-", dir=work_dir))
        if not _looks_like_tar(data[:512]):
            return BuildInput(
                BuildContext(tmp, [], state_dir=state_dir, cleanup=tmp),
                data.decode("utf-8", "replace"),
                "Dockerfile",
            )
        return _from_tar(io.BytesIO(data), tmp, dockerfile, df_text, state_dir)
    path = Path(context)
    if path.is_file():
        tmp = Path(tempfile.mkdtemp(prefix="context-", dir=work_dir))
        with open(path, "rb") as f:
            return _from_tar(f, tmp, dockerfile, df_text, state_dir)
    if not path.is_dir():
        raise NotFound(f"unable to prepare context: path {context!r} not found")
    df_path = None
    if df_text is None:
        df_path = Path(dockerfile) if dockerfile else path / "Dockerfile"
        if dockerfile and not df_path.is_absolute() and not df_path.exists():
            df_path = path / dockerfile
        try:
            df_text = df_path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise NotFound(
                f"unable to prepare context: unable to evaluate symlinks in "
                f"Dockerfile path: lstat {df_path}: no such file or directory"
            ) from None
    patterns = _ignore_patterns(path, df_path)
    ctx = BuildContext(path, patterns, state_dir=state_dir)
    return BuildInput(ctx, df_text, df_path.name if df_path else "Dockerfile")


def _from_tar(
    data: BinaryIO, tmp: Path, dockerfile: str | None, df_text: str | None, state_dir: Path | None
) -> BuildInput:
    try:
        extract_tar(data, tmp)
        name = dockerfile if dockerfile and dockerfile != "-" else "Dockerfile"
        df_path = tmp / clean_source(name)
        if df_text is None:
            if not df_path.is_file():
                raise NotFound(f"Cannot locate specified Dockerfile: {name}")
            df_text = df_path.read_text(encoding="utf-8")
        patterns = _ignore_patterns(tmp, df_path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return BuildInput(
        BuildContext(tmp, patterns, state_dir=state_dir, cleanup=tmp), df_text, df_path.name
    )
