"""BuildKit's own Dockerfile parser test data, read from ../shared/conformance (never copied)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dockyard.build.expand import Lexer
from dockyard.build.parser import DockerfileError, dump, parse
from dockyard.errors import InvalidArgument

pytest.importorskip("dockerfile")

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "conformance" / "dockerfile-parser"
if not DATA.is_dir():
    pytest.skip("conformance data not found beside the repository", allow_module_level=True)


def _cases(sub: str) -> list[Path]:
    return sorted(p for p in (DATA / sub).iterdir() if p.is_dir())


@pytest.mark.parametrize("case", _cases("testfiles"), ids=lambda p: p.name)
def test_parse_tree_dump_matches_buildkit(case: Path) -> None:
    text = (case / "Dockerfile").read_text(encoding="utf-8")
    assert dump(parse(text)) == (case / "result").read_text(encoding="utf-8")


@pytest.mark.parametrize("case", _cases("testfiles-negative"), ids=lambda p: p.name)
def test_negative_cases_are_rejected(case: Path) -> None:
    with pytest.raises(DockerfileError) as ei:
        parse((case / "Dockerfile").read_text(encoding="utf-8"))
    assert str(ei.value).startswith("Dockerfile")
    assert ei.value.detail


def test_line_numbers() -> None:
    parsed = parse((DATA / "testfile-line" / "Dockerfile").read_text(encoding="utf-8"))
    spans = [(i.line, i.end_line) for i in parsed.instructions]
    assert spans == [(5, 5), (11, 12), (17, 31)]


ENV = {"PWD": "/home", "SHELL": "bash", "KOREAN": "한국어", "NULL": ""}


def _env_var_cases() -> list[tuple[str, str]]:
    out = []
    for line in (DATA / "envVarTest").read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        plat, source, expected = line.split("|", 2)
        if plat.strip() in ("A", "U"):
            out.append((source.strip(), expected.strip()))
    return out


@pytest.mark.parametrize(("source", "expected"), _env_var_cases())
def test_env_var_expansion_table(source: str, expected: str) -> None:
    if expected == "error":
        with pytest.raises(InvalidArgument):
            Lexer().word(source, ENV)
    else:
        assert Lexer().word(source, ENV) == expected


def _words_cases() -> list[tuple[str, str, dict[str, str]]]:
    env: dict[str, str] = {}
    out = []
    for line in (DATA / "wordsTest").read_text(encoding="utf-8").splitlines():
        if not line or line.startswith("#"):
            continue
        if line.startswith("ENV "):
            k, v = line[4:].split("=", 1)
            env[k] = v
            continue
        source, expected = line.split("|", 1)
        out.append((source.strip(), expected.lstrip(" "), dict(env)))
    return out


@pytest.mark.parametrize(("source", "expected", "env"), _words_cases())
def test_word_splitting_table(source: str, expected: str, env: dict[str, str]) -> None:
    if expected == "error":
        with pytest.raises(InvalidArgument):
            Lexer().words(source, env)
    else:
        assert Lexer().words(source, env) == expected.split(",")
