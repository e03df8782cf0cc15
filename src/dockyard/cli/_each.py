"""Commands that act on several containers one by one (`stop a b`, `rm a b`, ...): Docker
prints each name that succeeded and an error line for each that failed, and exits 1 if any
failed."""

from __future__ import annotations

from collections.abc import Callable

from dockyard.cli import Context


def each(ctx: Context, names: list[str], fn: Callable[[str], object], echo: bool = True) -> int:
    from dockyard.errors import DockyardError

    rc = 0
    for name in names:
        try:
            fn(name)
            if echo:
                ctx.out.write(name + "\n")
        except DockyardError as e:
            ctx.out.flush()
            ctx.err.write(f"Error response from daemon: {e}\n")
            rc = 1
    return rc
