"""Go's encoding/json for template values (layer L0), as Docker's `json` function uses it.

Compact output, map keys sorted, floats formatted as Go does (exponent form below 1e-6 and from
1e21 on), strings escaped as Go does (U+2028/U+2029 always; `<`, `>`, `&` only with
`escape_html`, which Docker's `json` function turns off). Objects encode through `to_dict()` when
they have one, else their public fields (dataclass order). NaN and infinities raise ValueError.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from dockyard.gotemplate.gofmt import (
    MISSING,
    NIL_POINTER,
    fmt_e,
    fmt_f,
    format_float,
    is_stringer,
    shortest_digits,
    struct_fields,
)


def _json_float(x: float) -> str:
    if math.isnan(x) or math.isinf(x):
        raise ValueError(f"json: unsupported value: {format_float(x)}")
    if x == 0:
        return "-0" if math.copysign(1.0, x) < 0 else "0"
    ds, dp = shortest_digits(x)
    sign = "-" if x < 0 else ""
    if abs(x) < 1e-6 or abs(x) >= 1e21:
        text = fmt_e(ds, dp)
        mant, exp = text.split("e")
        text = mant + "e" + exp[0] + exp[1:].lstrip("0").rjust(1, "0")
        return sign + text
    return sign + fmt_f(ds, dp)


def json_string(s: str, escape_html: bool = False) -> str:
    out = ['"']
    for c in s:
        o = ord(c)
        if c == '"' or c == "\\":
            out.append("\\" + c)
        elif c in "\b\f\n\r\t":
            out.append({"\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}[c])
        elif o < 0x20 or (escape_html and c in "<>&") or o in (0x2028, 0x2029):
            out.append(f"\\u{o:04x}")
        elif 0xD800 <= o < 0xE000:
            out.append("\ufffd")
        else:
            out.append(c)
    out.append('"')
    return "".join(out)


def json_encode(v: Any, escape_html: bool = False) -> str:
    """encoding/json Marshal (compact, map keys sorted); ValueError for NaN/Inf."""
    if v is None or v is MISSING or v is NIL_POINTER:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return _json_float(v)
    if isinstance(v, str):
        return json_string(v, escape_html)
    if isinstance(v, bytes):
        import base64

        return '"' + base64.b64encode(v).decode() + '"'
    if isinstance(v, list | tuple):
        return "[" + ",".join(json_encode(e, escape_html) for e in v) + "]"
    if isinstance(v, Mapping):
        keys = sorted(v, key=lambda k: str(k))
        return (
            "{"
            + ",".join(
                json_string(str(k), escape_html) + ":" + json_encode(v[k], escape_html)
                for k in keys
            )
            + "}"
        )
    to_dict = getattr(v, "to_dict", None)
    if callable(to_dict):
        return json_encode(to_dict(), escape_html)
    fields = struct_fields(v)
    if not fields and is_stringer(v):
        return json_string(str(v), escape_html)
    return (
        "{"
        + ",".join(
            json_string(k, escape_html) + ":" + json_encode(f, escape_html) for k, f in fields
        )
        + "}"
    )
