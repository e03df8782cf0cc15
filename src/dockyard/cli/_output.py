"""Shared output helpers of the CLI: tables, `--format` templates, JSON, confirmations.

Every command's `--format` goes through `dockyard.gotemplate`, so `table`, `json` and Go
template rules are the same everywhere, as in Docker's CLI.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping
from typing import IO, Any


def print_rows(
    out: IO[str],
    fmt: str | None,
    rows: Iterable[Mapping[str, Any]],
    default_table: str,
    headers: Mapping[str, str],
) -> None:
    from dockyard.gotemplate import format_rows

    text = format_rows(fmt, list(rows), default_table, headers)
    out.write(text)


def print_json(out: IO[str], objs: list[Any]) -> None:
    """`inspect` output: a JSON array indented by 4 spaces, as Docker prints it."""
    out.write(json.dumps(objs, indent=4, ensure_ascii=False) + "\n")


def print_template(out: IO[str], fmt: str, objs: Iterable[Any]) -> None:
    from dockyard.gotemplate import render

    for obj in objs:
        out.write(render(fmt, obj) + "\n")


def confirm(question: str, out: IO[str], inp: IO[str] | None = None) -> bool:
    out.write(f"{question} [y/N] ")
    out.flush()
    line = (inp or sys.stdin).readline()
    return line.strip().lower() in ("y", "yes")


def parse_filters(values: list[str] | None) -> dict[str, list[str]]:
    from dockyard.errors import InvalidArgument

    out: dict[str, list[str]] = {}
    for v in values or []:
        k, sep, val = v.partition("=")
        if not sep:
            raise InvalidArgument("bad format of filter (expected name=value)")
        out.setdefault(k.strip().lower(), []).append(val.strip())
    return out
