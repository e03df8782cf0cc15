"""Lexer for Go text/template source (layer L0).

Turns template text into a list of `Token`s the way Go's text/template lexer does: text between
actions, `{{`/`}}` delimiters with their `-` trim markers (which remove the adjacent white space of
the surrounding text), comments (dropped), and the words inside actions. A lexing error becomes a
single final `ERROR` token carrying Go's message; nothing is raised here.

Invariants: token positions are character offsets into the source, lines are 1-based, and the
token list always ends with exactly one `EOF` or `ERROR` token.
"""

from __future__ import annotations

from dockyard.gostr import go_quote

LEFT_DELIM = "{{"
RIGHT_DELIM = "}}"
_LEFT_COMMENT = "/*"
_RIGHT_COMMENT = "*/"
_SPACE = " \t\r\n"


class Kind:
    """Token kinds (plain strings: no enum import on the startup path)."""

    TEXT = "text"
    LEFT_DELIM = "left delim"
    RIGHT_DELIM = "right delim"
    SPACE = "space"
    IDENT = "identifier"
    FIELD = "field"
    VARIABLE = "variable"
    DOT = "."
    STRING = "string"
    RAW_STRING = "raw string"
    CHAR_CONST = "char constant"
    NUMBER = "number"
    BOOL = "bool"
    NIL = "nil"
    PIPE = "|"
    LEFT_PAREN = "("
    RIGHT_PAREN = ")"
    ASSIGN = "="
    DECLARE = ":="
    CHAR = "char"
    # keywords
    BLOCK = "block"
    BREAK = "break"
    CONTINUE = "continue"
    DEFINE = "define"
    ELSE = "else"
    END = "end"
    IF = "if"
    RANGE = "range"
    TEMPLATE = "template"
    WITH = "with"
    EOF = "EOF"
    ERROR = "error"


KEYWORDS = {
    k: k
    for k in (
        Kind.BLOCK,
        Kind.BREAK,
        Kind.CONTINUE,
        Kind.DEFINE,
        Kind.ELSE,
        Kind.END,
        Kind.IF,
        Kind.RANGE,
        Kind.TEMPLATE,
        Kind.WITH,
    )
}


class Token:
    __slots__ = ("kind", "line", "pos", "val")

    def __init__(self, kind: str, val: str, pos: int, line: int) -> None:
        self.kind = kind
        self.val = val
        self.pos = pos
        self.line = line

    def __str__(self) -> str:
        """Go's item.String(), used in "unexpected X" parse errors."""
        if self.kind == Kind.EOF:
            return "EOF"
        if self.kind == Kind.ERROR:
            return self.val
        if self.kind in KEYWORDS or self.kind in (Kind.DOT, Kind.NIL):
            return f"<{self.val}>"
        if len(self.val) > 10:
            return go_quote(self.val[:10]) + "..."
        return go_quote(self.val)


class LexError(Exception):
    pass


def _is_alnum(c: str) -> bool:
    return c == "_" or c.isalpha() or c.isdigit()


def _right_trim_len(s: str) -> int:
    return len(s) - len(s.rstrip(_SPACE))


def _left_trim_len(s: str) -> int:
    return len(s) - len(s.lstrip(_SPACE))


def _has_left_trim(s: str, i: int) -> bool:
    return s.startswith("-", i) and i + 1 < len(s) and s[i + 1] in _SPACE


