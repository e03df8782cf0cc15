"""Go's string quoting (strconv.Quote, QuoteToASCII, QuoteRune), pure (layer L0).

Docker and BuildKit print names and commands through Go's `%q`/strconv.Quote; everything that
must print the same (template `printf "%q"`, `ps` COMMAND, reference errors, the Dockerfile parse
dump) quotes through `go_quote`.
"""

from __future__ import annotations

_QUOTE_ESC = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
_QUOTE_ESC["\v"] = "\\v"


def go_quote(s: str, quote: str = '"', ascii_only: bool = False) -> str:
    """strconv.Quote (or QuoteToASCII, or QuoteRune with quote="'")."""
    out = [quote]
    for c in s:
        if c == quote or c == "\\":
            out.append("\\" + c)
        elif c.isprintable() and not (ascii_only and ord(c) > 0x7E):
            out.append(c)
        elif c in _QUOTE_ESC:
            out.append(_QUOTE_ESC[c])
        elif ord(c) < 0x20 or ord(c) == 0x7F:
            out.append(f"\\x{ord(c):02x}")
        elif ord(c) < 0x10000:
            out.append(f"\\u{ord(c):04x}")
        else:
            out.append(f"\\U{ord(c):08x}")
    out.append(quote)
    return "".join(out)
