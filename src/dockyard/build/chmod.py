"""`COPY --chmod` / `ADD --chmod` modes: octal or chmod(1)-style symbolic (layer L4, pure).

`parse_chmod(text)` returns a `Chmod`, whose `apply(st_mode)` gives the permission bits (the low
12 bits) a copied entry gets. An octal mode (`755`, `0644`, at most `07777`) replaces the bits
of every entry. A symbolic mode (Dockerfile frontend >= 1.14, as BuildKit parses it: BSD
setmode(3) grammar with the builder's umask of 0) is a comma-separated list of clauses
`[ugoa]*([-+=]([rwxXst]*|[ugo]))+`, applied in order to each entry's *source* mode:

- who: `u` (owner bits and set-uid), `g` (group bits and set-gid), `o` (others), `a` (all);
  no letter means all (the umask is 0, so nothing is masked);
- op: `+` adds, `-` removes, `=` clears the who bits and then sets;
- perm: `r w x`; `X` is `x` for a directory or an entry already executable by anyone in its
  source mode (for every op, as POSIX.1-2024 and Linux chmod have it); `s` set-uid/gid and `t`
  sticky (both ignored when only `o` is named); `u`/`g`/`o` copy that class's current bits.
Where BSD and GNU chmod differ, this follows BSD (BuildKit's parser): `=` keeps the sticky bit
unless `t` is named and clears a directory's set-id bits too; `X` looks at the source mode, not
at what earlier clauses made of it.

Invariants: parsing never touches the filesystem; every malformed mode raises
`InvalidArgument`; `apply` is a pure function of the mode it is given.
"""

from __future__ import annotations

import stat
from dataclasses import dataclass

from dockyard.errors import InvalidArgument

_CLASS = {"u": 0o4700, "g": 0o2070, "o": 0o0007, "a": 0o6777}
_RWX = {"u": 0o700, "g": 0o070, "o": 0o007}
_SHIFT = {"u": 6, "g": 3, "o": 0}
_PERM = {"r": 0o444, "w": 0o222, "x": 0o111}
_STICKY = 0o1000
_IDS = 0o6000


@dataclass(frozen=True)
class _Op:
    """One `op perms` of a clause, with the masks its who-list gives it."""

    op: str  # '+', '-' or '='
    bits: int  # r/w/x/s/t bits, before masking
    x_cond: bool  # `X` was given
    copy: str  # '' or the class (`u`, `g`, `o`) whose current bits are copied
    set_mask: int  # bits this op may set
    clear_mask: int  # bits `=` clears
    copy_mask: int  # rwx bits a copy may change


@dataclass(frozen=True)
class Chmod:
    """A parsed `--chmod`: `octal` when absolute, else the symbolic `ops` in order."""

    text: str
    octal: int | None = None
    ops: tuple[_Op, ...] = ()

    def apply(self, st_mode: int) -> int:
        """The permission bits for an entry whose source mode (type bits included) is
        `st_mode`."""
        if self.octal is not None:
            return self.octal
        orig = stat.S_IMODE(st_mode)
        is_dir = stat.S_ISDIR(st_mode)
        mode = orig
        for o in self.ops:
            mode = _apply(o, mode, orig, is_dir)
        return mode


def _apply(o: _Op, mode: int, orig: int, is_dir: bool) -> int:
    value = o.bits
    if o.x_cond and (is_dir or orig & 0o111):
        value |= 0o111
    bits = value & o.set_mask
    if o.copy:
        v = (mode >> _SHIFT[o.copy]) & 7
        bits |= (v << 6 | v << 3 | v) & o.copy_mask
    if o.op == "+":
        return mode | bits
    if o.op == "-":
        return mode & ~bits
    return (mode & ~o.clear_mask) | bits


def parse_chmod(text: str) -> Chmod | None:
    """`--chmod` text → `Chmod` (None for ""). Raises `InvalidArgument` when malformed."""
    if not text:
        return None
    if text[0].isdigit():
        if not all(c in "01234567" for c in text) or int(text, 8) > 0o7777:
            raise _invalid(text)
        return Chmod(text, octal=int(text, 8))
    ops: list[_Op] = []
    for clause in text.split(","):
        ops.extend(_clause(clause, text))
    return Chmod(text, ops=tuple(ops))


def _invalid(text: str) -> InvalidArgument:
    return InvalidArgument(
        f"invalid chmod parameter: {text!r}. it should be octal string between 0 and 07777, "
        "or a symbolic mode such as u+x,go-w or a=rX"
    )


def _clause(clause: str, text: str) -> list[_Op]:
    i = 0
    who = ""
    while i < len(clause) and clause[i] in "ugoa":
        who += clause[i]
        i += 1
    if i == len(clause):
        raise _invalid(text)  # a clause needs at least one op
    who_mask = 0
    for c in who:
        who_mask |= _CLASS[c]
    only_other = bool(who) and not who_mask & 0o6770
    out: list[_Op] = []
    while i < len(clause):
        op = clause[i]
        if op not in "+-=":
            raise _invalid(text)
        i += 1
        bits, x_cond, copy, sticky = 0, False, "", False
        while i < len(clause) and clause[i] not in "+-=":
            c = clause[i]
            if c in _PERM:
                bits |= _PERM[c]
            elif c == "X":
                x_cond = True
            elif c == "s":
                bits |= 0 if only_other else _IDS
            elif c == "t":
                sticky = not only_other
                bits |= _STICKY if sticky else 0
            elif c in "ugo" and not copy and not bits and not x_cond:
                copy = c
            else:
                raise _invalid(text)
            i += 1
        if copy and (bits or x_cond):
            raise _invalid(text)
        set_mask = who_mask | (_STICKY if sticky else 0) if who else 0o7777
        clear_mask = who_mask | (_STICKY if sticky else 0) if who else 0o6777
        classes = [c for c in "ugo" if not who or "a" in who or c in who]
        copy_mask = sum(_RWX[c] for c in classes)
        if op == "=" and copy:
            clear_mask = copy_mask  # `g=u` replaces the rwx bits only, as BSD's setmode does
        out.append(_Op(op, bits, x_cond, copy, set_mask, clear_mask, copy_mask))
    return out
