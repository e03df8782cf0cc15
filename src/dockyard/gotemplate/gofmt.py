"""Go's value printing for templates (layer L0): fmt's %v and Printf verbs and strconv.Quote,
applied to Python values.

Python values stand for Go values: str→string, bool→bool, int→int, float→float64, None→nil,
list/tuple→[]interface{}, Mapping→map[string]interface{} (printed with sorted keys, as Go's fmt
does), dataclasses and plain objects→structs (a class that defines its own `__str__` is a
fmt.Stringer). `Missing` and `NilPointer` mark Go's invalid value and typed nil pointer.

Invariant: pure functions, no I/O; output matches Go's for the types above.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from dockyard.gostr import go_quote


class Missing:
    """Go's invalid reflect.Value: a missing map key or absent data. Prints `<no value>`."""

    _instance: Missing | None = None

    def __new__(cls) -> Missing:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "<no value>"


MISSING = Missing()


class NilPointer:
    """A None read from an object attribute: Go's typed nil pointer. Prints `<nil>`."""

    _instance: NilPointer | None = None

    def __new__(cls) -> NilPointer:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "<nil>"


NIL_POINTER = NilPointer()


def go_type(v: Any) -> str:
    """The Go type name a value stands for, as error messages print it."""
    if v is None or v is MISSING or v is NIL_POINTER:
        return "<nil>"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "float64"
    if isinstance(v, str):
        return "string"
    if isinstance(v, bytes):
        return "[]uint8"
    if isinstance(v, list | tuple):
        return "[]interface {}"
    if isinstance(v, Mapping):
        return "map[string]interface {}"
    return type(v).__name__


# -- strconv ------------------------------------------------------------------------------------


def shortest_digits(x: float) -> tuple[str, int]:
    """Shortest round-trip decimal digits of abs(x), and how many of them precede the point."""
    text = repr(abs(x))
    mant, _, exp = text.partition("e")
    whole, _, frac = mant.partition(".")
    digits = (whole + frac).lstrip("0")
    if not digits:
        return "0", 1
    point = len(whole) + int(exp or 0) - (len(whole + frac) - len(digits))
    return digits.rstrip("0"), point


def fmt_e(ds: str, dp: int) -> str:
    exp = dp - 1 if ds != "0" else 0
    mant = ds[0] + ("." + ds[1:] if len(ds) > 1 else "")
    return f"{mant}e{'-' if exp < 0 else '+'}{abs(exp):02d}"


def fmt_f(ds: str, dp: int) -> str:
    if dp <= 0:
        return "0." + "0" * -dp + ds
    if dp >= len(ds):
        return ds + "0" * (dp - len(ds))
    return ds[:dp] + "." + ds[dp:]


def format_float(x: float, verb: str = "g", prec: int | None = None) -> str:
    """strconv.FormatFloat as fmt uses it: "-" for negatives only; "+Inf", "-Inf", "NaN"."""
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "+Inf" if x > 0 else "-Inf"
    sign = "-" if math.copysign(1.0, x) < 0 else ""
    lower = verb.lower()
    if prec is None and lower == "g":
        ds, dp = shortest_digits(x)
        text = fmt_e(ds, dp) if not -4 <= dp - 1 < 6 else fmt_f(ds, dp)
    else:
        text = f"{abs(x):.{6 if prec is None else prec}{lower}}"
    return sign + (text.upper() if verb in "EG" else text)


# -- %v -----------------------------------------------------------------------------------------
def is_stringer(v: Any) -> bool:
    method: object = type(v).__str__
    return method is not object.__str__


def struct_fields(v: Any) -> list[tuple[str, Any]]:
    if hasattr(type(v), "__dataclass_fields__"):
        import dataclasses  # already loaded by whoever defined the dataclass

        fields = dataclasses.fields(v)
        return [(f.name, getattr(v, f.name)) for f in fields if not f.name.startswith("_")]
    attrs = getattr(v, "__dict__", None)
    if isinstance(attrs, dict):
        return [(k, val) for k, val in attrs.items() if not k.startswith("_")]
    return []


def _sort_key(k: Any) -> tuple[int, Any]:
    if isinstance(k, bool):
        return (0, k)
    if isinstance(k, int | float):
        return (1, k)
    return (2, str(k))


