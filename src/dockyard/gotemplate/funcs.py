"""Template functions (layer L0): Go's text/template builtins and the Docker CLI's extras.

A function is a `Func`: a Python callable plus its arity. Arguments arrive already evaluated, with
Go's missing/nil markers turned into None. A function reports a wrong argument type by raising
`ArgError` (printed as is, like Go's "wrong type for value"), any other failure by raising
`FuncError` or another exception (printed as "error calling NAME: ...").

`BUILTINS` are Go's (`and`/`or` short-circuit in the evaluator), `DOCKER_FUNCS` are the Docker
CLI's `templates.basicFunctions`, and `HEADER_FUNCS` its `HeaderFunctions`, which return their
argument unchanged so a table header keeps the column names.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from dockyard.gotemplate.gofmt import (
    MISSING,
    NIL_POINTER,
    format_value,
    go_type,
    sprint,
    sprintf,
    sprintln,
)
from dockyard.gotemplate.gojson import json_encode


class ArgError(Exception):
    """An argument of the wrong type; the message is printed without "error calling"."""


class FuncError(Exception):
    """A function failed; printed as "error calling NAME: message"."""


class Func:
    """A template function and how many arguments it takes (max_args None: variadic)."""

    __slots__ = ("fn", "max_args", "min_args")

    def __init__(self, fn: Callable[..., Any], min_args: int, max_args: int | None) -> None:
        self.fn = fn
        self.min_args = min_args
        self.max_args = max_args


def truth(v: Any) -> bool:
    """Go's template truth: false, 0, nil and empty strings/lists/maps are false."""
    if v is None or v is MISSING or v is NIL_POINTER:
        return False
    if isinstance(v, bool):
        return v
    if isinstance(v, int | float | complex):
        return v != 0
    if isinstance(v, str | bytes | list | tuple | Mapping):
        return len(v) > 0
    return True


def want_str(v: Any) -> str:
    if v is None:
        raise ArgError("invalid value; expected string")
    if not isinstance(v, str):
        raise ArgError(f"wrong type for value; expected string; got {go_type(v)}")
    return v


def want_int(v: Any) -> int:
    if v is None:
        raise ArgError("invalid value; expected int")
    if isinstance(v, bool) or not isinstance(v, int):
        raise ArgError(f"wrong type for value; expected int; got {go_type(v)}")
    return v


# -- Go builtins --------------------------------------------------------------------------------
def _not(v: Any) -> bool:
    return not truth(v)


def _len(v: Any) -> int:
    if v is None:
        raise FuncError("len of nil pointer")
    if isinstance(v, str):
        return len(v.encode())
    if isinstance(v, bytes | list | tuple | Mapping):
        return len(v)
    raise FuncError(f"len of type {go_type(v)}")


def _index_arg(i: Any, size: int) -> int:
    if i is None:
        raise FuncError("cannot index slice/array with nil")
    if isinstance(i, bool) or not isinstance(i, int):
        raise FuncError(f"cannot index slice/array with type {go_type(i)}")
    if i < 0 or i > size:
        raise FuncError(f"index out of range: {i}")
    return i


def _index(item: Any, *keys: Any) -> Any:
    if item is None:
        raise FuncError("index of untyped nil")
    for key in keys:
        if item is None:
            raise FuncError("index of nil pointer")
        if isinstance(item, str | bytes | list | tuple):
            x = _index_arg(key, len(item))
            if x == len(item):
                kind = "string" if isinstance(item, str) else "slice"
                raise FuncError(f"reflect: {kind} index out of range")
            item = item.encode()[x] if isinstance(item, str) else item[x]
        elif isinstance(item, Mapping):
            try:
                item = item[key]
            except (KeyError, TypeError):
                item = None
        else:
            raise FuncError(f"can't index item of type {go_type(item)}")
    return item


def _slice(item: Any, *idx: Any) -> Any:
    if item is None:
        raise FuncError("slice of untyped nil")
    if len(idx) > 3:
        raise FuncError(f"too many slice indexes: {len(idx)}")
    if not isinstance(item, str | list | tuple):
        raise FuncError(f"can't slice item of type {go_type(item)}")
    if isinstance(item, str) and len(idx) == 3:
        raise FuncError("cannot 3-index slice a string")
    bounds = [0, len(item)]
    for i, x in enumerate(idx[:2]):
        bounds[i] = _index_arg(x, len(item))
    if bounds[0] > bounds[1]:
        raise FuncError(f"invalid slice index: {bounds[0]} > {bounds[1]}")
    return item[bounds[0] : bounds[1]]


def _kind(v: Any) -> str:
    if v is None:
        return "nil"
    for typ, name in ((bool, "bool"), (int, "int"), (float, "float"), (str, "string")):
        if isinstance(v, typ):
            return name
    return "complex" if isinstance(v, complex) else "other"


def _eq(a: Any, *others: Any) -> bool:
    if not others:
        raise FuncError("missing argument for comparison")
    ka = _kind(a)
    for b in others:
        kb = _kind(b)
        if ka != kb:
            if "nil" not in (ka, kb):
                raise FuncError("incompatible types for comparison")
            continue
        if ka == "other":
            for v in (a, b):
                if isinstance(v, list | tuple | Mapping):
                    raise FuncError(f"non-comparable type {format_value(v)}: {go_type(v)}")
        if a == b:
            return True
    return False


def _ne(a: Any, b: Any) -> bool:
    return not _eq(a, b)


def _lt(a: Any, b: Any) -> bool:
    ka, kb = _kind(a), _kind(b)
    for k in (ka, kb):
        if k in ("nil", "other"):
            raise FuncError("invalid type for comparison")
    if ka != kb:
        raise FuncError("incompatible types for comparison")
    if ka in ("bool", "complex"):
        raise FuncError("invalid type for comparison")
    return bool(a < b)


