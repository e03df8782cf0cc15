"""Parser for Go text/template (layer L0): tokens from `lexer.py` into a `ListNode` tree.

Follows the structure and error messages of Go's text/template/parse: pipelines with `$x :=`
declarations, commands of operands, `if`/`else if`/`range`/`with`/`else with`, `break`/`continue`
inside `range`, parenthesised pipelines and field chains. Functions must be known at parse time
(Go's "function %q not defined"), and variables must be declared before use.

Invariant: a `ParseError` message is exactly Go's `template: NAME:LINE: MESSAGE`.
"""

from __future__ import annotations

from collections.abc import Container

from dockyard.gostr import go_quote
from dockyard.gotemplate import nodes as n
from dockyard.gotemplate.lexer import Kind, Token, lex


class ParseError(Exception):
    pass


_OPERAND_START = {
    Kind.BOOL,
    Kind.CHAR_CONST,
    Kind.DOT,
    Kind.FIELD,
    Kind.IDENT,
    Kind.NUMBER,
    Kind.NIL,
    Kind.RAW_STRING,
    Kind.STRING,
    Kind.VARIABLE,
    Kind.LEFT_PAREN,
}
_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\"}


def go_unquote(s: str) -> str:
    """strconv.Unquote for "double", 'single' or `raw` quoted Go literals."""
    if len(s) < 2 or s[0] != s[-1] or s[0] not in "\"'`":
        raise ValueError("invalid syntax")
    q, body = s[0], s[1:-1]
    if q == "`":
        if "`" in body:
            raise ValueError("invalid syntax")
        return body.replace("\r", "")
    out: list[str] = []
    i = 0
    while i < len(body):
        c = body[i]
        if c == q or c == "\n":
            raise ValueError("invalid syntax")
        if c != "\\":
            out.append(c)
            i += 1
            continue
        e = body[i + 1] if i + 1 < len(body) else ""
        i += 2
        if e in _ESCAPES:
            out.append(_ESCAPES[e])
        elif e == q:
            out.append(q)
        elif e in ("x", "u", "U"):
            size = {"x": 2, "u": 4, "U": 8}[e]
            digits = body[i : i + size]
            if len(digits) != size or not all(d in "0123456789abcdefABCDEF" for d in digits):
                raise ValueError("invalid syntax")
            code = int(digits, 16)
            if code > 0x10FFFF or 0xD800 <= code < 0xE000:
                raise ValueError("invalid syntax")
            out.append(chr(code))
            i += size
        elif e in "01234567" and e != "":
            digits = body[i - 1 : i + 2]
            if len(digits) != 3 or not all(d in "01234567" for d in digits) or int(digits, 8) > 255:
                raise ValueError("invalid syntax")
            out.append(chr(int(digits, 8)))
            i += 2
        else:
            raise ValueError("invalid syntax")
    text = "".join(out)
    if q == "'" and len(text) != 1:
        raise ValueError("invalid syntax")
    return text


def parse_number(text: str, kind: str) -> int | float:
    """The value Go gives a numeric constant passed as an `any` argument."""
    if kind == Kind.CHAR_CONST:
        return ord(go_unquote(text))
    if text.endswith("i"):
        raise ValueError(f"complex constants are not supported: {text!r}")
    clean = text.replace("_", "")
    try:
        digits = text.lstrip("+-")
        if len(digits) > 1 and digits[0] == "0" and all(c in "01234567_" for c in digits):
            return int(clean, 8)
        return int(clean, 0)
    except ValueError:
        pass
    try:
        if clean.lstrip("+-").lower().startswith("0x"):
            return float.fromhex(clean)
        value = float(clean)
    except ValueError:
        raise ValueError(f'illegal number syntax: "{text}"') from None
    if not any(c in text for c in ".eEpP"):
        raise ValueError(f'integer overflow: "{text}"')
    return value


