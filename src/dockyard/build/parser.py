"""Dockerfile parsing into raw instructions, with BuildKit's grammar (layer L4).

The grammar itself (line continuations, JSON vs shell form, flags, heredoc bodies, the `escape`
directive) comes from BuildKit's own Go parser through the `dockerfile` PyPI package, imported
lazily so that only `build` pays for it. This module complements what that binding drops:

- parser directives (`# syntax=`, `# escape=`, `# check=`) are read here and returned;
- heredoc options (`<<-` chomping, quoted delimiters that disable expansion) are recovered from
  the words, since the binding only returns names and bodies;
- the ENV/LABEL separator (`ENV k v` legacy form vs `k=v`) and ONBUILD flags are recovered for
  the BuildKit parse-tree dump (`dump`), which the conformance suite compares byte for byte;
- errors carry FILE and LINE (`DockerfileError`), also for errors the binding reports without one.

Invariants: `parse` either returns at least one instruction or raises `DockerfileError`; every
`RawInstruction` has 1-based `line`/`end_line` of its source; nothing is expanded here.
"""

from __future__ import annotations

import difflib
import importlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from dockyard.errors import InvalidArgument
from dockyard.gostr import go_quote

KNOWN_INSTRUCTIONS = (
    "ADD", "ARG", "CMD", "COPY", "ENTRYPOINT", "ENV", "EXPOSE", "FROM", "HEALTHCHECK", "LABEL",
    "MAINTAINER", "ONBUILD", "RUN", "SHELL", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR",
)  # fmt: skip
_DIRECTIVE_RE = re.compile(r"^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$")
_KNOWN_DIRECTIVES = ("syntax", "escape", "check")
_HEREDOC_RE = re.compile(r"^<<(-)?([^<>\s]+)$")


class DockerfileError(InvalidArgument):
    """A malformed Dockerfile: `str()` is `FILE:LINE: message`."""

    def __init__(self, detail: str, *, file: str = "Dockerfile", line: int | None = None) -> None:
        self.file = file
        self.line = line
        self.detail = detail
        where = f"{file}:{line}" if line is not None else file
        super().__init__(f"{where}: {detail}")

    @property
    def buildkit_message(self) -> str:
        """BuildKit's wording: `dockerfile parse error on line N: message`."""
        if self.line is None:
            return self.detail
        return f"dockerfile parse error on line {self.line}: {self.detail}"


@dataclass(frozen=True)
class Heredoc:
    """One `<<NAME` body. `expand` is False for a quoted delimiter; `chomp` for `<<-`."""

    name: str
    content: str
    fd: int = 0
    expand: bool = True
    chomp: bool = False

    @property
    def text(self) -> str:
        """The body with leading tabs removed when chomping, as the file/stdin will get it."""
        if not self.chomp:
            return self.content
        return "".join(ln.lstrip("\t") for ln in self.content.splitlines(keepends=True))


@dataclass(frozen=True)
class RawInstruction:
    """One parsed instruction before typing and expansion.

    `args` are the words as the grammar produced them (for ENV/LABEL: key, value, key, value…);
    `separators` holds, per ENV/LABEL pair, "=" or "" (legacy `ENV key value` form).
    """

    keyword: str
    args: tuple[str, ...]
    flags: tuple[str, ...] = ()
    json: bool = False
    original: str = ""
    line: int = 0
    end_line: int = 0
    heredocs: tuple[Heredoc, ...] = ()
    separators: tuple[str, ...] = ()
    sub: RawInstruction | None = None
    trigger: str = ""


@dataclass(frozen=True)
class ParsedDockerfile:
    instructions: tuple[RawInstruction, ...]
    directives: dict[str, str] = field(default_factory=dict)
    escape: str = "\\"
    file: str = "Dockerfile"


