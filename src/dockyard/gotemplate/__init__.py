"""Go text/template for Docker-style `--format` flags (layer L0).

Every `--format` in Dockyard goes through this package so that templates behave as in the Docker
CLI: Go's text/template language (fields, pipelines, if/else if/range/with, variables, trim
markers, comments, Go's builtins and printf verbs) plus Docker's functions (json, join, split,
title, lower, upper, pad, truncate), run over Python data (see `gofmt` for how Python values
stand for Go values). `format_rows` and `tabwrite` (in `table`) implement Docker's table/json
output modes and column alignment.

Public API:
    Template.parse(text) -> Template; Template.execute(data) -> str
    render(text, data) -> str
    format_rows(fmt, rows, default_table, headers) -> str
    tabwrite(rows) -> str

Errors: a template that does not parse or fails to execute raises `TemplateError`, an
`InvalidArgument` whose message is Docker's, e.g.
`template parsing error: template: :1: unexpected "}" in operand`; `.go_message` holds Go's
part alone. Modules: lexer → parser (nodes) → exec, over funcs, gofmt and gojson; table on top.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from dockyard.errors import InvalidArgument
from dockyard.gotemplate.exec import ExecError, State
from dockyard.gotemplate.funcs import BUILTINS, DOCKER_FUNCS, HEADER_FUNCS, Func, func_from_callable
from dockyard.gotemplate.nodes import ListNode
from dockyard.gotemplate.parser import ParseError, parse
from dockyard.gotemplate.table import format_rows, tabwrite, tabwrite_text

__all__ = [
    "BUILTINS",
    "DOCKER_FUNCS",
    "HEADER_FUNCS",
    "Func",
    "Template",
    "TemplateError",
    "format_rows",
    "render",
    "tabwrite",
    "tabwrite_text",
]


class TemplateError(InvalidArgument):
    """A template failed to parse or execute; `go_message` is Go's error text."""

    def __init__(self, go_message: str) -> None:
        super().__init__(f"template parsing error: {go_message}")
        self.go_message = go_message


FuncsArg = Mapping[str, "Func | Callable[..., Any]"]


def _merge_funcs(extra: FuncsArg | None) -> dict[str, Func]:
    funcs = {**BUILTINS, **DOCKER_FUNCS}
    for name, fn in (extra or {}).items():
        funcs[name] = fn if isinstance(fn, Func) else func_from_callable(fn)
    return funcs


class Template:
    """A parsed template. Immutable; `execute` may be called any number of times."""

    def __init__(self, text: str, root: ListNode, funcs: Mapping[str, Func], name: str) -> None:
        self.text = text
        self.root = root
        self.funcs = funcs
        self.name = name

    @classmethod
    def parse(cls, text: str, funcs: FuncsArg | None = None, name: str = "") -> Template:
        """Parse `text` with Go's builtins, Docker's functions and `funcs` (which override)."""
        all_funcs = _merge_funcs(funcs)
        try:
            root = parse(text, all_funcs, name)
        except ParseError as e:
            raise TemplateError(str(e)) from None
        except RecursionError:
            raise TemplateError(f"template: {name}:1: template nested too deeply") from None
        return cls(text, root, all_funcs, name)

    def with_funcs(self, funcs: FuncsArg) -> Template:
        """The same tree with some functions replaced (Go's `tmpl.Funcs` after parsing)."""
        merged = dict(self.funcs)
        for name, fn in funcs.items():
            merged[name] = fn if isinstance(fn, Func) else func_from_callable(fn)
        return Template(self.text, self.root, merged, self.name)

    def _run(self, data: Any) -> tuple[str, ExecError | None]:
        state = State(self.text, self.funcs, self.name)
        try:
            state.execute(self.root, data)
        except ExecError as e:
            return "".join(state.out), e
        except RecursionError:
            return "".join(state.out), ExecError("template: exceeded maximum template depth")
        return "".join(state.out), None

    def execute(self, data: Any) -> str:
        """Render over `data`; raises TemplateError on an execution error."""
        out, err = self._run(data)
        if err is not None:
            raise TemplateError(str(err))
        return out

    def execute_partial(self, data: Any) -> str:
        """Render over `data`, returning what was written before any error (Docker's headers)."""
        return self._run(data)[0]


def render(text: str, data: Any, funcs: FuncsArg | None = None) -> str:
    """Parse and execute in one call."""
    return Template.parse(text, funcs).execute(data)
