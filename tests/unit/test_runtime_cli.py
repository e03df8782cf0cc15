"""dockyard-runtime's command line: parsing, exit codes, `spec`, errors (no root needed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dockyard.runtime import cli
from dockyard.runtime.spec import check


def test_parse_globals_command_and_flags() -> None:
    glob, command, opts, args = cli.parse(
        ["--root", "/r", "--log=/l", "--log-format", "json", "--debug",
         "create", "-b", "/b", "--pid-file=/p", "c1"]
    )  # fmt: skip
    assert glob["root"] == "/r" and glob["log"] == "/l" and glob["log_format"] == "json"
    assert glob["debug"] is True
    assert command == "create" and args == ["c1"]
    assert opts["bundle"] == "/b" and opts["pid_file"] == "/p"


def test_exec_stops_option_parsing_at_the_command() -> None:
    _, command, opts, args = cli.parse(["exec", "-e", "A=1", "-t", "c1", "ls", "-l", "/"])
    assert command == "exec" and args == ["c1", "ls", "-l", "/"]
    assert opts["env"] == ["A=1"] and opts["tty"] is True


def test_signals_by_name_and_number() -> None:
    assert cli.parse_signal("KILL") == cli.parse_signal("SIGKILL") == cli.parse_signal("9") == 9
    assert cli.parse_signal("term") == 15
    with pytest.raises(cli.Usage):
        cli.parse_signal("NOPE")


def test_usage_errors_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--bogus"]) == 1
    assert cli.main(["frobnicate", "x"]) == 1
    assert cli.main([]) == 1
    assert "usage" in capsys.readouterr().err


def test_unknown_container_exits_1_and_logs_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "log.json"
    code = cli.main(
        ["--root", str(tmp_path), "--log", str(log), "--log-format", "json", "state", "nope"]
    )
    assert code == 1
    assert "does not exist" in capsys.readouterr().err
    entry = json.loads(log.read_text().splitlines()[0])
    assert entry["level"] == "error" and "nope" in entry["msg"]


def test_spec_writes_a_valid_config_once(tmp_path: Path) -> None:
    assert cli.main(["spec", "--bundle", str(tmp_path)]) == 0
    check(json.loads((tmp_path / "config.json").read_text()))
    assert cli.main(["spec", "--bundle", str(tmp_path)]) == 1


def test_list_of_empty_root(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--root", str(tmp_path), "list", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_cli_module_imports_little() -> None:
    import subprocess
    import sys

    code = (
        "import sys, dockyard.runtime.cli;"
        "print(sorted(m for m in sys.modules if m.startswith('dockyard')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['dockyard', 'dockyard.runtime', 'dockyard.runtime.cli']"


def test_run_path_modules_avoid_slow_stdlib_imports() -> None:
    """The runtime's own run path must not import typing, pathlib, enum, re, dataclasses,
    contextlib or json (each costs milliseconds of `dockyard-runtime run`)."""
    import subprocess
    import sys

    code = (
        "import sys, dockyard.runtime.cli, dockyard.runtime.native, dockyard.runtime.init;"
        "print(sorted(m for m in ('typing', 'pathlib', 'enum', 're', 'dataclasses',"
        " 'contextlib', 'json', 'signal') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