def parse_directives(text: str, file: str = "Dockerfile") -> dict[str, str]:
    """The parser directives at the top of `text` (keys lowercased)."""
    found: dict[str, str] = {}
    for n, line in enumerate(text.splitlines(), 1):
        m = _DIRECTIVE_RE.match(line)
        if not m:
            break
        key = m.group(1).lower()
        if key not in _KNOWN_DIRECTIVES:
            break
        if key in found:
            raise DockerfileError(f"only one {key} parser directive can be used", file=file, line=n)
        found[key] = m.group(2)
    esc = found.get("escape", "\\")
    if esc not in ("\\", "`"):
        raise DockerfileError(f"invalid escape token '{esc}' does not match ` or \\", file=file)
    return found


def parse(text: str, file: str = "Dockerfile") -> ParsedDockerfile:
    """Parse a whole Dockerfile. Raises `DockerfileError` naming FILE:LINE."""
    if text.startswith("\ufeff"):
        text = text[1:]
    directives = parse_directives(text, file)
    escape = directives.get("escape", "\\")
    commands = _go_parse(text, file)
    if not commands:
        raise DockerfileError("file with no instructions", file=file)
    lines = text.splitlines(keepends=True)
    out = tuple(_convert(c, lines, escape, file) for c in commands)
    for ins in out:
        check_known(ins, file)
    return ParsedDockerfile(out, directives, escape, file)


def parse_trigger(trigger: str, escape: str = "\\", file: str = "ONBUILD") -> RawInstruction:
    """Parse one ONBUILD trigger (e.g. from an image config's `OnBuild`) into an instruction."""
    prefix = "# escape=`\n" if escape == "`" else ""
    parsed = parse(prefix + trigger, file)
    if len(parsed.instructions) != 1:
        raise DockerfileError(f"invalid ONBUILD trigger {trigger!r}", file=file)
    ins = parsed.instructions[0]
    if ins.keyword in ("ONBUILD", "FROM", "MAINTAINER"):
        raise DockerfileError(f"{ins.keyword} isn't allowed as an ONBUILD trigger", file=file)
    return ins


def check_known(ins: RawInstruction, file: str) -> None:
    if ins.keyword in KNOWN_INSTRUCTIONS:
        return
    msg = f"unknown instruction: {ins.keyword}"
    close = difflib.get_close_matches(ins.keyword, KNOWN_INSTRUCTIONS, n=1, cutoff=0.75)
    if close:
        msg += f" (did you mean {close[0].lower()}?)"
    raise DockerfileError(msg, file=file, line=ins.line)


# --- the Go parser binding -------------------------------------------------------------------


def _binding() -> Any:
    """The `dockerfile` module (BuildKit's parser), imported on first use only."""
    return importlib.import_module("dockerfile")


def _go_parse(text: str, file: str) -> Sequence[Any]:
    dockerfile = _binding()
    try:
        return tuple(dockerfile.parse_string(text))
    except dockerfile.GoParseError as e:
        msg = str(e)
        line = None if msg == "file with no instructions" else _locate(text, msg)
        raise DockerfileError(msg, file=file, line=line) from None


def _locate(text: str, msg: str) -> int | None:
    """Line of an error the binding reported without one: the shortest failing prefix."""
    dockerfile = _binding()
    lines = text.splitlines(keepends=True)

    def fails(n: int) -> bool:
        try:
            dockerfile.parse_string("".join(lines[:n]))
        except dockerfile.GoParseError as e:
            return str(e) == msg
        return False

    lo, hi = 1, len(lines)
    if not lines or not fails(hi):
        return None
    while lo < hi:
        mid = (lo + hi) // 2
        if fails(mid):
            hi = mid
        else:
            lo = mid + 1
    # Report the first line of the instruction the failing prefix ends in.
    n = lo
    while n > 1 and _continues(lines[n - 2]):
        n -= 1
    return n


def _continues(line: str) -> bool:
    s = line.rstrip("\r\n").rstrip()
    return s.endswith(("\\", "`")) and not s.lstrip().startswith("#")


