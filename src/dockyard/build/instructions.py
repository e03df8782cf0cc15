"""The typed instruction model: raw instructions → validated, expanded dataclasses (layer L4).

`typed(raw, ex)` converts one `RawInstruction` into its dataclass, validating flags and argument
counts with BuildKit's messages and expanding the words of the instructions BuildKit expands
(ADD COPY ENV EXPOSE FROM LABEL STOPSIGNAL USER VOLUME WORKDIR ARG; flags of RUN; never the
commands of RUN/CMD/ENTRYPOINT/SHELL/HEALTHCHECK, never ONBUILD triggers). `ex=None` validates
without expanding. Errors are `DockerfileError` with FILE:LINE of the instruction.

The dataclasses themselves live in `model`.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from dockyard.build.chmod import parse_chmod
from dockyard.build.flags import (
    FlagKind,
    flag_bool,
    flag_list,
    flag_str,
    parse_duration,
    parse_flags,
    parse_mount,
)
from dockyard.build.model import (
    NO_EXPAND,
    Arg,
    Cmd,
    Copy,
    Entrypoint,
    Env,
    Expander,
    Expose,
    From,
    Healthcheck,
    Instruction,
    Label,
    Loc,
    Maintainer,
    Onbuild,
    Run,
    Shell,
    StopSignal,
    User,
    Volume,
    Workdir,
)
from dockyard.build.parser import DockerfileError, Heredoc, RawInstruction
from dockyard.digest import Digest
from dockyard.errors import InvalidArgument

_GIT_CHECKSUM = re.compile(r"^[0-9a-f]{7,64}$")
_FLAGS: dict[str, dict[str, FlagKind]] = {
    "FROM": {"platform": "str"},
    "RUN": {"mount": "list", "network": "str", "security": "str"},
    "COPY": {
        "from": "str",
        "chown": "str",
        "chmod": "str",
        "link": "bool",
        "parents": "bool",
        "exclude": "list",
    },
    "ADD": {
        "chown": "str",
        "chmod": "str",
        "link": "bool",
        "parents": "bool",
        "exclude": "list",
        "checksum": "str",
        "keep-git-dir": "bool",
    },
    "HEALTHCHECK": {
        "interval": "str",
        "timeout": "str",
        "start-period": "str",
        "start-interval": "str",
        "retries": "str",
    },
}


def typed(raw: RawInstruction, ex: Expander | None = None, file: str = "Dockerfile") -> Instruction:
    """Validate and (with `ex`) expand one raw instruction. Raises `DockerfileError`."""
    loc = Loc(file, raw.line, raw.end_line, raw.original)
    try:
        return _BUILDERS[raw.keyword](raw, loc, ex or NO_EXPAND)
    except DockerfileError:
        raise
    except InvalidArgument as e:
        raise DockerfileError(e.message, file=file, line=raw.line) from None
    except KeyError:
        raise DockerfileError(
            f"unknown instruction: {raw.keyword}", file=file, line=raw.line
        ) from None


def _flags(raw: RawInstruction, ex: Expander) -> dict[str, str | bool | list[str]]:
    parsed = parse_flags(raw.flags, _FLAGS.get(raw.keyword, {}))
    out: dict[str, str | bool | list[str]] = {}
    for k, v in parsed.items():
        if isinstance(v, str):
            out[k] = ex.word(v)
        elif isinstance(v, list):
            out[k] = [ex.word(x) for x in v]
        else:
            out[k] = v
    return out


def _need(raw: RawInstruction, n: int = 1) -> None:
    if len(raw.args) < n or (n == 1 and not any(raw.args)):
        name = raw.keyword
        if n == 1:
            raise InvalidArgument(f"{name} requires at least one argument")
        raise InvalidArgument(f"{name} requires at least two arguments")


def _from(raw: RawInstruction, loc: Loc, ex: Expander) -> From:
    f = _flags(raw, ex)
    args = raw.args
    if len(args) not in (1, 3) or (len(args) == 3 and args[1].lower() != "as"):
        raise InvalidArgument("FROM requires either one or three arguments")
    name = ""
    if len(args) == 3:
        name = ex.word(args[2]).lower()
        if not name or not (name[0].isalpha() and all(c.isalnum() or c in "-_." for c in name)):
            raise InvalidArgument(
                f"invalid name for build stage: {args[2]!r}, name can't start with a number "
                "or contain symbols"
            )
    image = ex.word(args[0])
    if not image:
        raise InvalidArgument("base name (" + args[0] + ") should not be blank")
    return From(loc, image, name, flag_str(f, "platform"))


def _arg(raw: RawInstruction, loc: Loc, ex: Expander) -> Arg:
    _need(raw)
    out: list[tuple[str, str | None]] = []
    for a in raw.args:
        name, eq, value = a.partition("=")
        if not name:
            raise InvalidArgument(f"invalid ARG {a!r}: empty name")
        out.append((name, ex.word(value) if eq else None))
    return Arg(loc, tuple(out))


def _pairs(raw: RawInstruction, ex: Expander) -> tuple[tuple[str, str], ...]:
    if not raw.args or len(raw.args) % 2:
        raise InvalidArgument(f"{raw.keyword} requires at least one argument")
    out = []
    for i in range(0, len(raw.args), 2):
        key = ex.word(raw.args[i])
        if not key:
            raise InvalidArgument(f"{raw.keyword} names can not be blank")
        out.append((key, ex.word(raw.args[i + 1])))
    return tuple(out)


def _env(raw: RawInstruction, loc: Loc, ex: Expander) -> Env:
    return Env(loc, _pairs(raw, ex))


def _label(raw: RawInstruction, loc: Loc, ex: Expander) -> Label:
    return Label(loc, _pairs(raw, ex))


def _run(raw: RawInstruction, loc: Loc, ex: Expander) -> Run:
    f = _flags(raw, ex)
    if not raw.json:
        _need(raw)
    mounts = tuple(parse_mount(m) for m in flag_list(f, "mount"))
    network = flag_str(f, "network", "default")
    if network not in ("default", "none", "host"):
        raise InvalidArgument(f"unsupported network mode {network!r}")
    security = flag_str(f, "security", "sandbox")
    if security not in ("sandbox", "insecure"):
        raise InvalidArgument(f"unsupported security mode {security!r}")
    cmd = raw.args if raw.json else (" ".join(raw.args),)
    return Run(loc, cmd, not raw.json, raw.heredocs, mounts, network, security)


def _is_url(s: str) -> bool:
    return s.startswith(("http://", "https://"))


def _is_git(s: str) -> bool:
    from dockyard.build.gitsource import parse_git_ref

    return parse_git_ref(s) is not None


def _copy(raw: RawInstruction, loc: Loc, ex: Expander) -> Copy:
    add = raw.keyword == "ADD"
    f = _flags(raw, ex)
    if len(raw.args) < 2:
        raise InvalidArgument(
            f"{raw.keyword} requires at least two arguments, but only one "
            "was provided. Destination could not be determined"
        )
    docs = {h.name: h for h in raw.heredocs}
    sources: list[str] = []
    heredocs: list[Heredoc] = []
    for word in raw.args[:-1]:
        name = _heredoc_name(word) if not raw.json else None
        if name is not None and name in docs:
            h = docs[name]
            if h.expand:
                h = Heredoc(h.name, ex.heredoc(h.content), h.fd, h.expand, h.chomp)
            heredocs.append(h)
            sources.append(h.name)
        else:
            sources.append(ex.word(word))
    dest = ex.word(raw.args[-1])
    chmod = flag_str(f, "chmod")
    parse_chmod(chmod)
    git = [s for s in sources if s not in docs and _is_git(s)]
    if git and not add:
        raise InvalidArgument(f"source can't be a git ref for COPY: {git[0]}")
    checksum = flag_str(f, "checksum")
    if checksum:
        if not all(_is_url(s) or _is_git(s) for s in sources):
            raise InvalidArgument("checksum can't be specified for non-HTTP(S) sources")
        if git and not _GIT_CHECKSUM.match(checksum):
            raise InvalidArgument(f"invalid checksum {checksum!r} for a git source: expected "
                                  "a commit hash")  # fmt: skip
        if not git:
            Digest.parse(checksum)
    from_ = flag_str(f, "from")
    if add and from_:
        raise InvalidArgument("unknown flag: from")
    return Copy(
        loc,
        tuple(sources),
        dest,
        add,
        from_,
        flag_str(f, "chown"),
        chmod,
        flag_bool(f, "link"),
        flag_bool(f, "parents"),
        tuple(flag_list(f, "exclude")),
        checksum,
        flag_bool(f, "keep-git-dir"),
        tuple(heredocs),
    )


def _heredoc_name(word: str) -> str | None:
    if not word.startswith("<<"):
        return None
    name = word[2:].lstrip("-")
    return name.strip("'\"") or None


def _one(raw: RawInstruction, ex: Expander) -> str:
    _need(raw)
    return ex.word(" ".join(raw.args))


def _workdir(raw: RawInstruction, loc: Loc, ex: Expander) -> Workdir:
    return Workdir(loc, _one(raw, ex))


def _user(raw: RawInstruction, loc: Loc, ex: Expander) -> User:
    return User(loc, _one(raw, ex))


def _stopsignal(raw: RawInstruction, loc: Loc, ex: Expander) -> StopSignal:
    return StopSignal(loc, _one(raw, ex))


def _expose(raw: RawInstruction, loc: Loc, ex: Expander) -> Expose:
    _need(raw)
    ports = tuple(p for a in raw.args for p in ex.words(a))
    for p in ports:
        num, _, proto = p.partition("/")
        if proto and proto.lower() not in ("tcp", "udp", "sctp"):
            raise InvalidArgument(f"invalid proto: {proto}")
        lo, _, hi = num.partition("-")
        if not lo.isdigit() or (hi and not hi.isdigit()):
            raise InvalidArgument(f"invalid containerPort: {num}")
    return Expose(loc, ports)


def _volume(raw: RawInstruction, loc: Loc, ex: Expander) -> Volume:
    _need(raw)
    paths = tuple(ex.word(a) for a in raw.args)
    if any(not p.strip() for p in paths):
        raise InvalidArgument("VOLUME specified can not be an empty string")
    return Volume(loc, paths)


def _cmd_args(raw: RawInstruction) -> tuple[tuple[str, ...], bool]:
    if raw.json:
        return raw.args, False
    return (" ".join(raw.args),), True


def _cmd(raw: RawInstruction, loc: Loc, ex: Expander) -> Cmd:
    cmd, shell = _cmd_args(raw)
    return Cmd(loc, cmd if any(cmd) or not shell else (), shell)


def _entrypoint(raw: RawInstruction, loc: Loc, ex: Expander) -> Entrypoint:
    cmd, shell = _cmd_args(raw)
    return Entrypoint(loc, cmd if any(cmd) or not shell else (), shell)


def _shell(raw: RawInstruction, loc: Loc, ex: Expander) -> Shell:
    if not raw.json:
        raise InvalidArgument("SHELL requires the arguments to be in JSON form")
    if not raw.args:
        raise InvalidArgument("SHELL requires at least one argument")
    return Shell(loc, raw.args)


def _healthcheck(raw: RawInstruction, loc: Loc, ex: Expander) -> Healthcheck:
    if not raw.args:
        raise InvalidArgument("HEALTHCHECK requires at least one argument")
    kind = raw.args[0].upper()
    if kind == "NONE":
        if len(raw.args) > 1 or raw.flags:
            raise InvalidArgument("HEALTHCHECK NONE takes no arguments")
        return Healthcheck(loc, ("NONE",))
    if kind != "CMD":
        raise InvalidArgument(f'Unknown type "{raw.args[0]}" in HEALTHCHECK (try CMD)')
    rest = raw.args[1:]
    if not rest or (not raw.json and not rest[0].strip()):
        raise InvalidArgument("Missing command after HEALTHCHECK CMD")
    test = ("CMD", *rest) if raw.json else ("CMD-SHELL", " ".join(rest))
    f = _flags(raw, ex)
    durs = {}
    for name in ("interval", "timeout", "start-period", "start-interval"):
        d = parse_duration(flag_str(f, name, "0"), name)
        if 0 < d < 1_000_000:
            raise InvalidArgument(f"Interval {name} cannot be less than 1ms")
        durs[name] = d
    retries_s = flag_str(f, "retries", "0")
    try:
        retries = int(retries_s)
    except ValueError:
        raise InvalidArgument(f"invalid --retries value {retries_s!r}") from None
    if retries < 0:
        raise InvalidArgument("--retries cannot be negative")
    return Healthcheck(
        loc,
        test,
        durs["interval"],
        durs["timeout"],
        durs["start-period"],
        durs["start-interval"],
        retries,
    )


def _onbuild(raw: RawInstruction, loc: Loc, ex: Expander) -> Onbuild:
    if raw.sub is None:
        raise InvalidArgument("ONBUILD requires at least one argument")
    return Onbuild(loc, raw.trigger)


def _maintainer(raw: RawInstruction, loc: Loc, ex: Expander) -> Maintainer:
    return Maintainer(loc, _one(raw, NO_EXPAND))


_BUILDERS: dict[str, Callable[[RawInstruction, Loc, Expander], Instruction]] = {
    "FROM": _from,
    "ARG": _arg,
    "ENV": _env,
    "LABEL": _label,
    "RUN": _run,
    "COPY": _copy,
    "ADD": _copy,
    "WORKDIR": _workdir,
    "USER": _user,
    "EXPOSE": _expose,
    "VOLUME": _volume,
    "CMD": _cmd,
    "ENTRYPOINT": _entrypoint,
    "SHELL": _shell,
    "STOPSIGNAL": _stopsignal,
    "HEALTHCHECK": _healthcheck,
    "ONBUILD": _onbuild,
    "MAINTAINER": _maintainer,
}
