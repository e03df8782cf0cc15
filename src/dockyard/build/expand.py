"""Shell-word lexer and variable expansion with BuildKit's rules (layer L4, pure).

`Lexer(escape)` turns one Dockerfile word (or a whole argument string) into its expanded form:
quotes are removed, escapes resolved, `$V`, `${V}` and the modifiers `${V:-d} ${V-d} ${V:+a}
${V+a} ${V:?m} ${V?m} ${V#p} ${V##p} ${V%p} ${V%%p} ${V/p/r} ${V//p/r}` applied. `words()`
additionally splits on unquoted whitespace, where an unquoted expansion is split too.

Invariants:
- Nothing is ever executed: `$(...)` and backticks are plain characters.
- Unset and positional/special parameters (`$1`, `$@`, `$?`, ...) expand to "".
- Every malformed input raises `InvalidArgument` (unterminated quote, bad substitution,
  unsupported modifier); the caller adds file:line.
- `used` collects every variable name the last call looked up (for build-arg accounting).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from dockyard.errors import InvalidArgument

_SPECIAL = frozenset("@*#?-$!0")
_EOF = ""


class _Words:
    """Word accumulator: unquoted whitespace breaks words, quoted text never does."""

    def __init__(self) -> None:
        self.words: list[str] = []
        self.word: list[str] = []
        self.in_word = False

    def add_char(self, ch: str) -> None:
        if ch.isspace():
            if self.in_word and self.word:
                self.words.append("".join(self.word))
                self.word = []
                self.in_word = False
        else:
            self.add_raw_char(ch)

    def add_raw_char(self, ch: str) -> None:
        self.word.append(ch)
        self.in_word = True

    def add_string(self, s: str) -> None:
        for ch in s:
            self.add_char(ch)

    def add_raw_string(self, s: str) -> None:
        self.word.append(s)
        self.in_word = True

    def result(self) -> list[str]:
        if self.word:
            w = "".join(self.word)
            if w:
                return [*self.words, w]
        return list(self.words)


class Lexer:
    """Expands words against an environment; `escape` is the Dockerfile escape char."""

    def __init__(
        self, escape: str = "\\", *, raw_quotes: bool = False, raw_escapes: bool = False
    ) -> None:
        self.escape = escape
        self.raw_quotes = raw_quotes
        self.raw_escapes = raw_escapes
        self.used: set[str] = set()
        self._s = ""
        self._i = 0
        self._env: Mapping[str, str] = {}

    # --- public API --------------------------------------------------------------------------
    def word(self, text: str, env: Mapping[str, str]) -> str:
        """Expand `text` as one word (quotes removed, whitespace kept)."""
        return self._run(text, env)[0]

    def words(self, text: str, env: Mapping[str, str]) -> list[str]:
        """Expand `text` and split it into words as a shell would (no globbing)."""
        return self._run(text, env)[1]

    # --- scanner -----------------------------------------------------------------------------
    def _run(self, text: str, env: Mapping[str, str]) -> tuple[str, list[str]]:
        self._s, self._i, self._env = text, 0, env
        self.used = set()
        return self._process_stop_on(_EOF)

    def _peek(self) -> str:
        return self._s[self._i] if self._i < len(self._s) else _EOF

    def _next(self) -> str:
        if self._i >= len(self._s):
            return _EOF
        ch = self._s[self._i]
        self._i += 1
        return ch

    def _process_stop_on(self, stop: str) -> tuple[str, list[str]]:
        out: list[str] = []
        words = _Words()
        found = False
        while self._peek() != _EOF:
            ch = self._peek()
            if stop != _EOF and ch == stop:
                self._next()
                found = True
                break
            if ch == "'":
                tmp = self._single_quote()
                out.append(tmp)
                words.add_raw_string(tmp)
            elif ch == '"':
                tmp = self._double_quote()
                out.append(tmp)
                words.add_raw_string(tmp)
            elif ch == "$":
                tmp = self._dollar()
                out.append(tmp)
                words.add_string(tmp)
            else:
                ch = self._next()
                if ch == self.escape:
                    if self.raw_escapes:
                        out.append(ch)
                        words.add_raw_char(ch)
                    ch = self._next()
                    if ch == _EOF:
                        break
                    words.add_raw_char(ch)
                else:
                    words.add_char(ch)
                out.append(ch)
        if stop != _EOF and not found:
            raise InvalidArgument(f"unexpected end of statement while looking for matching {stop}")
        return "".join(out), words.result()

    def _single_quote(self) -> str:
        self._next()
        out: list[str] = []
        while True:
            ch = self._next()
            if ch == _EOF:
                raise InvalidArgument(
                    "unexpected end of statement while looking for matching single-quote"
                )
            if ch == "'":
                return self._quoted("'", out)
            out.append(ch)

    def _double_quote(self) -> str:
        self._next()
        out: list[str] = []
        while True:
            ch = self._peek()
            if ch == _EOF:
                raise InvalidArgument(
                    "unexpected end of statement while looking for matching double-quote"
                )
            if ch == '"':
                self._next()
                return self._quoted('"', out)
            if ch == "$":
                out.append(self._dollar())
                continue
            ch = self._next()
            if ch == self.escape and self._peek() in ('"', "$", self.escape):
                if self.raw_escapes:
                    out.append(ch)
                ch = self._next()
            out.append(ch)

    def _quoted(self, quote: str, body: list[str]) -> str:
        text = "".join(body)
        return f"{quote}{text}{quote}" if self.raw_quotes else text

    def _name(self) -> str:
        ch = self._peek()
        if ch != _EOF and ch.isdigit():
            start = self._i
            while self._peek() != _EOF and self._peek().isdigit():
                self._i += 1
            return self._s[start : self._i]
        if ch != _EOF and ch in _SPECIAL:
            return self._next()
        start = self._i
        while (c := self._peek()) != _EOF and (c.isalnum() or c == "_"):
            self._i += 1
        return self._s[start : self._i]

    def _get(self, name: str) -> str | None:
        self.used.add(name)
        return self._env.get(name)

    def _dollar(self) -> str:
        self._next()  # the $
        if self._peek() != "{":
            name = self._name()
            if not name:
                return "$"
            return self._get(name) or ""
        self._next()  # the {
        name = self._name()
        ch = self._peek()
        if not name:
            raise InvalidArgument("bad substitution")
        if ch == "}":
            self._next()
            return self._get(name) or ""
        if ch == ":":
            self._next()
            mod = self._next()
            if mod not in ("-", "+", "?"):
                raise InvalidArgument(f"unsupported modifier ({mod}) in substitution")
            return self._modifier(name, mod, empty_is_unset=True)
        if ch in ("-", "+", "?"):
            self._next()
            return self._modifier(name, ch, empty_is_unset=False)
        if ch in ("#", "%"):
            self._next()
            longest = self._peek() == ch
            if longest:
                self._next()
            pattern, _ = self._process_stop_on("}")
            value = self._get(name) or ""
            return _trim(value, pattern, prefix=ch == "#", longest=longest)
        if ch == "/":
            self._next()
            replace_all = self._peek() == "/"
            if replace_all:
                self._next()
            pattern, _ = self._process_stop_on("/")
            repl, _ = self._process_stop_on("}")
            return _replace(self._get(name) or "", pattern, repl, replace_all)
        if ch == _EOF:
            raise InvalidArgument("syntax error: missing '}'")
        raise InvalidArgument(f"missing ':' in substitution: unsupported modifier ({ch})")

    def _modifier(self, name: str, mod: str, *, empty_is_unset: bool) -> str:
        word, _ = self._process_stop_on("}")
        value = self._get(name)
        is_set = value is not None and (value != "" or not empty_is_unset)
        if mod == "-":
            return value if is_set and value is not None else word
        if mod == "+":
            return word if is_set else ""
        if not is_set:
            msg = word or (
                "is not allowed to be empty" if empty_is_unset else "is not allowed to be unset"
            )
            raise InvalidArgument(f"{name}: {msg}")
        return value or ""


def shell_pattern_regex(pattern: str, *, greedy: bool) -> str:
    """Translate a shell glob (`*`, `?`, `[...]`, `\\x`) into a regex fragment."""
    out: list[str] = []
    i = 0
    star = ".*" if greedy else ".*?"
    while i < len(pattern):
        c = pattern[i]
        if c == "*":
            out.append(star)
        elif c == "?":
            out.append(".")
        elif c == "\\" and i + 1 < len(pattern):
            i += 1
            out.append(re.escape(pattern[i]))
        elif c == "[":
            j = pattern.find("]", i + 2)
            if j < 0:
                out.append(re.escape(c))
            else:
                body = pattern[i + 1 : j]
                if body.startswith(("!", "^")):
                    body = "^" + body[1:]
                out.append("[" + body.replace("\\", "\\\\") + "]")
                i = j
        else:
            out.append(re.escape(c))
        i += 1
    return "".join(out)


def _trim(value: str, pattern: str, *, prefix: bool, longest: bool) -> str:
    rx = shell_pattern_regex(pattern, greedy=longest)
    if prefix:
        m = re.match(rf"(?s){rx}", value)
        return value[m.end() :] if m else value
    # Suffix: the shortest suffix is the match starting furthest right.
    starts = range(len(value) + 1) if longest else range(len(value), -1, -1)
    for start in starts:
        if re.fullmatch(rf"(?s){rx}", value[start:]):
            return value[:start]
    return value


def _replace(value: str, pattern: str, repl: str, replace_all: bool) -> str:
    if not pattern:
        return value
    rx = re.compile(rf"(?s){shell_pattern_regex(pattern, greedy=True)}")
    return rx.sub(lambda _m: repl, value, count=0 if replace_all else 1)
