"""The build plan: ARG/ENV scoping, build-arg overrides, stage graph, target pruning, ONBUILD."""

from __future__ import annotations

import textwrap

import pytest

from dockyard.build.model import Copy, Env, Label, Run, User, Workdir
from dockyard.build.parser import DockerfileError
from dockyard.build.stages import ImageInfo, plan
from dockyard.errors import NotFound

pytest.importorskip("dockerfile")


def df(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


MULTI = df("""
    FROM alpine AS base
    RUN echo base
    FROM base AS deps
    RUN echo deps
    FROM golang AS tools
    RUN echo tools
    FROM deps AS build
    COPY --from=tools /go/bin/x /x
    FROM scratch AS docs
    COPY --from=0 /etc/os-release /
    FROM busybox AS final
    COPY --from=build /x /x
    COPY --from=nginx:1 /etc/nginx /etc/nginx
""")


def test_stage_graph_and_levels() -> None:
    p = plan(MULTI)
    names = [s.name for s in p.stages]
    assert names == ["base", "deps", "tools", "build", "docs", "final"]
    assert p.target == 5
    assert p.stages[1].base_stage == 0 and p.stages[1].deps == {0}
    assert p.stages[3].deps == {1, 2}
    assert p.stages[4].deps == {0}
    assert p.stages[5].images == {"nginx:1"}
    assert p.needed == (0, 1, 2, 3, 5)  # docs is not needed by final
    assert p.levels == ((0, 2), (1,), (3,), (5,))


def test_target_prunes_stages() -> None:
    p = plan(MULTI, target="docs")
    assert p.needed == (0, 4)
    assert p.levels == ((0,), (4,))
    assert plan(MULTI, target="TOOLS").needed == (2,)
    with pytest.raises(NotFound, match="target stage 'nope' could not be found"):
        plan(MULTI, target="nope")


def test_copy_from_current_or_later_stage_is_an_error() -> None:
    with pytest.raises(DockerfileError, match="refers to current or later") as ei:
        plan("FROM a AS one\nCOPY --from=1 /a /b\nFROM b\n")
    assert ei.value.line == 2


def test_global_args_only_reach_from_unless_redeclared() -> None:
    p = plan(
        df("""
        ARG TAG=3.19
        ARG REG
        FROM ${REG:-docker.io}/alpine:$TAG
        RUN echo $TAG
        LABEL before=x$TAG
        ARG TAG
        LABEL after=$TAG
    """)
    )
    st = p.stages[0]
    assert st.base == "docker.io/alpine:3.19"
    before, after = st.steps[1].instruction, st.steps[3].instruction
    assert isinstance(before, Label) and before.pairs == (("before", "x"),)
    assert isinstance(after, Label) and after.pairs == (("after", "3.19"),)
    run = st.steps[0]
    assert isinstance(run.instruction, Run) and run.args == {}


def test_build_args_override_defaults_and_env_wins_over_arg() -> None:
    text = df("""
        ARG BASE=alpine
        FROM $BASE
        ARG V=1
        ARG W=default
        ENV W=fromenv
        WORKDIR /src/$V/$W
        RUN make
    """)
    p = plan(text, build_args={"BASE": "debian", "V": "2", "HTTPS_PROXY": "http://p:3128"})
    st = p.stages[0]
    assert st.base == "debian"
    wd = st.steps[3].instruction
    assert isinstance(wd, Workdir) and wd.path == "/src/2/fromenv"
    run = st.steps[4]
    assert run.args == {"HTTPS_PROXY": "http://p:3128", "V": "2", "W": "default"}
    assert run.env == {"W": "fromenv"}
    assert p.unused_build_args == ()
    assert p.warnings == ()


def test_env_same_instruction_uses_previous_values() -> None:
    p = plan("FROM a\nENV A=1\nENV A=2 B=$A\nUSER ${A}:${B}\n")
    env = p.stages[0].steps[1].instruction
    assert isinstance(env, Env) and env.pairs == (("A", "2"), ("B", "1"))
    user = p.stages[0].steps[2].instruction
    assert isinstance(user, User) and user.user == "2:1"


def test_unused_build_args_warning() -> None:
    p = plan(
        "FROM a\nARG USED\nRUN true\n",
        build_args={"USED": "1", "ZED": "2", "ALPHA": "3", "http_proxy": "x"},
    )
    assert p.unused_build_args == ("ALPHA", "ZED")
    assert p.warnings == ("[Warning] One or more build-args [ALPHA ZED] were not consumed",)


def test_platform_args() -> None:
    text = df("""
        FROM --platform=$BUILDPLATFORM golang AS build
        ARG TARGETOS TARGETARCH
        RUN GOOS=$TARGETOS GOARCH=$TARGETARCH go build
        LABEL t=$TARGETPLATFORM a=$TARGETARCH
    """)
    p = plan(text, build_platform="linux/amd64", target_platform="linux/arm64/v8")
    st = p.stages[0]
    assert st.platform == "linux/amd64"
    assert st.steps[1].args == {"TARGETOS": "linux", "TARGETARCH": "arm64"}
    label = st.steps[2].instruction
    assert isinstance(label, Label) and label.pairs == (("t", ""), ("a", "arm64"))


def test_no_expansion_in_run_cmd_and_exec_form() -> None:
    p = plan('FROM a\nENV X=1\nRUN echo $X\nCMD ["echo", "$X"]\n')
    run = p.stages[0].steps[1].instruction
    assert isinstance(run, Run) and run.command == ("echo $X",)


def test_copy_expansion_and_heredoc_expansion() -> None:
    text = df("""
        FROM a
        ARG NAME=app
        ENV DIR=/opt
        COPY --chown=$NAME:$NAME "$NAME.conf" $DIR/
        COPY <<EOF <<'RAW' ${DIR}/
        name="$NAME" \\$keep
        EOF
        $NAME
        RAW
    """)
    steps = plan(text).stages[0].steps
    c = steps[2].instruction
    assert isinstance(c, Copy) and c.chown == "app:app"
    assert c.sources == ("app.conf",) and c.dest == "/opt/"
    h = steps[3].instruction
    assert isinstance(h, Copy) and h.dest == "/opt/"
    expanded, raw = h.heredocs
    assert expanded.content == 'name="app" \\$keep\n'
    assert raw.content == "$NAME\n"


def test_escape_directive_applies_to_expansion() -> None:
    p = plan('# escape=`\nFROM a\nENV P="C:\\dir `$HOME"\n')
    env = p.stages[0].steps[0].instruction
    assert isinstance(env, Env) and env.pairs == (("P", "C:\\dir $HOME"),)


def test_stage_inherits_env_of_parent_stage_not_args() -> None:
    p = plan("FROM a AS one\nARG X=1\nENV Y=2\nFROM one\nLABEL l=$X$Y\n")
    label = p.stages[1].steps[0].instruction
    assert isinstance(label, Label) and label.pairs == (("l", "2"),)


def test_base_image_env_and_onbuild_triggers() -> None:
    seen = []

    def resolve(ref: str, platform: str) -> ImageInfo:
        seen.append((ref, platform))
        return ImageInfo({"GOPATH": "/go"}, ("RUN echo triggered", "COPY . $GOPATH/src"))

    p = plan(
        "FROM golang\nWORKDIR $GOPATH/app\n",
        resolve_image=resolve,
        target_platform="linux/amd64",
        build_platform="linux/amd64",
    )
    assert seen == [("golang", "linux/amd64")]
    steps = p.stages[0].steps
    assert [s.trigger for s in steps] == [True, True, False]
    copy = steps[1].instruction
    assert isinstance(copy, Copy) and copy.dest == "/go/src"
    wd = steps[2].instruction
    assert isinstance(wd, Workdir) and wd.path == "/go/app"


def test_onbuild_of_parent_stage_runs_in_child() -> None:
    p = plan("FROM a AS parent\nONBUILD RUN echo child\nFROM parent\nRUN echo own\n")
    assert p.stages[0].onbuild == ("RUN echo child",)
    child = p.stages[1].steps
    assert child[0].trigger and isinstance(child[0].instruction, Run)
    assert child[0].instruction.command == ("echo child",)


def test_instruction_before_from_is_an_error() -> None:
    with pytest.raises(DockerfileError, match="no build stage") as ei:
        plan("ARG A\nRUN true\nFROM a\n")
    assert ei.value.line == 2


def test_expansion_error_names_line() -> None:
    with pytest.raises(DockerfileError) as ei:
        plan("FROM a\nENV A=1\nWORKDIR ${A:=x}\n")
    assert ei.value.line == 3
    assert "substitution" in str(ei.value)


def test_duplicate_stage_name() -> None:
    with pytest.raises(DockerfileError, match="duplicate stage name") as ei:
        plan("FROM a AS x\nFROM b AS X\n")
    assert ei.value.line == 2


def test_bad_onbuild_trigger_of_base_image_names_from_line() -> None:
    def resolve(ref: str, platform: str) -> ImageInfo:
        return ImageInfo({}, ("RUNN nope",))

    with pytest.raises(DockerfileError, match="ONBUILD trigger") as ei:
        plan("FROM a\n\nFROM b\n", resolve_image=resolve)
    assert ei.value.line == 1


def test_copy_from_later_stage_by_name_and_cycles() -> None:
    p = plan(
        "FROM a AS first\nCOPY --from=second /x /x\nFROM b AS second\nRUN true\n", target="first"
    )
    assert p.stages[0].deps == {1}
    assert p.needed == (1, 0)
    assert p.levels == ((1,), (0,))
    with pytest.raises(DockerfileError, match="circular dependency"):
        plan("FROM a AS one\nCOPY --from=two /x /x\nFROM one AS two\n")