class _Lexer:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.start = 0
        self.tokens: list[Token] = []
        self.paren_depth = 0

    # -- helpers -------------------------------------------------------------------------------
    def _line_at(self, pos: int) -> int:
        return self.text.count("\n", 0, pos) + 1

    def emit(self, kind: str) -> None:
        val = self.text[self.start : self.pos]
        self.tokens.append(Token(kind, val, self.start, self._line_at(self.start)))
        self.start = self.pos

    def fail(self, msg: str) -> None:
        self.tokens.append(Token(Kind.ERROR, msg, self.start, self._line_at(self.start)))
        raise LexError(msg)

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def at_right_delim(self) -> tuple[bool, bool]:
        t, p = self.text, self.pos
        if (
            p + 1 < len(t)
            and t[p] in _SPACE
            and t[p + 1] == "-"
            and t.startswith(RIGHT_DELIM, p + 2)
        ):
            return True, True
        return t.startswith(RIGHT_DELIM, p), False

    def at_terminator(self) -> bool:
        c = self.peek()
        if c == "" or c in _SPACE or c in ".,|:()":
            return True
        return self.text.startswith(RIGHT_DELIM, self.pos)

    # -- states --------------------------------------------------------------------------------
    def run(self) -> list[Token]:
        try:
            while self.pos < len(self.text) or self.start < len(self.text):
                self.lex_text()
            self.tokens.append(Token(Kind.EOF, "", self.pos, self._line_at(self.pos)))
        except LexError:
            pass
        return self.tokens

    def lex_text(self) -> None:
        t = self.text
        x = t.find(LEFT_DELIM, self.pos)
        if x < 0:
            self.pos = len(t)
            if self.pos > self.start:
                self.emit(Kind.TEXT)
            self.start = self.pos
            return
        trim = _right_trim_len(t[self.start : x]) if _has_left_trim(t, x + 2) else 0
        self.pos = x - trim
        if self.pos > self.start:
            self.emit(Kind.TEXT)
        self.pos = x
        self.start = x
        self.lex_left_delim()

    def lex_left_delim(self) -> None:
        t = self.text
        self.pos += len(LEFT_DELIM)
        after = 2 if _has_left_trim(t, self.pos) else 0
        if t.startswith(_LEFT_COMMENT, self.pos + after):
            self.pos += after
            self.start = self.pos
            self.lex_comment()
            return
        self.emit(Kind.LEFT_DELIM)
        self.pos += after
        self.start = self.pos
        self.paren_depth = 0
        self.lex_inside_action()

    def lex_comment(self) -> None:
        t = self.text
        self.pos += len(_LEFT_COMMENT)
        x = t.find(_RIGHT_COMMENT, self.pos)
        if x < 0:
            self.fail("unclosed comment")
        self.pos = x + len(_RIGHT_COMMENT)
        delim, trim = self.at_right_delim()
        if not delim:
            self.fail("comment ends before closing delimiter")
        self.pos += (2 if trim else 0) + len(RIGHT_DELIM)
        if trim:
            self.pos += _left_trim_len(t[self.pos :])
        self.start = self.pos

    def lex_right_delim(self) -> None:
        _, trim = self.at_right_delim()
        if trim:
            self.pos += 2
            self.start = self.pos
        self.pos += len(RIGHT_DELIM)
        self.emit(Kind.RIGHT_DELIM)
        if trim:
            self.pos += _left_trim_len(self.text[self.pos :])
            self.start = self.pos

    def lex_inside_action(self) -> None:
        while True:
            delim, _ = self.at_right_delim()
            if delim:
                if self.paren_depth == 0:
                    self.lex_right_delim()
                    return
                self.fail("unclosed left paren")
            if self.pos >= len(self.text):
                self.fail("unclosed action")
            self.lex_action_item()

    def lex_action_item(self) -> None:
        c = self.text[self.pos]
        self.pos += 1
        if c in _SPACE:
            self.pos -= 1
            self.lex_space()
        elif c == "=":
            self.emit(Kind.ASSIGN)
        elif c == ":":
            if self.peek() != "=":
                self.fail("expected :=")
            self.pos += 1
            self.emit(Kind.DECLARE)
        elif c == "|":
            self.emit(Kind.PIPE)
        elif c == '"':
            self.lex_quote('"', Kind.STRING, "unterminated quoted string")
        elif c == "'":
            self.lex_quote("'", Kind.CHAR_CONST, "unterminated character constant")
        elif c == "`":
            x = self.text.find("`", self.pos)
            if x < 0:
                self.fail("unterminated raw quoted string")
            self.pos = x + 1
            self.emit(Kind.RAW_STRING)
        elif c == "$":
            self.lex_field_or_variable(Kind.VARIABLE)
        elif c == "." and not (self.peek() != "" and "0" <= self.peek() <= "9"):
            self.lex_field_or_variable(Kind.FIELD)
        elif c in "+-." or "0" <= c <= "9":
            self.pos -= 1
            self.lex_number()
        elif _is_alnum(c):
            self.pos -= 1
            self.lex_identifier()
        elif c == "(":
            self.paren_depth += 1
            self.emit(Kind.LEFT_PAREN)
        elif c == ")":
            self.paren_depth -= 1
            if self.paren_depth < 0:
                self.fail("unexpected right paren")
            self.emit(Kind.RIGHT_PAREN)
        elif c.isascii() and c.isprintable():
            self.emit(Kind.CHAR)
        else:
            self.fail(f"unrecognized character in action: {_rune_repr(c)}")

    def lex_space(self) -> None:
        n = 0
        while self.peek() != "" and self.peek() in _SPACE:
            self.pos += 1
            n += 1
        t, p = self.text, self.pos - 1
        if t.startswith("-", p + 1) and t.startswith(RIGHT_DELIM, p + 2):
            self.pos -= 1  # leave the space before " -}}" to the delimiter
            if n == 1:
                return
        self.emit(Kind.SPACE)

    def lex_quote(self, close: str, kind: str, err: str) -> None:
        t = self.text
        while True:
            c = t[self.pos] if self.pos < len(t) else ""
            self.pos += 1
            if c == "\\":
                c = t[self.pos] if self.pos < len(t) else ""
                self.pos += 1
                if c not in ("", "\n"):
                    continue
                self.fail(err)
            if c in ("", "\n"):
                self.fail(err)
            if c == close:
                break
        self.emit(kind)

    def lex_field_or_variable(self, kind: str) -> None:
        if self.at_terminator():
            self.emit(Kind.VARIABLE if kind == Kind.VARIABLE else Kind.DOT)
            return
        while self.peek() != "" and _is_alnum(self.peek()):
            self.pos += 1
        if not self.at_terminator():
            self.fail(f"bad character {_rune_repr(self.peek())}")
        self.emit(kind)

    def lex_identifier(self) -> None:
        while self.peek() != "" and _is_alnum(self.peek()):
            self.pos += 1
        if not self.at_terminator():
            self.fail(f"bad character {_rune_repr(self.peek())}")
        word = self.text[self.start : self.pos]
        if word in KEYWORDS:
            self.emit(KEYWORDS[word])
        elif word in ("true", "false"):
            self.emit(Kind.BOOL)
        elif word == "nil":
            self.emit(Kind.NIL)
        else:
            self.emit(Kind.IDENT)

    def lex_number(self) -> None:
        t = self.text

        def accept(chars: str) -> bool:
            if self.pos < len(t) and t[self.pos] in chars:
                self.pos += 1
                return True
            return False

        def accept_run(chars: str) -> None:
            while accept(chars):
                pass

        accept("+-")
        digits = "0123456789_"
        if accept("0"):
            if accept("xX"):
                digits = "0123456789abcdefABCDEF_"
            elif accept("oO"):
                digits = "01234567_"
            elif accept("bB"):
                digits = "01_"
        accept_run(digits)
        if accept("."):
            accept_run(digits)
        if len(digits) == 10 + 1 and accept("eE"):
            accept("+-")
            accept_run("0123456789_")
        if len(digits) == 22 + 1 and accept("pP"):
            accept("+-")
            accept_run("0123456789_")
        accept("i")
        if self.pos < len(t) and _is_alnum(t[self.pos]):
            self.pos += 1
            self.fail(f"bad number syntax: {go_quote(t[self.start : self.pos])}")
        self.emit(Kind.NUMBER)


def _rune_repr(c: str) -> str:
    """Go's %#U: `U+007D '}'`."""
    if c == "":
        return "U+FFFFFFFF"
    return f"U+{ord(c):04X} '{c}'" if c.isprintable() else f"U+{ord(c):04X}"


def lex(text: str) -> list[Token]:
    """Split template source into tokens; the last one is EOF or ERROR."""
    return _Lexer(text).run()