def format_value(v: Any, verb: str = "v", spec: Spec | None = None) -> str:
    """fmt's rendering of one operand with a verb (no width padding of composites)."""
    spec = spec or Spec()
    if v is MISSING or v is NIL_POINTER:
        v = None
    if isinstance(v, list | tuple):
        return "[" + " ".join(format_value(e, verb, spec) for e in v) + "]"
    if isinstance(v, Mapping):
        items = sorted(v.items(), key=lambda kv: _sort_key(kv[0]))
        inner = " ".join(
            format_value(k, verb, spec) + ":" + format_value(val, verb, spec) for k, val in items
        )
        return "map[" + inner + "]"
    if isinstance(v, bytes):
        if verb in "sqxX":
            return format_value(v.decode("utf-8", "replace"), verb, spec)
        return format_value(list(v), verb, spec)
    if v is None or isinstance(v, bool | int | float | str) or is_stringer(v):
        return _format_scalar(v, verb, spec)
    fields = struct_fields(v)
    if spec.plus:
        return "{" + " ".join(f"{k}:{format_value(f, verb, spec)}" for k, f in fields) + "}"
    return "{" + " ".join(format_value(f, verb, spec) for _, f in fields) + "}"


def sprint(args: list[Any]) -> str:
    """fmt.Sprint: spaces between operands when neither side is a string."""
    out: list[str] = []
    for i, a in enumerate(args):
        if i > 0 and not isinstance(a, str) and not isinstance(args[i - 1], str):
            out.append(" ")
        out.append(format_value(a))
    return "".join(out)


def sprintln(args: list[Any]) -> str:
    return " ".join(format_value(a) for a in args) + "\n"


# -- Printf -------------------------------------------------------------------------------------
class Spec:
    """Flags, width and precision of one Printf verb."""

    __slots__ = ("minus", "plus", "prec", "sharp", "space", "width", "zero")

    def __init__(self) -> None:
        self.minus = self.plus = self.sharp = self.space = self.zero = False
        self.width: int | None = None
        self.prec: int | None = None

    def without_zero(self) -> Spec:
        copy = Spec()
        for name in self.__slots__:
            setattr(copy, name, getattr(self, name))
        copy.zero = False
        return copy


def _pad(s: str, spec: Spec, numeric: bool = False) -> str:
    if spec.width is None or len(s) >= spec.width:
        return s
    fill = spec.width - len(s)
    if spec.minus:
        return s + " " * fill
    if spec.zero:
        if numeric and s[:1] in "+- ":
            return s[0] + "0" * fill + s[1:]
        return "0" * fill + s
    return " " * fill + s


def _bad(v: Any, verb: str) -> str:
    if v is None:
        return f"%!{verb}(<nil>)"
    return f"%!{verb}({go_type(v)}={format_value(v)})"


def _sign(neg: bool, spec: Spec) -> str:
    return "-" if neg else "+" if spec.plus else " " if spec.space else ""


def _format_int(v: int, verb: str, spec: Spec) -> str:
    if verb == "c":
        return _pad(chr(v), spec)
    if verb == "q":
        return _pad(go_quote(chr(v), "'", spec.plus), spec)
    if verb == "U":
        text = f"U+{v:04X}"
        return _pad(text + (f" '{chr(v)}'" if spec.sharp else ""), spec)
    base = {"d": 10, "v": 10, "b": 2, "o": 8, "O": 8, "x": 16, "X": 16}[verb]
    digits = {2: "b", 8: "o", 10: "d", 16: "x"}[base]
    body = format(abs(v), digits)
    if verb == "X":
        body = body.upper()
    if spec.prec is not None:
        body = "" if spec.prec == 0 and v == 0 else body.rjust(spec.prec, "0")
    prefix = ""
    if verb == "O" or (spec.sharp and verb == "o" and not body.startswith("0")):
        prefix = "0o" if verb == "O" else "0"
    elif spec.sharp and verb in "xXb":
        prefix = {"x": "0x", "X": "0X", "b": "0b"}[verb]
    text = _sign(v < 0, spec) + prefix + body
    if spec.zero and spec.prec is None and not spec.minus and spec.width:
        head = len(_sign(v < 0, spec) + prefix)
        text = text[:head] + body.rjust(spec.width - head, "0")
    return _pad(text, spec)


def _format_str(s: str, verb: str, spec: Spec) -> str:
    if spec.prec is not None:
        s = s[: spec.prec]
    if verb == "q":
        if spec.sharp and "`" not in s and all(c.isprintable() or c == "\t" for c in s):
            return _pad("`" + s + "`", spec)
        return _pad(go_quote(s, ascii_only=spec.plus), spec)
    if verb in "xX":
        raw = s.encode()
        hexes = [format(b, "02x" if verb == "x" else "02X") for b in raw]
        pre = ("0x" if verb == "x" else "0X") if spec.sharp else ""
        text = " ".join(pre + h for h in hexes) if spec.space else pre + "".join(hexes)
        return _pad(text, spec)
    return _pad(s, spec)


