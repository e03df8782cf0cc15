""".dockerignore: reading, matching and a pruning walker (layer L4).

Semantics are moby's `ignorefile` + `patternmatcher`: lines are trimmed, `#` lines and blanks
skipped, `!` marks an exception, each pattern is path-cleaned (`./a/` → `a`, `/a` → `a`).
Patterns use Go filepath.Match syntax plus `**` (any number of path segments). A path is
excluded when the last pattern matching it or one of its parent directories is not an exception
(patterns are evaluated in order). `<Dockerfile>.dockerignore` beside the Dockerfile wins over
the context's `.dockerignore`.

Invariants: paths are `/`-separated and relative to the context root; `walk` never yields an
excluded path and only skips a directory when no exception could re-include anything under it.
"""

from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from dockyard.errors import InvalidArgument

_REGEX_SPECIAL = set(".+()|{}$")


def read_patterns(text: str) -> list[str]:
    """Parse .dockerignore content into cleaned patterns (`!` kept as prefix)."""
    out: list[str] = []
    for n, raw in enumerate(text.splitlines()):
        line = raw.lstrip("\ufeff") if n == 0 else raw
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        invert = line.startswith("!")
        if invert:
            line = line[1:].strip()
        if line:
            line = posixpath.normpath(line)
            if len(line) > 1 and line.startswith("/"):
                line = line.lstrip("/") or "/"
        out.append("!" + line if invert else line)
    return out


def find_ignore_file(context_dir: Path, dockerfile: Path | None = None) -> Path | None:
    """`<Dockerfile>.dockerignore` next to the Dockerfile if present, else `.dockerignore`."""
    if dockerfile is not None:
        specific = dockerfile.with_name(dockerfile.name + ".dockerignore")
        if specific.is_file():
            return specific
    default = context_dir / ".dockerignore"
    return default if default.is_file() else None


def _compile(pattern: str) -> re.Pattern[str]:
    rx = ["^"]
    i = 0
    n = len(pattern)
    while i < n:
        ch = pattern[i]
        if ch == "*":
            if i + 1 < n and pattern[i + 1] == "*":
                i += 2
                if i < n and pattern[i] == "/":
                    i += 1
                rx.append(".*" if i >= n else "(.*/)?")
                continue
            rx.append("[^/]*")
        elif ch == "?":
            rx.append("[^/]")
        elif ch in _REGEX_SPECIAL:
            rx.append("\\" + ch)
        elif ch == "\\":
            if i + 1 < n:
                i += 1
                rx.append(re.escape(pattern[i]))
            else:
                rx.append("\\\\")
        else:
            rx.append(ch)
        i += 1
    rx.append("$")
    try:
        return re.compile("".join(rx), re.S)
    except re.error as e:
        raise InvalidArgument(f"invalid .dockerignore pattern {pattern!r}: {e}") from None


@dataclass(frozen=True)
class _Pattern:
    text: str
    exclusion: bool
    regex: re.Pattern[str]
    dirs: tuple[str, ...]


class Matcher:
    """Ordered exclude/exception patterns with moby's evaluation rules."""

    def __init__(self, patterns: list[str]) -> None:
        self.patterns: list[_Pattern] = []
        for p in patterns:
            exclusion = p.startswith("!")
            body = p[1:] if exclusion else p
            if not body:
                raise InvalidArgument('illegal exclusion pattern: "!"')
            self.patterns.append(_Pattern(body, exclusion, _compile(body), tuple(body.split("/"))))
        self.has_exceptions = any(p.exclusion for p in self.patterns)
        alts = [f"(?:{p.regex.pattern})" for p in self.patterns if not p.exclusion]
        self.any_match = re.compile("|".join(alts), re.S).match if alts else None

    def __bool__(self) -> bool:
        return bool(self.patterns)

    def is_excluded(self, path: str) -> bool:
        """True if `path` (relative, `/`-separated) is excluded from the context."""
        path = posixpath.normpath(path).lstrip("/")
        if path in (".", ""):
            return False
        parents = path.split("/")[:-1]
        matched = False
        for p in self.patterns:
            if p.exclusion != matched:
                continue
            hit = p.regex.match(path) is not None
            if not hit and parents:
                hit = any(
                    p.regex.match("/".join(parents[: i + 1])) is not None
                    for i in range(len(parents))
                )
            if hit:
                matched = not p.exclusion
        return matched

    def could_reinclude(self, directory: str) -> bool:
        """Could an exception pattern match something under `directory`?"""
        segs = directory.split("/")
        return any(p.exclusion and _prefix_may_match(p.dirs, segs) for p in self.patterns)


def _prefix_may_match(pat: tuple[str, ...], segs: list[str]) -> bool:
    from dockyard.build.gomatch import match

    for i, seg in enumerate(segs):
        if i >= len(pat):
            return True  # the pattern names an ancestor of what lies below
        if "**" in pat[i]:
            return True
        try:
            if not match(pat[i], seg):
                return False
        except InvalidArgument:
            return True
    return True


def walk(
    root: Path | str, matcher: Matcher, prefix: str = ""
) -> Iterator[tuple[str, os.DirEntry[str]]]:
    """Yield (relative path, entry) for every non-excluded entry under `root`, each directory's
    entries by name, a directory before its contents. `prefix` ("sub/") is prepended to paths
    when `root` is a subdirectory of the context. Excluded directories are descended only when
    an exception might re-include a child. Entries cache their lstat (`entry.stat()`)."""
    simple = not matcher.has_exceptions
    any_match = matcher.any_match
    stack = [(os.fspath(root), prefix)]
    while stack:
        dir_path, rel_dir = stack.pop()
        with os.scandir(dir_path) as it:
            entries = sorted(it, key=_name)
        subdirs = []
        for e in entries:
            rel = rel_dir + e.name
            if simple:  # no exceptions: the parent is known not excluded
                excluded = any_match is not None and any_match(rel) is not None
            else:
                excluded = matcher.is_excluded(rel)
            is_dir = e.is_dir(follow_symlinks=False)
            if not excluded:
                yield rel, e
            if is_dir and (not excluded or (not simple and matcher.could_reinclude(rel))):
                subdirs.append((e.path, rel + "/"))
        stack.extend(reversed(subdirs))


def _name(e: os.DirEntry[str]) -> str:
    return e.name
