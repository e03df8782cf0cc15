"""Go's `path/filepath.Match` semantics as compiled regexes (layer L4, pure).

`*` matches any run of non-`/` characters, `?` one non-`/` character, `[...]` a class (`^` negates,
`a-z` ranges, `\\` escapes inside), `\\c` the literal `c`. A malformed pattern (unterminated class,
empty class, bad range, trailing backslash) raises `InvalidArgument`, as Go returns ErrBadPattern.

Invariants: compiled patterns are cached; matching is on `/`-separated relative paths.
"""

from __future__ import annotations

import re
from functools import lru_cache

from dockyard.errors import InvalidArgument


def _bad(pattern: str) -> InvalidArgument:
    return InvalidArgument(f"syntax error in pattern: {pattern!r}")


def _class(pattern: str, i: int) -> tuple[str, int]:
    """Translate the class starting after `[` at index `i`; return (regex, index after `]`)."""
    out = ["["]
    if i < len(pattern) and pattern[i] == "^":
        out.append("^")
        i += 1
    n = 0
    while True:
        if i >= len(pattern):
            raise _bad(pattern)
        c = pattern[i]
        if c == "]" and n > 0:
            out.append("]")
            return "".join(out), i + 1
        lo, i = _class_char(pattern, i)
        if (
            i < len(pattern)
            and pattern[i] == "-"
            and i + 1 < len(pattern)
            and pattern[i + 1] != "]"
        ):
            hi, i = _class_char(pattern, i + 1)
            if hi < lo:
                raise _bad(pattern)
            out.append(f"{re.escape(lo)}-{re.escape(hi)}")
        else:
            out.append(re.escape(lo))
        n += 1


def _class_char(pattern: str, i: int) -> tuple[str, int]:
    c = pattern[i]
    if c in "-]":
        raise _bad(pattern)
    if c == "\\":
        if i + 1 >= len(pattern):
            raise _bad(pattern)
        return pattern[i + 1], i + 2
    return c, i + 1


def translate(pattern: str) -> str:
    """Regex source (without anchors) for a Go filepath.Match pattern."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "*":
            out.append("[^/]*")
            i += 1
        elif c == "?":
            out.append("[^/]")
            i += 1
        elif c == "[":
            cls, i = _class(pattern, i + 1)
            out.append(cls)
        elif c == "\\":
            if i + 1 >= len(pattern):
                raise _bad(pattern)
            out.append(re.escape(pattern[i + 1]))
            i += 2
        else:
            out.append(re.escape(c))
            i += 1
    return "".join(out)


@lru_cache(maxsize=1024)
def compile_match(pattern: str) -> re.Pattern[str]:
    return re.compile(f"(?s){translate(pattern)}")


def match(pattern: str, name: str) -> bool:
    """`filepath.Match(pattern, name)`: the whole of `name` must match."""
    return compile_match(pattern).fullmatch(name) is not None


def has_meta(pattern: str) -> bool:
    """True if `pattern` contains any of Go's pattern metacharacters."""
    return any(c in pattern for c in "*?[\\")
