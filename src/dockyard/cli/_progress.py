"""A Docker-like printer of pull/push progress events (CLI helper).

On a terminal every layer owns one line, redrawn in place with ANSI cursor moves
(`<id>: Downloading [=====>     ]  1.2MB/3.4MB`), as the docker CLI draws it. Elsewhere each
status change prints one plain line, and byte-progress events (Downloading, Pushing,
Extracting) print nothing, as Docker does when its output is not a terminal.

Invariants: events may arrive from several threads; a lock serialises all writes, so lines
never interleave. Only status changes are printed in plain mode (no repeated lines).
"""

from __future__ import annotations

import threading
from typing import IO

from dockyard.registry import progress as pg
from dockyard.units import human_size

BAR_WIDTH = 50
_BYTE_PROGRESS = frozenset({pg.DOWNLOADING, pg.PUSHING, pg.EXTRACTING})


def progress_bar(current: int, total: int) -> str:
    """Docker's `[====>   ]  1.2MB/3.4MB` (just the numbers when the total is unknown)."""
    if total <= 0:
        return human_size(current)
    filled = max(0, min(BAR_WIDTH, BAR_WIDTH * current // total))
    bar = "=" * filled + ">" + " " * (BAR_WIDTH - filled)
    return f"[{bar}] {human_size(current):>8}/{human_size(total)}"


def event_text(ev: pg.ProgressEvent) -> str:
    if ev.status == pg.MOUNTED_FROM and ev.detail:
        return f"{ev.id}: Mounted from {ev.detail}"
    if ev.status in _BYTE_PROGRESS and ev.total:
        return f"{ev.id}: {ev.status} {progress_bar(ev.current, ev.total)}"
    return f"{ev.id}: {ev.status}"


class ProgressPrinter:
    """Callable as a `registry.progress.Progress`; `line()` writes a line of its own."""

    def __init__(self, out: IO[str], *, tty: bool | None = None) -> None:
        self.out = out
        if tty is None:
            isatty = getattr(out, "isatty", None)
            tty = bool(isatty and isatty())
        self.tty = tty
        self._lock = threading.Lock()
        self._rows: dict[str, int] = {}  # id -> row (terminal mode)
        self._last: dict[str, str] = {}  # id -> last status (plain mode)

    def line(self, text: str) -> None:
        with self._lock:
            self.out.write(text + "\n")
            self.out.flush()
            if self.tty:
                self._rows = {}  # rows above a free line are never redrawn

    def __call__(self, ev: pg.ProgressEvent) -> None:
        with self._lock:
            if self.tty:
                self._draw(ev)
            else:
                self._plain(ev)

    def _plain(self, ev: pg.ProgressEvent) -> None:
        if ev.status in _BYTE_PROGRESS or self._last.get(ev.id) == ev.status:
            return
        self._last[ev.id] = ev.status
        self.out.write(event_text(ev) + "\n")
        self.out.flush()

    def _draw(self, ev: pg.ProgressEvent) -> None:
        text = event_text(ev)
        row = self._rows.get(ev.id)
        if row is None:
            self._rows[ev.id] = len(self._rows)
            self.out.write(f"\x1b[2K{text}\n")
        else:
            up = len(self._rows) - row
            self.out.write(f"\x1b[{up}A\r\x1b[2K{text}\r\x1b[{up}B")
        self.out.flush()
