"""The typed instruction model of the Dockerfile frontend (layer L4, pure data).

One frozen dataclass per instruction, as `instructions.typed` produces them (validated and, in a
plan, fully expanded), plus `Loc` (where an instruction came from) and `Expander` (the word
expansion functions handed to `typed`). Durations are nanoseconds, as image configs store them.

Invariants: instances are immutable; every instruction carries its `Loc`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from dockyard.build.flags import Mount
from dockyard.build.parser import Heredoc


@dataclass(frozen=True)
class Loc:
    file: str
    line: int
    end_line: int
    original: str


@dataclass(frozen=True)
class Expander:
    """Word expansion for one instruction: `word`, `words`, and heredoc bodies (raw quotes)."""

    word: Callable[[str], str]
    words: Callable[[str], list[str]]
    heredoc: Callable[[str], str]


def _identity(s: str) -> str:
    return s


NO_EXPAND = Expander(_identity, lambda s: s.split(), _identity)


@dataclass(frozen=True)
class From:
    loc: Loc
    image: str
    name: str = ""
    platform: str = ""


@dataclass(frozen=True)
class Arg:
    loc: Loc
    args: tuple[tuple[str, str | None], ...]


@dataclass(frozen=True)
class Env:
    loc: Loc
    pairs: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Label:
    loc: Loc
    pairs: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Run:
    """`command` is the exec argv, or `(script,)` when `shell_form` (run through SHELL).
    With heredocs, `script` still holds the `<<NAME` words: a script that is only `<<NAME`
    runs the heredoc body as the script; otherwise bodies feed the named fds (`Heredoc.fd`)."""

    loc: Loc
    command: tuple[str, ...]
    shell_form: bool
    heredocs: tuple[Heredoc, ...] = ()
    mounts: tuple[Mount, ...] = ()
    network: str = "default"
    security: str = "sandbox"


@dataclass(frozen=True)
class Copy:
    """COPY (`add=False`) and ADD. Heredoc sources are named by `heredocs` (bodies expanded)."""

    loc: Loc
    sources: tuple[str, ...]
    dest: str
    add: bool = False
    from_: str = ""
    chown: str = ""
    chmod: str = ""
    link: bool = False
    parents: bool = False
    exclude: tuple[str, ...] = ()
    checksum: str = ""
    keep_git_dir: bool = False
    heredocs: tuple[Heredoc, ...] = ()


@dataclass(frozen=True)
class Workdir:
    loc: Loc
    path: str


@dataclass(frozen=True)
class User:
    loc: Loc
    user: str


@dataclass(frozen=True)
class Expose:
    loc: Loc
    ports: tuple[str, ...]


@dataclass(frozen=True)
class Volume:
    loc: Loc
    paths: tuple[str, ...]


@dataclass(frozen=True)
class Cmd:
    loc: Loc
    command: tuple[str, ...]
    shell_form: bool


@dataclass(frozen=True)
class Entrypoint:
    loc: Loc
    command: tuple[str, ...]
    shell_form: bool


@dataclass(frozen=True)
class Shell:
    loc: Loc
    shell: tuple[str, ...]


@dataclass(frozen=True)
class StopSignal:
    loc: Loc
    signal: str


@dataclass(frozen=True)
class Healthcheck:
    """`test` as the image config stores it: ("NONE",), ("CMD", …) or ("CMD-SHELL", cmd)."""

    loc: Loc
    test: tuple[str, ...]
    interval: int = 0
    timeout: int = 0
    start_period: int = 0
    start_interval: int = 0
    retries: int = 0


@dataclass(frozen=True)
class Onbuild:
    loc: Loc
    trigger: str


@dataclass(frozen=True)
class Maintainer:
    loc: Loc
    name: str


Instruction = (
    From
    | Arg
    | Env
    | Label
    | Run
    | Copy
    | Workdir
    | User
    | Expose
    | Volume
    | Cmd
    | Entrypoint
    | Shell
    | StopSignal
    | Healthcheck
    | Onbuild
    | Maintainer
)
