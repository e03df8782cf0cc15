"""Build progress reporting (layer L4): BuildKit's `--progress=plain` text, or nothing.

The executor reports through a `Progress`: `vertex(name)` opens a numbered step (`#N name`),
then `cached`, `log` (one output line, stamped with seconds since the step began), `done` or
`error`. `Plain` writes BuildKit's plain layout to a text stream; `Quiet` drops everything.

Invariants: every vertex is closed exactly once (CACHED, DONE or ERROR); log lines never carry
a trailing newline of their own; output is flushed at each vertex boundary.
"""

from __future__ import annotations

import time
from typing import IO


class Progress:
    """No-op reporter (quiet mode); `Plain` overrides the writing."""

    def __init__(self) -> None:
        self._n = 0
        self._start: dict[int, float] = {}

    def vertex(self, name: str) -> int:
        self._n += 1
        self._start[self._n] = time.monotonic()
        self.write(f"#{self._n} {name}\n")
        return self._n

    def elapsed(self, v: int) -> float:
        return time.monotonic() - self._start.get(v, time.monotonic())

    def cached(self, v: int) -> None:
        self.write(f"#{v} CACHED\n\n", flush=True)

    def log(self, v: int, line: str) -> None:
        self.write(f"#{v} {self.elapsed(v):.3f} {line}\n")

    def note(self, v: int, text: str) -> None:
        self.write(f"#{v} {text}\n")

    def done(self, v: int) -> None:
        self.write(f"#{v} DONE {self.elapsed(v):.1f}s\n\n", flush=True)

    def error(self, v: int, message: str) -> None:
        self.write(f"#{v} ERROR: {message}\n", flush=True)

    def write(self, text: str, flush: bool = False) -> None:
        pass


class Plain(Progress):
    def __init__(self, out: IO[str]) -> None:
        super().__init__()
        self.out = out

    def write(self, text: str, flush: bool = False) -> None:
        self.out.write(text)
        if flush:
            self.out.flush()


class Quiet(Progress):
    pass
