"""Docker's `diff` of a container (layer L2): the changes an overlay upper dir records.

Responsibility: list `(kind, path)` pairs, kind "A" (added), "C" (changed) or "D" (deleted),
for an overlayfs upper dir against the lower dirs it was mounted over, as `docker diff` shows
them. Paths are absolute ("/etc/hosts") and the list is sorted by path.

Rules (as Docker's overlay2 driver reports them):
- an overlay whiteout (char 0:0) is "D";
- a path present in the upper dir and visible in the lowers is "C" (a directory is "C" when
  something below it changed, since overlayfs copies it up);
- a path absent from the lowers is "A", and so is everything below an added directory;
- an opaque directory that hid a lower directory is "C", each name it hid is "D", and
  everything in it is "A" (a recreated name is reported as "A" only).
`lowers` are ordered topmost first, as in an overlay `lowerdir=` option. Visibility in the
lowers honours their own whiteouts and opaque directories. Nothing is followed out of the
given trees: every test is an lstat.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from pathlib import Path

_OPAQUE_KEYS = ("trusted.overlay.opaque", "user.overlay.opaque")


def _is_whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def _is_opaque(path: Path) -> bool:
    for key in _OPAQUE_KEYS:
        try:
            if os.getxattr(path, key, follow_symlinks=False) == b"y":
                return True
        except OSError:
            continue
    return False


def _lstat(path: Path) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None


def _visible(rel: str, lowers: Sequence[Path]) -> os.stat_result | None:
    """The lstat of `rel` as the merged lower layers show it, or None if hidden or absent."""
    parts = rel.split("/")
    for lower in lowers:
        st = _lstat(lower / rel)
        if st is not None:
            return None if _is_whiteout(st) else st
        # A whiteout or opaque dir on the way in this layer hides everything below it.
        for i in range(1, len(parts)):
            prefix = lower / "/".join(parts[:i])
            pst = _lstat(prefix)
            if pst is None:
                break
            if _is_whiteout(pst) or not stat.S_ISDIR(pst.st_mode) or _is_opaque(prefix):
                return None
    return None


def _lower_names(rel: str, lowers: Sequence[Path]) -> set[str]:
    """Names the merged lowers show in directory `rel`."""
    names: set[str] = set()
    for lower in reversed(lowers):
        d = lower / rel
        if not d.is_dir() or d.is_symlink():
            continue
        if _is_opaque(d):
            names.clear()
        for name in os.listdir(d):
            st = _lstat(d / name)
            if st is not None and _is_whiteout(st):
                names.discard(name)
            else:
                names.add(name)
    return {n for n in names if _visible(f"{rel}/{n}", lowers) is not None}


def diff_changes(upper: Path, lowers: Sequence[Path] = ()) -> list[tuple[str, str]]:
    """`(kind, "/path")` changes recorded by `upper` over `lowers` (topmost first), sorted."""
    out: list[tuple[str, str]] = []
    _scan(upper, "", lowers, False, out)
    out.sort(key=lambda c: c[1])
    return out


def _scan(
    upper: Path, rel: str, lowers: Sequence[Path], added: bool, out: list[tuple[str, str]]
) -> None:
    base = upper / rel if rel else upper
    for name in sorted(os.listdir(base)):
        child = f"{rel}/{name}" if rel else name
        path = upper / child
        st = os.lstat(path)
        if _is_whiteout(st):
            if not added and _visible(child, lowers) is not None:
                out.append(("D", "/" + child))
            continue
        below = None if added else _visible(child, lowers)
        out.append(("A" if below is None else "C", "/" + child))
        if not stat.S_ISDIR(st.st_mode):
            continue
        if below is not None and stat.S_ISDIR(below.st_mode) and _is_opaque(path):
            for hidden in sorted(_lower_names(child, lowers) - set(os.listdir(path))):
                out.append(("D", f"/{child}/{hidden}"))
        child_added = below is None or not stat.S_ISDIR(below.st_mode) or _is_opaque(path)
        _scan(upper, child, lowers, child_added, out)
