"""Evaluator of a parsed Go template over Python data (layer L0).

Walks the tree from `parser.py` the way Go's text/template `exec.go` does: `.Field` looks up a
Mapping key (a missing key gives Go's "no value") or an object attribute (methods are called with
the command's arguments; a missing attribute is Go's "can't evaluate field X in type T"),
pipelines pass each result as the last argument of the next command, `range` walks lists, ints
and Mappings (keys sorted), variables live on a stack popped at the end of each control block.

Invariants: output is appended to `State.out` as it is produced, so a failed execution still
leaves the partial output (Docker prints a table header that way); every failure is an
`ExecError` whose message is Go's `template: NAME:LINE:COL: executing "NAME" at <NODE>: MSG`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dockyard.gotemplate import nodes as n
from dockyard.gotemplate.funcs import ArgError, Func, truth
from dockyard.gotemplate.gofmt import MISSING, NIL_POINTER, format_value, go_type


class ExecError(Exception):
    pass


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


_NO_FINAL: Any = object()  # Go's missingVal: "no value piped into this command"
_SCALARS = (str, bytes, bool, int, float, complex, list, tuple)


def _plain(v: Any) -> Any:
    """The value a function receives: Go's untyped nil for the missing/nil markers."""
    return None if v is MISSING or v is NIL_POINTER else v


