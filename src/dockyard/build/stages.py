"""The build plan: stages, ARG/ENV scoping, expansion, stage graph and target pruning (layer L4).

`plan(text, ...)` turns a Dockerfile and build options into a `BuildPlan` the executor walks:
each `Stage` holds typed, fully expanded `Step`s plus the ARG values in scope at each step (the
RUN environment and cache key need them), and the plan lists the stages the target needs in a
topological order and as `levels` (stages in one level depend only on earlier levels, so they
may run concurrently).

Scoping rules (BuildKit's): ARGs before the first FROM are global and visible only to FROM lines
(plus the automatic platform ARGs); a stage sees an ARG only after declaring it (`ARG NAME`
inherits the global value); `--build-arg` overrides defaults; ENV wins over ARG; a stage FROM an
earlier stage inherits its ENV (not its ARGs); proxy build-args reach RUN without a declaration.
An image's ONBUILD triggers (from `resolve_image`, or a parent stage's ONBUILD lines) run first.

Invariants: FROM names only earlier stages (a later name is an image); `COPY/RUN --from` may name
a later stage, so `needed` is a real topological order (cycles are refused); it ends with the
target.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from dockyard.build.expand import Lexer
from dockyard.build.instructions import typed
from dockyard.build.model import (
    Arg,
    Copy,
    Env,
    Expander,
    From,
    Instruction,
    Onbuild,
    Run,
)
from dockyard.build.parser import DockerfileError, RawInstruction, parse, parse_trigger
from dockyard.build.platforms import normalize
from dockyard.errors import InvalidArgument, NotFound

PROXY_ARGS = frozenset(
    ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "FTP_PROXY", "ftp_proxy",
     "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy")
)  # fmt: skip
PLATFORM_ARGS = (
    "BUILDPLATFORM", "BUILDOS", "BUILDARCH", "BUILDVARIANT",
    "TARGETPLATFORM", "TARGETOS", "TARGETARCH", "TARGETVARIANT",
)  # fmt: skip
_ARCH = {
    "x86_64": "amd64",
    "aarch64": "arm64",
    "armv7l": "arm/v7",
    "armv6l": "arm/v6",
    "i686": "386",
    "i386": "386",
    "ppc64le": "ppc64le",
    "s390x": "s390x",
    "riscv64": "riscv64",
}


@dataclass(frozen=True)
class ImageInfo:
    """What the planner needs from a base image's config: its ENV and ONBUILD triggers."""

    env: Mapping[str, str] = field(default_factory=dict)
    onbuild: tuple[str, ...] = ()


ImageResolver = Callable[[str, str], ImageInfo | None]


@dataclass(frozen=True)
class Step:
    """One expanded instruction. `args`: ARG values in scope (plus proxy build-args for RUN);
    `env`: the ENV known at this point (base env + stage ENV), both *before* the step."""

    instruction: Instruction
    args: Mapping[str, str]
    env: Mapping[str, str]
    trigger: bool = False


@dataclass(frozen=True)
class Stage:
    index: int
    name: str
    base: str
    base_stage: int | None
    platform: str
    steps: tuple[Step, ...]
    deps: frozenset[int]
    images: frozenset[str]
    onbuild: tuple[str, ...]
    line: int
    env: Mapping[str, str] = field(default_factory=dict)

    @property
    def display(self) -> str:
        return self.name or str(self.index)


@dataclass(frozen=True)
class BuildPlan:
    stages: tuple[Stage, ...]
    target: int
    needed: tuple[int, ...]
    levels: tuple[tuple[int, ...], ...]
    global_args: Mapping[str, str]
    directives: Mapping[str, str]
    unused_build_args: tuple[str, ...]

    @property
    def warnings(self) -> tuple[str, ...]:
        if not self.unused_build_args:
            return ()
        names = " ".join(self.unused_build_args)
        return (f"[Warning] One or more build-args [{names}] were not consumed",)

    def stage(self, ref: str) -> Stage:
        idx = find_stage(self.stages, ref, len(self.stages))
        if idx is None:
            raise NotFound(f"target stage {ref!r} could not be found")
        return self.stages[idx]


def default_platform() -> str:
    return "linux/" + _ARCH.get(os.uname().machine, os.uname().machine)