class Parser:
    def __init__(self, text: str, funcs: Container[str], name: str = "") -> None:
        self.tokens = lex(text)
        self.i = 0
        self.funcs = funcs
        self.name = name
        self.vars: list[str] = ["$"]
        self.range_depth = 0
        self.last: Token = self.tokens[0]

    # -- token stream ------------------------------------------------------------------------
    def next(self) -> Token:
        tok = self.peek()
        self.i += 1
        self.last = tok
        return tok

    def backup(self) -> None:
        self.i -= 1

    def peek(self) -> Token:
        return self.tokens[min(self.i, len(self.tokens) - 1)]

    def next_non_space(self) -> Token:
        tok = self.next()
        while tok.kind == Kind.SPACE:
            tok = self.next()
        return tok

    def peek_non_space(self) -> Token:
        while self.peek().kind == Kind.SPACE:
            self.i += 1
        return self.peek()

    # -- errors ------------------------------------------------------------------------------
    def error(self, msg: str) -> ParseError:
        return ParseError(f"template: {self.name}:{self.last.line}: {msg}")

    def unexpected(self, tok: Token, context: str) -> ParseError:
        if tok.kind == Kind.ERROR:
            return self.error(str(tok))
        return self.error(f"unexpected {tok} in {context}")

    def expect(self, kind: str, context: str) -> Token:
        tok = self.next_non_space()
        if tok.kind != kind:
            raise self.unexpected(tok, context)
        return tok

    # -- grammar -----------------------------------------------------------------------------
    def parse(self) -> n.ListNode:
        root = n.ListNode(self.peek().pos)
        while self.peek().kind != Kind.EOF:
            node = self.text_or_action()
            if isinstance(node, n.EndNode | n.ElseNode):
                raise self.error(f"unexpected {node}")
            root.nodes.append(node)
        return root

    def item_list(self) -> tuple[n.ListNode, n.Node]:
        lst = n.ListNode(self.peek_non_space().pos)
        while self.peek_non_space().kind != Kind.EOF:
            node = self.text_or_action()
            if isinstance(node, n.EndNode | n.ElseNode):
                return lst, node
            lst.nodes.append(node)
        raise self.error("unexpected EOF")

    def text_or_action(self) -> n.Node:
        tok = self.next_non_space()
        if tok.kind == Kind.TEXT:
            return n.TextNode(tok.pos, tok.val)
        if tok.kind == Kind.LEFT_DELIM:
            return self.action()
        raise self.unexpected(tok, "input")

    def action(self) -> n.Node:
        tok = self.next_non_space()
        k = tok.kind
        if k == Kind.ELSE:
            peek = self.peek_non_space()
            if peek.kind in (Kind.IF, Kind.WITH):
                return n.ElseNode(peek.pos)
            return n.ElseNode(self.expect(Kind.RIGHT_DELIM, "else").pos)
        if k == Kind.END:
            return n.EndNode(self.expect(Kind.RIGHT_DELIM, "end").pos)
        if k in (Kind.IF, Kind.RANGE, Kind.WITH):
            return self.control(k)
        if k in (Kind.BREAK, Kind.CONTINUE):
            close = self.next_non_space()
            if close.kind != Kind.RIGHT_DELIM:
                raise self.unexpected(close, "{{" + k + "}}")
            if self.range_depth == 0:
                raise self.error("{{" + k + "}} outside {{range}}")
            return n.BreakNode(tok.pos) if k == Kind.BREAK else n.ContinueNode(tok.pos)
        if k in (Kind.DEFINE, Kind.TEMPLATE, Kind.BLOCK):
            raise self.error("{{" + k + "}} is not supported")
        self.backup()
        start = self.peek()
        return n.ActionNode(start.pos, start.line, self.pipeline("command", Kind.RIGHT_DELIM))

    def control(self, context: str) -> n.BranchNode:
        mark = len(self.vars)
        try:
            pipe = self.pipeline(context, Kind.RIGHT_DELIM)
            if context == "range":
                self.range_depth += 1
            body, nxt = self.item_list()
            if context == "range":
                self.range_depth -= 1
            else_list: n.ListNode | None = None
            if isinstance(nxt, n.ElseNode):
                peek = self.peek().kind
                if (context, peek) in (("if", Kind.IF), ("with", Kind.WITH)):
                    self.next()
                    else_list = n.ListNode(nxt.pos, [self.control(context)])
                else:
                    else_list, nxt = self.item_list()
                    if not isinstance(nxt, n.EndNode):
                        raise self.error(f"expected end; found {nxt}")
            return n.BranchNode(pipe.pos, context, pipe.line, pipe, body, else_list)
        finally:
            del self.vars[mark:]

    def pipeline(self, context: str, end: str) -> n.PipeNode:
        start = self.peek_non_space()
        pipe = n.PipeNode(start.pos, start.line)
        self.declarations(pipe, context)
        while True:
            tok = self.next_non_space()
            if tok.kind == end:
                self.check_pipeline(pipe, context)
                return pipe
            if tok.kind in _OPERAND_START:
                self.backup()
                pipe.cmds.append(self.command())
            else:
                raise self.unexpected(tok, context)

    def declarations(self, pipe: n.PipeNode, context: str) -> None:
        while True:
            v = self.peek_non_space()
            if v.kind != Kind.VARIABLE:
                return
            save = self.i
            self.next()
            nxt = self.peek_non_space()
            if nxt.kind in (Kind.ASSIGN, Kind.DECLARE):
                pipe.is_assign = nxt.kind == Kind.ASSIGN
                self.next_non_space()
                pipe.decl.append(n.VariableNode(v.pos, (v.val,)))
                if not pipe.is_assign:
                    self.vars.append(v.val)
                elif v.val not in self.vars:
                    raise self.error(f'undefined variable "{v.val}"')
                return
            if nxt.kind == Kind.CHAR and nxt.val == ",":
                self.next_non_space()
                pipe.decl.append(n.VariableNode(v.pos, (v.val,)))
                self.vars.append(v.val)
                if context == "range" and len(pipe.decl) < 2:
                    if self.peek_non_space().kind in (
                        Kind.VARIABLE,
                        Kind.RIGHT_DELIM,
                        Kind.RIGHT_PAREN,
                    ):
                        continue
                    raise self.error("range can only initialize variables")
                raise self.error(f"too many declarations in {context}")
            self.i = save
            return

    def check_pipeline(self, pipe: n.PipeNode, context: str) -> None:
        if not pipe.cmds:
            raise self.error(f"missing value for {context}")
        for i, cmd in enumerate(pipe.cmds[1:]):
            first = cmd.args[0]
            if isinstance(first, n.BoolNode | n.DotNode | n.NilNode | n.NumberNode | n.StringNode):
                raise self.error(f"non executable command in pipeline stage {i + 2}")

    def command(self) -> n.CommandNode:
        cmd = n.CommandNode(self.peek_non_space().pos)
        while True:
            self.peek_non_space()
            operand = self.operand()
            if operand is not None:
                cmd.args.append(operand)
            tok = self.next()
            if tok.kind == Kind.SPACE:
                continue
            if tok.kind in (Kind.RIGHT_DELIM, Kind.RIGHT_PAREN):
                self.backup()
            elif tok.kind != Kind.PIPE:
                raise self.unexpected(tok, "operand")
            break
        if not cmd.args:
            raise self.error("empty command")
        return cmd

    def operand(self) -> n.Node | None:
        node = self.term()
        if node is None or self.peek().kind != Kind.FIELD:
            return node
        fields: list[str] = []
        pos = self.peek().pos
        while self.peek().kind == Kind.FIELD:
            fields.append(self.next().val[1:])
        if isinstance(node, n.FieldNode):
            return n.FieldNode(pos, node.idents + tuple(fields))
        if isinstance(node, n.VariableNode):
            return n.VariableNode(pos, node.idents + tuple(fields))
        if isinstance(node, n.BoolNode | n.StringNode | n.NumberNode | n.NilNode | n.DotNode):
            raise self.error(f"unexpected . after term {go_quote(str(node))}")
        return n.ChainNode(pos, node, fields)

    def term(self) -> n.Node | None:
        tok = self.next_non_space()
        k = tok.kind
        if k == Kind.IDENT:
            if tok.val not in self.funcs:
                raise self.error(f'function "{tok.val}" not defined')
            return n.IdentifierNode(tok.pos, tok.val)
        if k == Kind.DOT:
            return n.DotNode(tok.pos)
        if k == Kind.NIL:
            return n.NilNode(tok.pos)
        if k == Kind.VARIABLE:
            if tok.val not in self.vars:
                raise self.error(f'undefined variable "{tok.val}"')
            return n.VariableNode(tok.pos, (tok.val,))
        if k == Kind.FIELD:
            return n.FieldNode(tok.pos, (tok.val[1:],))
        if k == Kind.BOOL:
            return n.BoolNode(tok.pos, tok.val == "true")
        if k in (Kind.NUMBER, Kind.CHAR_CONST):
            try:
                return n.NumberNode(tok.pos, tok.val, parse_number(tok.val, k))
            except ValueError as e:
                raise self.error(str(e)) from None
        if k == Kind.LEFT_PAREN:
            return self.pipeline("parenthesized pipeline", Kind.RIGHT_PAREN)
        if k in (Kind.STRING, Kind.RAW_STRING):
            try:
                return n.StringNode(tok.pos, tok.val, go_unquote(tok.val))
            except ValueError as e:
                raise self.error(str(e)) from None
        self.backup()
        return None


def parse(text: str, funcs: Container[str], name: str = "") -> n.ListNode:
    """Parse template source; raises `ParseError` with Go's message."""
    return Parser(text, funcs, name).parse()