class State:
    def __init__(self, text: str, funcs: Mapping[str, Func], name: str = "") -> None:
        self.text = text
        self.funcs = funcs
        self.name = name
        self.out: list[str] = []
        self.vars: list[tuple[str, Any]] = []

    # -- errors and variables ----------------------------------------------------------------
    def error(self, node: n.Node, msg: str) -> ExecError:
        prefix = self.text[: node.pos]
        nl = prefix.rfind("\n")
        line = prefix.count("\n") + 1
        col = len(prefix[nl + 1 :].encode())
        ctx = str(node)
        if len(ctx) > 20:
            ctx = ctx[:20] + "..."
        where = f"{self.name}:{line}:{col}"
        return ExecError(f'template: {where}: executing "{self.name}" at <{ctx}>: {msg}')

    def var(self, node: n.Node, name: str) -> Any:
        for vname, value in reversed(self.vars):
            if vname == name:
                return value
        raise self.error(node, f"undefined variable: {name}")

    def set_var(self, node: n.Node, name: str, value: Any) -> None:
        for i in range(len(self.vars) - 1, -1, -1):
            if self.vars[i][0] == name:
                self.vars[i] = (name, value)
                return
        raise self.error(node, f"undefined variable: {name}")

    # -- statements --------------------------------------------------------------------------
    def execute(self, root: n.ListNode, data: Any) -> None:
        dot = MISSING if data is None else data
        self.vars = [("$", dot)]
        self.walk(dot, root)

    def walk(self, dot: Any, node: n.Node) -> None:
        if isinstance(node, n.TextNode):
            self.out.append(node.text)
        elif isinstance(node, n.ActionNode):
            value = self.eval_pipeline(dot, node.pipe)
            if not node.pipe.decl:
                self.print_value(value)
        elif isinstance(node, n.ListNode):
            for child in node.nodes:
                self.walk(dot, child)
        elif isinstance(node, n.BranchNode):
            mark = len(self.vars)
            try:
                if node.kind == "range":
                    self.walk_range(dot, node)
                else:
                    self.walk_if_or_with(dot, node)
            finally:
                del self.vars[mark:]
        elif isinstance(node, n.BreakNode):
            raise _Break
        elif isinstance(node, n.ContinueNode):
            raise _Continue
        else:  # pragma: no cover - the parser builds no other nodes
            raise self.error(node, f"unknown node: {node}")

    def walk_if_or_with(self, dot: Any, node: n.BranchNode) -> None:
        value = self.eval_pipeline(dot, node.pipe)
        if truth(value):
            self.walk(value if node.kind == "with" else dot, node.body)
        elif node.else_list is not None:
            self.walk(dot, node.else_list)

    def _iterate(self, node: n.BranchNode, value: Any) -> list[tuple[Any, Any]]:
        if value is MISSING or value is None or value is NIL_POINTER:
            return []
        if isinstance(value, Mapping):
            return [(k, value[k]) for k in sorted(value, key=_key_order)]
        if isinstance(value, list | tuple):
            return list(enumerate(value))
        if isinstance(value, int) and not isinstance(value, bool):
            if len(node.pipe.decl) > 1:
                raise self.error(node, f"can't use {value} to iterate over more than one variable")
            return [(i, i) for i in range(value)]
        if isinstance(value, str | bytes | bool | float) or not hasattr(value, "__iter__"):
            last = node.pipe.cmds[-1].args[-1]  # where Go's evaluation last stood
            raise self.error(last, f"range can't iterate over {format_value(value)}")
        return list(enumerate(value))

    def walk_range(self, dot: Any, node: n.BranchNode) -> None:
        # As in Go, the declared variables first hold the whole value (visible in {{else}}),
        # then each iteration overwrites them with (index, element) or element.
        value = self.eval_pipeline(dot, node.pipe)
        items = self._iterate(node, value)
        names = [v.idents[0] for v in node.pipe.decl]
        mark = len(self.vars)
        for index, elem in items:
            if node.pipe.is_assign:
                for name, val in zip(
                    names, [elem] if len(names) == 1 else [index, elem], strict=True
                ):
                    self.set_var(node, name, val)
            elif len(names) == 1:
                self.vars[mark - 1] = (names[0], elem)
            elif len(names) == 2:
                self.vars[mark - 2] = (names[0], index)
                self.vars[mark - 1] = (names[1], elem)
            try:
                self.walk(elem, node.body)
            except _Continue:
                pass
            except _Break:
                break
            finally:
                del self.vars[mark:]
        if not items and node.else_list is not None:
            self.walk(dot, node.else_list)

    def print_value(self, value: Any) -> None:
        if value is MISSING or value is None:
            self.out.append("<no value>")
        elif value is NIL_POINTER:
            self.out.append("<nil>")
        else:
            self.out.append(format_value(value))

    # -- expressions -------------------------------------------------------------------------
    def eval_pipeline(self, dot: Any, pipe: n.PipeNode) -> Any:
        value: Any = _NO_FINAL
        for cmd in pipe.cmds:
            value = self.eval_command(dot, cmd, value)
        for var in pipe.decl:
            if pipe.is_assign:
                self.set_var(var, var.idents[0], value)
            else:
                self.vars.append((var.idents[0], value))
        return value

    def not_a_function(self, node: n.Node, args: list[n.Node], final: Any) -> None:
        if len(args) > 1 or final is not _NO_FINAL:
            raise self.error(node, f"can't give argument to non-function {args[0]}")

    def eval_command(self, dot: Any, cmd: n.CommandNode, final: Any) -> Any:
        first = cmd.args[0]
        if isinstance(first, n.FieldNode):
            return self.eval_field_chain(dot, dot, first, first.idents, cmd.args, final)
        if isinstance(first, n.ChainNode):
            return self.eval_chain(dot, first, cmd.args, final)
        if isinstance(first, n.IdentifierNode):
            return self.eval_function(dot, first, cmd, cmd.args[1:], final)
        if isinstance(first, n.VariableNode):
            return self.eval_variable(dot, first, cmd.args, final)
        self.not_a_function(first, cmd.args, final)
        if isinstance(first, n.PipeNode):
            return self.eval_pipeline(dot, first)
        if isinstance(first, n.NilNode):
            raise self.error(first, "nil is not a command")
        return self.eval_arg(dot, first)

    def eval_arg(self, dot: Any, node: n.Node) -> Any:
        if isinstance(node, n.DotNode):
            return dot
        if isinstance(node, n.NilNode):
            return None
        if isinstance(node, n.FieldNode):
            return self.eval_field_chain(dot, dot, node, node.idents, [node], _NO_FINAL)
        if isinstance(node, n.VariableNode):
            return self.eval_variable(dot, node, [node], _NO_FINAL)
        if isinstance(node, n.PipeNode):
            return self.eval_pipeline(dot, node)
        if isinstance(node, n.IdentifierNode):
            return self.eval_function(dot, node, node, [], _NO_FINAL)
        if isinstance(node, n.ChainNode):
            return self.eval_chain(dot, node, [node], _NO_FINAL)
        if isinstance(node, n.BoolNode):
            return node.value
        if isinstance(node, n.NumberNode):
            return node.value
        if isinstance(node, n.StringNode):
            return node.text
        raise self.error(node, f"can't handle {node} for arg")  # pragma: no cover

    def eval_chain(self, dot: Any, chain: n.ChainNode, args: list[n.Node], final: Any) -> Any:
        receiver = self.eval_arg(dot, chain.node)
        return self.eval_field_chain(dot, receiver, chain, tuple(chain.fields), args, final)

    def eval_variable(self, dot: Any, node: n.VariableNode, args: list[n.Node], final: Any) -> Any:
        value = self.var(node, node.idents[0])
        if len(node.idents) == 1:
            self.not_a_function(node, args, final)
            return value
        return self.eval_field_chain(dot, value, node, node.idents[1:], args, final)

    def eval_field_chain(
        self,
        dot: Any,
        receiver: Any,
        node: n.Node,
        idents: tuple[str, ...],
        args: list[n.Node],
        final: Any,
    ) -> Any:
        for ident in idents[:-1]:
            receiver = self.eval_field(dot, ident, node, [], _NO_FINAL, receiver)
        return self.eval_field(dot, idents[-1], node, args, final, receiver)

    def eval_field(
        self, dot: Any, name: str, node: n.Node, args: list[n.Node], final: Any, receiver: Any
    ) -> Any:
        has_args = len(args) > 1 or final is not _NO_FINAL
        if receiver is MISSING:
            return MISSING
        if receiver is None or receiver is NIL_POINTER:
            raise self.error(node, f"nil pointer evaluating interface {{}}.{name}")
        if isinstance(receiver, Mapping):
            if has_args:
                raise self.error(node, f"{name} is not a method but has arguments")
            try:
                return receiver[name]
            except KeyError:
                return MISSING
        attr = MISSING
        if not name.startswith("_") and not isinstance(receiver, _SCALARS):
            try:
                attr = getattr(receiver, name, MISSING)
            except Exception as e:  # a property that failed: Go's method returning an error
                raise self.error(node, f"error calling {name}: {e}") from None
        if attr is MISSING:
            raise self.error(node, f"can't evaluate field {name} in type {go_type(receiver)}")
        if callable(attr) and not isinstance(attr, type):
            argv = [_plain(self.eval_arg(dot, a)) for a in args[1:]]
            if final is not _NO_FINAL:
                argv.append(_plain(final))
            return self.call(node, name, attr, argv)
        if has_args:
            raise self.error(node, f"{name} has arguments but cannot be invoked as function")
        return NIL_POINTER if attr is None else attr

    def eval_function(
        self, dot: Any, ident: n.IdentifierNode, cmd: n.Node, args: list[n.Node], final: Any
    ) -> Any:
        name = ident.name
        func = self.funcs.get(name)
        if func is None:
            raise self.error(ident, f'"{name}" is not a defined function')
        count = len(args) + (final is not _NO_FINAL)
        if count < func.min_args or (func.max_args is not None and count > func.max_args):
            want = f"at least {func.min_args}" if func.max_args is None else str(func.min_args)
            raise self.error(ident, f"wrong number of args for {name}: want {want} got {count}")
        if name in ("and", "or"):
            return self.eval_and_or(dot, name, args, final)
        argv = [_plain(self.eval_arg(dot, a)) for a in args]
        if final is not _NO_FINAL:
            argv.append(_plain(final))
        return self.call(cmd, name, func.fn, argv)

    def eval_and_or(self, dot: Any, name: str, args: list[n.Node], final: Any) -> Any:
        value: Any = None
        for arg in args:
            value = self.eval_arg(dot, arg)
            if truth(value) == (name == "or"):
                return value
        return final if final is not _NO_FINAL else value

    def call(self, node: n.Node, name: str, fn: Any, argv: list[Any]) -> Any:
        try:
            return fn(*argv)
        except ArgError as e:
            raise self.error(node, str(e)) from None
        except (ExecError, _Break, _Continue):
            raise
        except Exception as e:
            raise self.error(node, f"error calling {name}: {e}") from None


def _key_order(k: Any) -> tuple[int, Any]:
    if isinstance(k, bool):
        return (0, k)
    if isinstance(k, int | float):
        return (1, k)
    return (2, str(k))