def _convert(c: Any, lines: list[str], escape: str, file: str) -> RawInstruction:
    keyword = str(c.cmd).upper()
    args = tuple(str(v) for v in c.value)
    if c.json and "\\u0000" in c.original.lower():
        args = _rejson(c.original, args)
    heredocs = _heredocs(args, c.heredocs, escape)
    separators: tuple[str, ...] = ()
    if keyword in ("ENV", "LABEL"):
        separators = _separators(keyword, c.original, args)
    sub, trigger = None, ""
    if keyword == "ONBUILD":
        trigger = onbuild_trigger_text(c.original, lines, int(c.start_line), int(c.end_line))
        if not trigger.strip():
            raise DockerfileError(
                "ONBUILD requires at least one argument", file=file, line=int(c.start_line)
            )
        try:
            sub = parse_trigger(trigger, escape, file)
        except DockerfileError as e:
            raise DockerfileError(e.detail, file=file, line=int(c.start_line)) from None
    return RawInstruction(
        keyword=keyword,
        args=args,
        flags=tuple(str(f) for f in c.flags),
        json=bool(c.json),
        original=str(c.original),
        line=int(c.start_line),
        end_line=int(c.end_line),
        heredocs=heredocs,
        separators=separators,
        sub=sub,
        trigger=trigger,
    )


def _rejson(original: str, fallback: tuple[str, ...]) -> tuple[str, ...]:
    """Recover JSON args the binding truncated at NUL characters."""
    start = original.find("[")
    try:
        value = json.loads(original[start:])
    except ValueError:
        return fallback
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        if original.split(None, 1)[0].upper() == "HEALTHCHECK":
            return (fallback[0], *value) if fallback else tuple(value)
        return tuple(value)
    return fallback


def _heredocs(args: tuple[str, ...], raw: Sequence[Any], escape: str) -> tuple[Heredoc, ...]:
    if not raw:
        return ()
    from dockyard.build.expand import Lexer

    opts: dict[str, tuple[bool, bool]] = {}
    for arg in args:
        for word in arg.split():
            m = _HEREDOC_RE.match(word)
            if not m:
                continue
            quoted = any(q in m.group(2) for q in ("'", '"'))
            try:
                name = Lexer(escape).word(m.group(2), {})
            except InvalidArgument:
                continue
            opts.setdefault(name, (not quoted, m.group(1) == "-"))
    out = []
    for h in raw:
        expand, chomp = opts.get(str(h.name), (True, False))
        out.append(Heredoc(str(h.name), str(h.content), int(h.file_descriptor), expand, chomp))
    return tuple(out)


def _separators(keyword: str, original: str, args: tuple[str, ...]) -> tuple[str, ...]:
    """'=' for each `k=v` pair, '' for the legacy `KEY value` form (one pair only)."""
    npairs = len(args) // 2
    if npairs != 1:
        return ("=",) * npairs
    rest = original[len(keyword) :]
    idx = rest.find(args[0])
    legacy = idx < 0 or not rest[idx + len(args[0]) :].startswith("=")
    return ("",) if legacy else ("=",)


def onbuild_trigger_text(original: str, lines: list[str], start: int, end: int) -> str:
    """The trigger string stored for an ONBUILD (heredoc bodies kept from the source)."""
    joined = original.split(None, 1)[1] if len(original.split(None, 1)) > 1 else ""
    if "<<" not in joined or end <= start:
        return joined
    src = "".join(lines[start - 1 : end])
    return src.lstrip().split(None, 1)[1]


# --- BuildKit's parse-tree dump --------------------------------------------------------------


def dump_instruction(ins: RawInstruction) -> str:
    s = ins.keyword.lower()
    if ins.flags:
        s += " [" + " ".join(go_quote(f) for f in ins.flags) + "]"
    if ins.sub is not None:
        return f"{s} ({dump_instruction(ins.sub)})"
    if ins.keyword in ("ENV", "LABEL") and ins.separators:
        for i, sep in enumerate(ins.separators):
            s += f" {go_quote(ins.args[2 * i])} {go_quote(ins.args[2 * i + 1])} {go_quote(sep)}"
        return s
    for a in ins.args:
        s += " " + go_quote(a)
    return s


def dump(parsed: ParsedDockerfile) -> str:
    """The parse tree as BuildKit's `Node.Dump` prints it: one `(instr ...)` per line."""
    return "".join(f"({dump_instruction(i)})\n" for i in parsed.instructions)
