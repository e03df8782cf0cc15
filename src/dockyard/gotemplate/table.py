"""Docker's `--format` output modes and its column alignment (layer L0).

`tabwrite_text` is Go's text/tabwriter elastic-tabstop algorithm as the Docker CLI configures it
(its fork in cli/command/formatter/tabwriter: minwidth 10, tabwidth 1, padding 3, padchar ' ',
flags 0, cell width counted in terminal columns). Cells are tab-terminated: the text after a
line's last tab is not part of a column and is never padded.

`format_rows` applies the Docker CLI's formatter.Context rules: an empty format or "table" means
the command's default table; "json" prints `{{json .}}` per row; "table ..." renders a header row
(the template run over the header names) and aligns everything; anything else is a plain template
printed once per row with a newline. Literal `\\t` and `\\n` in the format become tab/newline.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Mapping
from typing import Any

MINWIDTH, TABWIDTH, PADDING = 10, 1, 3


def cell_width(text: str) -> int:
    """Terminal columns of a cell, as go-runewidth counts them (East Asian wide = 2)."""
    width = 0
    for c in text:
        if unicodedata.combining(c) or unicodedata.category(c) in ("Mn", "Me", "Cf", "Cc"):
            continue
        width += 2 if unicodedata.east_asian_width(c) in ("W", "F") else 1
    return width


def _format(
    lines: list[list[str]], widths: list[int], line0: int, line1: int, out: list[str], opts: _Opts
) -> None:
    column = len(widths)
    this = line0
    while this < line1:
        if column >= len(lines[this]) - 1:
            this += 1
            continue
        _write_lines(lines, widths, line0, this, out)
        line0 = this
        width = opts.minwidth
        while this < line1 and column < len(lines[this]) - 1:
            width = max(width, cell_width(lines[this][column]) + opts.padding)
            this += 1
        widths.append(width)
        _format(lines, widths, line0, this, out, opts)
        widths.pop()
        line0 = this
    _write_lines(lines, widths, line0, line1, out)


def _write_lines(
    lines: list[list[str]], widths: list[int], line0: int, line1: int, out: list[str]
) -> None:
    for i in range(line0, line1):
        for j, cell in enumerate(lines[i]):
            out.append(cell)
            if j < len(widths):
                out.append(" " * (widths[j] - cell_width(cell)))
        out.append("\n")


class _Opts:
    def __init__(self, minwidth: int, padding: int) -> None:
        self.minwidth = minwidth
        self.padding = padding


def tabwrite_text(text: str, minwidth: int = MINWIDTH, padding: int = PADDING) -> str:
    """Align tab-terminated cells of `text` (all of it, as one Flush) the way Docker does."""
    raw_lines = text.replace("\f", "\n").replace("\v", "\t").split("\n")
    last = raw_lines[-1]  # text after the final newline: an unterminated line
    lines = [line.split("\t") for line in raw_lines[:-1]]
    lines.append(last.split("\t") if last else [])
    out: list[str] = []
    _format(lines, [], 0, len(lines), out, _Opts(minwidth, padding))
    return "".join(out)[:-1]  # the unterminated last line gets no newline


def tabwrite(rows: Iterable[Iterable[str]], minwidth: int = MINWIDTH) -> str:
    """Docker's aligned table: cells joined by tabs, one line per row (each ends with "\\n")."""
    return tabwrite_text("".join("\t".join(row) + "\n" for row in rows), minwidth)


class HeaderContext:
    """What a table header template runs over: every field is its column name.

    `.ID` gives headers["ID"], or the field name in upper case when the caller gave none; a field
    called with arguments (`.Label "x"`) gives the same, so any row template renders a header.
    """

    def __init__(self, headers: Mapping[str, str]) -> None:
        self._headers = headers

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        header = self._headers.get(name, name.upper())
        return _HeaderField(header)

    def __str__(self) -> str:
        return ""


class _HeaderField:
    def __init__(self, header: str) -> None:
        self.header = header

    def __call__(self, *_: Any) -> str:
        return self.header


def _final_format(fmt: str) -> tuple[str, bool]:
    if fmt == "json":
        text, is_table = "{{json .}}", False
    elif fmt.startswith("table"):
        text, is_table = fmt[len("table") :], True
    else:
        text, is_table = fmt, False
    text = text.strip(" ").replace("\\t", "\t").replace("\\n", "\n")
    return text, is_table


def format_rows(
    fmt: str | None,
    rows: Iterable[Any],
    default_table: str,
    headers: Mapping[str, str] | None = None,
) -> str:
    """Render `rows` for a `--format` value as the Docker CLI does; raises InvalidArgument."""
    from dockyard.gotemplate import HEADER_FUNCS, Template

    if not fmt or fmt == "table":
        fmt = default_table if default_table.startswith("table") else "table " + default_table
    text, is_table = _final_format(fmt)
    tmpl = Template.parse(text)
    body = "".join(tmpl.execute(row) + "\n" for row in rows)
    if not is_table:
        return body
    header = tmpl.with_funcs(HEADER_FUNCS).execute_partial(HeaderContext(headers or {}))
    return tabwrite_text(header + "\n" + body)