def _format_scalar(v: Any, verb: str, spec: Spec) -> str:
    if v is None:
        return _pad("<nil>", spec) if verb == "v" else _bad(v, verb)
    if isinstance(v, bool):
        return _pad("true" if v else "false", spec) if verb in "vt" else _bad(v, verb)
    if isinstance(v, int):
        return _format_int(v, verb, spec) if verb in "vdbocqxXUO" else _bad(v, verb)
    if isinstance(v, float):
        if verb not in "veEfFgG":
            return _bad(v, verb)
        text = format_float(v, "g" if verb == "v" else verb, spec.prec)
        if text == "NaN" or text[1:] == "Inf":
            if text == "NaN" and (spec.plus or spec.space):
                text = _sign(False, spec) + text
            return _pad(text, spec.without_zero())
        if text[0] != "-":
            text = _sign(False, spec) + text
        return _pad(text, spec, numeric=True)
    if isinstance(v, str):
        return _format_str(v, verb, spec) if verb in "vsqxX" else _bad(v, verb)
    if verb in "vsqxX":
        return _format_str(str(v), verb, spec)
    return _bad(v, verb)


class _Printf:
    """One Sprintf call: a cursor over the format and over the arguments."""

    def __init__(self, fmt: str, args: list[Any]) -> None:
        self.fmt, self.args = fmt, args
        self.i = 0
        self.argi = 0
        self.reordered = False
        self.out: list[str] = []

    def peek(self, chars: str) -> bool:
        return self.i < len(self.fmt) and self.fmt[self.i] in chars

    def digits(self) -> int | None:
        start = self.i
        while self.peek("0123456789"):
            self.i += 1
        return int(self.fmt[start : self.i]) if self.i > start else None

    def arg_index(self) -> bool:
        """An explicit `[n]` argument index; False when it is malformed."""
        if not self.peek("["):
            return True
        end = self.fmt.find("]", self.i)
        text = self.fmt[self.i + 1 : end] if end > 0 else ""
        self.reordered = True
        if not text.isdigit() or not 1 <= int(text) <= len(self.args):
            self.i = end + 1 if end > 0 else len(self.fmt)
            return False
        self.i, self.argi = end + 1, int(text) - 1
        return True

    def star(self, what: str) -> int | None:
        value = self.args[self.argi] if self.argi < len(self.args) else None
        self.argi += 1
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        self.out.append(f"%!(BAD{what})")
        return None

    def spec(self) -> tuple[Spec, bool]:
        spec = Spec()
        while self.peek("+-# 0"):
            c = self.fmt[self.i]
            spec.plus |= c == "+"
            spec.minus |= c == "-"
            spec.sharp |= c == "#"
            spec.space |= c == " "
            spec.zero |= c == "0"
            self.i += 1
        good = self.arg_index()
        if self.peek("*"):
            self.i += 1
            width = self.star("WIDTH")
            if width is not None:
                spec.width, spec.minus = abs(width), spec.minus or width < 0
            good = self.arg_index() and good
        else:
            spec.width = self.digits()
        if self.peek("."):
            self.i += 1
            good = self.arg_index() and good
            if self.peek("*"):
                self.i += 1
                prec = self.star("PREC")
                spec.prec = prec if prec is not None and prec >= 0 else None
                good = self.arg_index() and good
            else:
                spec.prec = self.digits() or 0
        return spec, self.arg_index() and good

    def verb(self) -> None:
        spec, good = self.spec()
        if self.i >= len(self.fmt):
            self.out.append("%!(NOVERB)")
            return
        verb = self.fmt[self.i]
        self.i += 1
        if verb == "%":
            self.out.append("%")
        elif not good:
            self.out.append(f"%!{verb}(BADINDEX)")
        elif self.argi >= len(self.args):
            self.out.append(f"%!{verb}(MISSING)")
        else:
            arg = self.args[self.argi]
            self.argi += 1
            text = _pad(go_type(arg), spec) if verb == "T" else format_value(arg, verb, spec)
            self.out.append(text)

    def run(self) -> str:
        while self.i < len(self.fmt):
            j = self.fmt.find("%", self.i)
            if j < 0:
                self.out.append(self.fmt[self.i :])
                break
            self.out.append(self.fmt[self.i : j])
            self.i = j + 1
            self.verb()
        if not self.reordered and self.argi < len(self.args):
            extra = ", ".join(
                "<nil>" if a is None else f"{go_type(a)}={format_value(a)}"
                for a in self.args[self.argi :]
            )
            self.out.append(f"%!(EXTRA {extra})")
        return "".join(self.out)


def sprintf(fmt: str, args: list[Any]) -> str:
    """fmt.Sprintf for the verbs templates use, with Go's %!verb(type=value) error forms."""
    return _Printf(fmt, args).run()