def _le(a: Any, b: Any) -> bool:
    return _lt(a, b) or _eq(a, b)


def _gt(a: Any, b: Any) -> bool:
    return not _le(a, b)


def _ge(a: Any, b: Any) -> bool:
    return not _lt(a, b)


def _printf(fmt: Any, *args: Any) -> str:
    return sprintf(want_str(fmt), list(args))


def _eval_args(args: tuple[Any, ...]) -> str:
    if len(args) == 1 and isinstance(args[0], str):
        return args[0]
    return sprint(list(args))


def _html_escape(*args: Any) -> str:
    import html

    s = _eval_args(args).replace("\0", "\ufffd")
    return html.escape(s, quote=False).replace('"', "&#34;").replace("'", "&#39;")


_JS_ESC = {"\\": "\\\\", "'": "\\'", '"': '\\"', "<": "\\u003C", ">": "\\u003E"}
_JS_ESC.update({"&": "\\u0026", "=": "\\u003D", "`": "\\u0060"})


def _js_escape(*args: Any) -> str:
    out = []
    for c in _eval_args(args):
        if c in _JS_ESC:
            out.append(_JS_ESC[c])
        elif ord(c) < 0x20 or not c.isprintable():
            out.append(f"\\u{ord(c):04X}")
        else:
            out.append(c)
    return "".join(out)


def _urlquery(*args: Any) -> str:
    from urllib.parse import quote_plus

    return quote_plus(_eval_args(args), safe="-_.~")


def _call(fn: Any, *args: Any) -> Any:
    if not callable(fn):
        raise FuncError(f"non-function of type {go_type(fn)}")
    return fn(*args)


BUILTINS: dict[str, Func] = {
    "and": Func(lambda *a: a[-1], 1, None),
    "or": Func(lambda *a: a[-1], 1, None),
    "not": Func(_not, 1, 1),
    "len": Func(_len, 1, 1),
    "index": Func(_index, 1, None),
    "slice": Func(_slice, 1, None),
    "eq": Func(_eq, 1, None),
    "ne": Func(_ne, 2, 2),
    "lt": Func(_lt, 2, 2),
    "le": Func(_le, 2, 2),
    "gt": Func(_gt, 2, 2),
    "ge": Func(_ge, 2, 2),
    "print": Func(lambda *a: sprint(list(a)), 0, None),
    "printf": Func(_printf, 1, None),
    "println": Func(lambda *a: sprintln(list(a)), 0, None),
    "html": Func(_html_escape, 0, None),
    "js": Func(_js_escape, 0, None),
    "urlquery": Func(_urlquery, 0, None),
    "call": Func(_call, 1, None),
}


# -- Docker's functions -------------------------------------------------------------------------
def _json(v: Any) -> str:
    try:
        return json_encode(v, escape_html=False)
    except ValueError:
        return ""  # Docker ignores the encoder's error and prints nothing


def _split(s: Any, sep: Any) -> list[str]:
    s, sep = want_str(s), want_str(sep)
    return list(s) if sep == "" else s.split(sep)


def _join(elems: Any, sep: Any) -> str:
    glue = want_str(sep)
    if not isinstance(elems, list | tuple) or not all(isinstance(e, str) for e in elems):
        raise ArgError(f"wrong type for value; expected []string; got {go_type(elems)}")
    return glue.join(elems)


def _title(s: Any) -> str:
    """strings.Title: upper-case the first letter of each word."""
    out, prev = [], " "
    for c in want_str(s):
        sep = not (prev.isalnum() or prev == "_") if prev.isascii() else prev.isspace()
        out.append(c.upper() if sep and len(c.upper()) == 1 else c)
        prev = c
    return "".join(out)


def _case(s: Any, upper: bool) -> str:
    out = []
    for c in want_str(s):
        m = c.upper() if upper else c.lower()
        out.append(m if len(m) == 1 else c)
    return "".join(out)


def _pad(s: Any, prefix: Any, suffix: Any) -> str:
    text, before, after = want_str(s), want_int(prefix), want_int(suffix)
    if text == "":
        return text
    return " " * before + text + " " * after


def _truncate(s: Any, length: Any) -> str:
    text, size = want_str(s), want_int(length)
    if size < 0:
        raise FuncError(f"runtime error: slice bounds out of range [:{size}]")
    return text if len(text) < size else text[:size]


DOCKER_FUNCS: dict[str, Func] = {
    "json": Func(_json, 1, 1),
    "split": Func(_split, 2, 2),
    "join": Func(_join, 2, 2),
    "title": Func(_title, 1, 1),
    "lower": Func(lambda s: _case(s, False), 1, 1),
    "upper": Func(lambda s: _case(s, True), 1, 1),
    "pad": Func(_pad, 3, 3),
    "truncate": Func(_truncate, 2, 2),
}


def _header_identity(v: Any, *_: Any) -> Any:
    return v


HEADER_FUNCS: dict[str, Func] = {
    name: Func(_header_identity, f.min_args, f.max_args)
    for name, f in DOCKER_FUNCS.items()
    if name != "pad"  # Docker keeps `pad` so the header lines up with padded cells
}


def func_from_callable(fn: Callable[..., Any]) -> Func:
    """Wrap a caller-supplied Python function, taking its arity from its signature."""
    import inspect

    params = inspect.signature(fn).parameters.values()
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    required = [p for p in positional if p.default is p.empty]
    variadic = any(p.kind is p.VAR_POSITIONAL for p in params)
    return Func(fn, len(required), None if variadic else len(positional))