def platform_args(build_platform: str, target_platform: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for prefix, plat in (("BUILD", build_platform), ("TARGET", target_platform)):
        parts = [*plat.split("/"), "", ""][:3]
        out[prefix + "PLATFORM"] = plat
        out[prefix + "OS"], out[prefix + "ARCH"], out[prefix + "VARIANT"] = parts
    return out


def find_stage(stages: tuple[Stage, ...] | list[Stage], ref: str, before: int) -> int | None:
    """Index of stage `ref` (name or number) among the first `before` stages."""
    low = ref.lower()
    for s in stages[:before]:
        if s.name and s.name == low:
            return s.index
    if ref.isdigit() and int(ref) < before:
        return int(ref)
    return None


class _Scope:
    """Expansion state of one stage: declared ARGs and ENV."""

    def __init__(self, escape: str, env: Mapping[str, str]) -> None:
        self.lexer = Lexer(escape)
        self.heredoc_lexer = Lexer(escape, raw_quotes=True, raw_escapes=True)
        self.args: dict[str, str] = {}
        self.env: dict[str, str] = dict(env)

    def vars(self) -> dict[str, str]:
        return {**self.args, **self.env}

    def expander(self) -> Expander:
        v = self.vars()
        return Expander(
            word=lambda s: self.lexer.word(s, v),
            words=lambda s: self.lexer.words(s, v),
            heredoc=lambda s: self.heredoc_lexer.word(s, v),
        )


class _Planner:
    def __init__(
        self,
        file: str,
        escape: str,
        build_args: Mapping[str, str],
        platforms: dict[str, str],
        resolve_image: ImageResolver | None,
    ) -> None:
        self.file = file
        self.escape = escape
        self.build_args = dict(build_args)
        self.platforms = platforms
        self.resolve_image = resolve_image
        self.global_args: dict[str, str] = dict(platforms)
        self.global_declared: set[str] = set()
        self.declared: set[str] = set()
        self.stages: list[Stage] = []
        self.names: list[str] = []  # every stage's name, known before planning any stage

    def ex(self, scope: _Scope, raw: RawInstruction) -> Instruction:
        try:
            return typed(raw, scope.expander(), self.file)
        except DockerfileError:
            raise
        except InvalidArgument as e:
            raise DockerfileError(e.message, file=self.file, line=raw.line) from None

    def global_arg(self, raw: RawInstruction) -> None:
        scope = _Scope(self.escape, {})
        scope.args = dict(self.global_args)
        ins = self.ex(scope, raw)
        assert isinstance(ins, Arg)
        for name, default in ins.args:
            self.global_declared.add(name)
            value = self.build_args.get(name, default)
            if value is not None:
                self.global_args[name] = value
            elif name not in self.platforms:  # `ARG TARGETPLATFORM` keeps the automatic value
                self.global_args.pop(name, None)

    def declare(self, scope: _Scope, ins: Arg) -> None:
        for name, default in ins.args:
            self.declared.add(name)
            if name in self.build_args:
                scope.args[name] = self.build_args[name]
            elif default is not None:
                scope.args[name] = default
            elif name in self.global_args:
                scope.args[name] = self.global_args[name]

    def stage_ref(self, ref: str, index: int, line: int) -> int | None:
        """The stage a `--from` names (earlier, or later by name), or None for an image."""
        dep = find_stage(self.stages, ref, index)
        if dep is not None:
            return dep
        low = ref.lower()
        if ref.isdigit() or low == self.names[index]:
            msg = f"invalid from flag value {ref}: refers to current or later build stage"
            raise DockerfileError(msg, file=self.file, line=line)
        if low in self.names:
            return self.names.index(low)
        return None

    def trigger(self, text: str, image: str, line: int) -> RawInstruction:
        try:
            return parse_trigger(text, self.escape, self.file)
        except DockerfileError as e:
            msg = f"ONBUILD trigger {text!r} of {image}: {e.detail}"
            raise DockerfileError(msg, file=self.file, line=line) from None

    def run_args(self, scope: _Scope) -> dict[str, str]:
        proxies = {k: v for k, v in self.build_args.items() if k in PROXY_ARGS}
        return {**proxies, **scope.args}

    def stage(self, raw_from: RawInstruction, body: list[RawInstruction]) -> Stage:
        index = len(self.stages)
        gscope = _Scope(self.escape, {})
        gscope.args = dict(self.global_args)
        frm = self.ex(gscope, raw_from)
        assert isinstance(frm, From)
        if frm.name and any(s.name == frm.name for s in self.stages):
            raise DockerfileError(
                f"duplicate stage name {frm.name!r}", file=self.file, line=raw_from.line
            )
        base_stage = find_stage(self.stages, frm.image, index) if frm.image != "scratch" else None
        platform = self.platforms["TARGETPLATFORM"]
        if frm.platform:
            try:
                platform = normalize(frm.platform)
            except InvalidArgument as e:
                raise DockerfileError(e.message, file=self.file, line=raw_from.line) from None
        if base_stage is not None:
            parent = self.stages[base_stage]
            env = dict(parent.env)
            triggers = parent.onbuild
        else:
            info = None
            if self.resolve_image is not None and frm.image != "scratch":
                info = self.resolve_image(frm.image, platform)
            env = dict(info.env) if info else {}
            triggers = info.onbuild if info else ()
        scope = _Scope(self.escape, env)
        steps: list[Step] = []
        raws = [(self.trigger(t, frm.image, raw_from.line), True) for t in triggers]
        raws += [(r, False) for r in body]
        deps: set[int] = {base_stage} if base_stage is not None else set()
        images: set[str] = set()
        onbuild: list[str] = []
        for raw, is_trigger in raws:
            try:
                ins = self.ex(scope, raw)
            except DockerfileError as e:
                if not is_trigger:
                    raise
                msg = f"ONBUILD trigger of {frm.image}: {e.detail}"
                raise DockerfileError(msg, file=self.file, line=raw_from.line) from None
            args = self.run_args(scope) if isinstance(ins, Run) else dict(scope.args)
            steps.append(Step(ins, args, dict(scope.env), is_trigger))
            if isinstance(ins, Arg):
                self.declare(scope, ins)
            elif isinstance(ins, Env):
                scope.env.update(ins.pairs)
            elif isinstance(ins, Onbuild):
                onbuild.append(ins.trigger)
            for ref in _refs(ins):
                dep = self.stage_ref(ref, index, raw.line)
                if dep is not None:
                    deps.add(dep)
                else:
                    images.add(ref)
        st = Stage(
            index,
            frm.name,
            frm.image,
            base_stage,
            platform,
            tuple(steps),
            frozenset(deps),
            frozenset(images),
            tuple(onbuild),
            raw_from.line,
            dict(scope.env),
        )
        self.stages.append(st)
        return st


def _refs(ins: Instruction) -> list[str]:
    if isinstance(ins, Copy) and ins.from_:
        return [ins.from_]
    if isinstance(ins, Run):
        return [m.from_ for m in ins.mounts if m.from_]
    return []


def plan(
    text: str,
    *,
    file: str = "Dockerfile",
    build_args: Mapping[str, str] | None = None,
    target: str | None = None,
    build_platform: str | None = None,
    target_platform: str | None = None,
    resolve_image: ImageResolver | None = None,
) -> BuildPlan:
    """Parse, type, expand and order a Dockerfile. Raises `DockerfileError` / `NotFound`."""
    parsed = parse(text, file)
    bp = build_platform or default_platform()
    platforms = platform_args(bp, normalize(target_platform) if target_platform else bp)
    p = _Planner(file, parsed.escape, build_args or {}, platforms, resolve_image)
    p.names = [
        r.args[2].lower() if len(r.args) == 3 else ""
        for r in parsed.instructions
        if r.keyword == "FROM"
    ]
    current: tuple[RawInstruction, list[RawInstruction]] | None = None
    for raw in parsed.instructions:
        if raw.keyword == "FROM":
            if current:
                p.stage(*current)
            current = (raw, [])
        elif current is not None:
            current[1].append(raw)
        elif raw.keyword == "ARG":
            p.global_arg(raw)
        else:
            raise DockerfileError("no build stage in current context", file=file, line=raw.line)
    if current is None:
        raise DockerfileError("no build stage in current context", file=file)
    p.stage(*current)
    stages = tuple(p.stages)
    tgt = len(stages) - 1
    if target:
        found = find_stage(stages, target, len(stages)) if not target.isdigit() else None
        if found is None:
            raise NotFound(f"target stage {target!r} could not be found")
        tgt = found
    needed = needed_stages(stages, tgt, file)
    used = p.declared | p.global_declared | PROXY_ARGS | set(PLATFORM_ARGS)
    unused = tuple(sorted(k for k in (build_args or {}) if k not in used))
    return BuildPlan(
        stages,
        tgt,
        needed,
        levels(stages, needed),
        dict(p.global_args),
        dict(parsed.directives),
        unused,
    )


def needed_stages(
    stages: tuple[Stage, ...], target: int, file: str = "Dockerfile"
) -> tuple[int, ...]:
    """The stages `target` depends on (transitively), itself last, in a topological order.
    Raises `DockerfileError` on a dependency cycle (possible through forward `--from`)."""
    order: list[int] = []
    state: dict[int, int] = {}  # 1 = visiting, 2 = done

    def visit(i: int) -> None:
        if state.get(i) == 2:
            return
        if state.get(i) == 1:
            msg = f"circular dependency detected on stage: {stages[i].display}"
            raise DockerfileError(msg, file=file, line=stages[i].line)
        state[i] = 1
        for d in sorted(stages[i].deps):
            visit(d)
        state[i] = 2
        order.append(i)

    visit(target)
    return tuple(order)


def levels(stages: tuple[Stage, ...], needed: tuple[int, ...]) -> tuple[tuple[int, ...], ...]:
    """Group `needed` stages (topologically ordered) by dependency depth: each group may run
    concurrently, as it depends only on earlier groups."""
    depth: dict[int, int] = {}
    for i in needed:
        depth[i] = 1 + max((depth[d] for d in stages[i].deps), default=-1)
    out: dict[int, list[int]] = {}
    for i, d in depth.items():
        out.setdefault(d, []).append(i)
    return tuple(tuple(sorted(out[d])) for d in sorted(out))
