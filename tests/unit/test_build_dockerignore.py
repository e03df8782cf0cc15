""".dockerignore: cleaning, Go filepath.Match semantics, `**`, exceptions, pruning walker."""

from __future__ import annotations

from pathlib import Path

import pytest

from dockyard.build.dockerignore import Matcher, find_ignore_file, read_patterns, walk
from dockyard.build.gomatch import match
from dockyard.errors import InvalidArgument


def test_read_patterns_cleans_and_skips_comments() -> None:
    text = "\ufeff# comment\n\n  ./a/b/  \n/abs\n!  ./keep\nx/../y\n#not\n"
    assert read_patterns(text) == ["a/b", "abs", "!keep", "y"]


@pytest.mark.parametrize(
    ("pattern", "name", "ok"),
    [
        ("*.go", "main.go", True),
        ("*.go", "pkg/main.go", False),
        ("a?c", "abc", True),
        ("a?c", "a/c", False),
        ("[a-c]*", "beta", True),
        ("[^a-c]*", "beta", False),
        ("\\*", "*", True),
        ("a[\\]]", "a]", True),
    ],
)
def test_go_filepath_match(pattern: str, name: str, ok: bool) -> None:
    assert match(pattern, name) is ok


@pytest.mark.parametrize("pattern", ["[", "[]", "a\\", "[a-]", "[z-a]"])
def test_go_bad_patterns(pattern: str) -> None:
    with pytest.raises(InvalidArgument, match="syntax error in pattern"):
        match(pattern, "x")


def m(*patterns: str) -> Matcher:
    return Matcher(read_patterns("\n".join(patterns)))


def test_directory_pattern_excludes_its_contents() -> None:
    mt = m("node_modules")
    assert mt.is_excluded("node_modules")
    assert mt.is_excluded("node_modules/x/y.js")
    assert not mt.is_excluded("src/node_modules")


def test_double_star() -> None:
    mt = m("**/*.pyc", "build/**")
    assert mt.is_excluded("a.pyc") and mt.is_excluded("x/y/z.pyc")
    assert mt.is_excluded("build/a/b") and not mt.is_excluded("builder")
    assert m("a/**/b").is_excluded("a/b") and m("a/**/b").is_excluded("a/x/y/b")


def test_exceptions_in_order() -> None:
    mt = m("*.md", "!README.md", "README*.md")
    assert mt.is_excluded("CHANGES.md")
    assert mt.is_excluded("README.md")  # re-excluded by the last pattern
    mt = m("*.md", "!README.md")
    assert not mt.is_excluded("README.md")


def test_exception_under_excluded_dir() -> None:
    mt = m("docs", "!docs/keep.txt")
    assert mt.is_excluded("docs/a.txt")
    assert not mt.is_excluded("docs/keep.txt")
    assert mt.could_reinclude("docs")
    assert not m("docs", "!src/x").could_reinclude("docs")


def test_leading_slash_and_dot_slash() -> None:
    mt = m("/secret", "./tmp/*")
    assert mt.is_excluded("secret") and mt.is_excluded("tmp/a")
    assert not mt.is_excluded("x/secret")


def test_bare_exclamation_is_invalid() -> None:
    with pytest.raises(InvalidArgument):
        m("!")


def _tree(root: Path, files: list[str]) -> None:
    for f in files:
        p = root / f
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(f)


def test_walker_prunes_and_reincludes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _tree(tmp_path, ["a.txt", "big/1", "big/2/3", "docs/x", "docs/keep.txt", "src/m.go"])
    mt = m("big", "docs", "!docs/keep.txt", "*.txt", "!a.txt")
    scanned: list[str] = []
    import dockyard.build.dockerignore as di

    real = di.os.scandir

    def spy(path: object) -> object:
        scanned.append(str(path))
        return real(path)  # type: ignore[call-overload]

    monkeypatch.setattr(di.os, "scandir", spy)
    got = sorted(rel for rel, _ in walk(tmp_path, mt))
    assert got == ["a.txt", "docs/keep.txt", "src", "src/m.go"]
    assert not any(s.endswith("big") for s in scanned)  # pruned: nothing can come back
    assert any(s.endswith("docs") for s in scanned)  # descended: an exception may match


def test_walker_keeps_exception_file(tmp_path: Path) -> None:
    _tree(tmp_path, ["docs/x", "docs/keep.md"])
    got = sorted(rel for rel, _ in walk(tmp_path, m("docs", "!docs/keep.md")))
    assert got == ["docs/keep.md"]


def test_dockerfile_specific_ignore_file_wins(tmp_path: Path) -> None:
    (tmp_path / ".dockerignore").write_text("a\n")
    df = tmp_path / "sub" / "app.Dockerfile"
    df.parent.mkdir()
    df.write_text("FROM a\n")
    assert find_ignore_file(tmp_path, df) == tmp_path / ".dockerignore"
    (tmp_path / "sub" / "app.Dockerfile.dockerignore").write_text("b\n")
    assert find_ignore_file(tmp_path, df) == tmp_path / "sub" / "app.Dockerfile.dockerignore"


def test_exception_naming_an_ancestor() -> None:
    mt = m("docs/sub", "!docs")
    assert not mt.is_excluded("docs/sub/x")
    mt = m("*", "!src")
    assert mt.is_excluded("README") and not mt.is_excluded("src/a/b.go")
    assert mt.could_reinclude("src") and not mt.could_reinclude("other")
