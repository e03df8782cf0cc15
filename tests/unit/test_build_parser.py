"""Dockerfile parsing: directives, heredocs, ONBUILD, errors naming FILE:LINE."""

from __future__ import annotations

import sys
import textwrap

import pytest

from dockyard.build.parser import (
    DockerfileError,
    dump,
    parse,
    parse_directives,
    parse_trigger,
)
from dockyard.gostr import go_quote

pytest.importorskip("dockerfile")


def df(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def test_directives_are_read_from_the_top() -> None:
    p = parse(
        df("""
        # syntax=docker/dockerfile:1.7
        # escape=`
        # check=skip=all
        FROM a
        RUN echo `
            hi
    """)
    )
    assert p.directives == {"syntax": "docker/dockerfile:1.7", "escape": "`", "check": "skip=all"}
    assert p.escape == "`"
    assert p.instructions[1].args == ("echo     hi",)


def test_directive_after_comment_is_ignored() -> None:
    assert parse_directives("# hello\n# escape=`\nFROM a\n") == {}


def test_duplicate_directive_is_an_error() -> None:
    with pytest.raises(DockerfileError, match="only one escape parser directive"):
        parse("# escape=`\n# escape=\\\nFROM a\n")


def test_bad_escape_directive() -> None:
    with pytest.raises(DockerfileError, match="invalid escape token"):
        parse("# escape=x\nFROM a\n")


def test_run_heredoc() -> None:
    p = parse(
        df("""
        FROM a
        RUN <<EOF
        echo hi $X
        EOF
    """)
    )
    run = p.instructions[1]
    assert (run.line, run.end_line) == (2, 4)
    assert run.args == ("<<EOF",)
    (h,) = run.heredocs
    assert (h.name, h.content, h.expand, h.chomp) == ("EOF", "echo hi $X\n", True, False)


def test_copy_several_heredocs_chomp_and_quoted() -> None:
    p = parse("FROM a\nCOPY <<-'A' <<B /dst/\n\tone $x\n\tA\ntwo\nB\n")
    a, b = p.instructions[1].heredocs
    assert (a.name, a.expand, a.chomp) == ("A", False, True)
    assert a.text == "one $x\n"
    assert (b.name, b.content, b.expand, b.chomp) == ("B", "two\n", True, False)


def test_heredoc_with_command_and_double_quoted_delimiter() -> None:
    p = parse('FROM a\nRUN python3 <<"PY" > /out\nprint(1)\nPY\n')
    (h,) = p.instructions[1].heredocs
    assert (h.name, h.expand, h.content) == ("PY", False, "print(1)\n")
    assert p.instructions[1].args == ('python3 <<"PY" > /out',)


def test_unterminated_heredoc_names_line() -> None:
    with pytest.raises(DockerfileError) as ei:
        parse("FROM a\nRUN <<EOF\nabc\n")
    assert ei.value.line == 2
    assert str(ei.value) == "Dockerfile:2: unterminated heredoc"


def test_unknown_instruction_names_file_and_line() -> None:
    with pytest.raises(DockerfileError) as ei:
        parse("FROM a\n\n# c\nRUNN foo\n", file="sub/Dockerfile.dev")
    e = ei.value
    assert (e.file, e.line) == ("sub/Dockerfile.dev", 4)
    assert str(e).startswith("sub/Dockerfile.dev:4: unknown instruction: RUNN")
    assert "did you mean run?" in str(e)
    assert e.buildkit_message.startswith("dockerfile parse error on line 4: unknown instruction")


def test_grammar_error_in_continued_instruction_names_its_first_line() -> None:
    with pytest.raises(DockerfileError) as ei:
        parse("FROM a\nRUN x\nENV A=1 \\\n   B\nRUN y\n")
    assert ei.value.line == 3
    assert "name=value" in ei.value.detail


def test_empty_file() -> None:
    with pytest.raises(DockerfileError, match="file with no instructions"):
        parse("# only a comment\n\n")


def test_onbuild_keeps_trigger_and_flags() -> None:
    p = parse("FROM a\nONBUILD RUN --network=none echo hi\n")
    ob = p.instructions[1]
    assert ob.trigger == "RUN --network=none echo hi"
    assert ob.sub is not None and ob.sub.flags == ("--network=none",)
    assert dump(p).splitlines()[1] == '(onbuild (run ["--network=none"] "echo hi"))'


def test_parse_trigger() -> None:
    ins = parse_trigger("COPY --chown=1:1 . /app")
    assert (ins.keyword, ins.flags, ins.args) == ("COPY", ("--chown=1:1",), (".", "/app"))
    with pytest.raises(DockerfileError, match="isn't allowed"):
        parse_trigger("FROM busybox")


def test_json_nul_survives() -> None:
    p = parse('CMD ["a\\u0000b"]\n')
    assert p.instructions[0].args == ("a\x00b",)


def test_go_quote() -> None:
    assert go_quote('a"b\\c\n\x00\x7f♥') == '"a\\"b\\\\c\\n\\x00\\x7f♥"'


def test_parsing_is_lazy_about_the_binding() -> None:
    import subprocess

    code = "import sys, dockyard.build.stages, dockyard.build.context;"
    code += "print('dockerfile' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
