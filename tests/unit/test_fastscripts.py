"""The `-S` console scripts (`dockyard.fastscripts`): they start without `site` and still work,
including where the in-process CLI needs third-party packages."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from dockyard import fastscripts


def _install(tmp_path: Path) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    written = fastscripts.install(str(bin_dir), sys.executable)
    assert sorted(Path(p).name for p in written) == ["dockyard", "dockyard-runtime"]
    return bin_dir


def test_scripts_start_without_site(tmp_path: Path) -> None:
    bin_dir = _install(tmp_path)
    text = (bin_dir / "dockyard").read_text()
    assert text.startswith(f"#!{sys.executable} -S\n")
    assert fastscripts.package_parent() in text
    assert os.access(bin_dir / "dockyard", os.X_OK)


def test_runtime_script_runs_without_site(tmp_path: Path) -> None:
    bin_dir = _install(tmp_path)
    p = subprocess.run(
        [str(bin_dir / "dockyard-runtime"), "spec", "--bundle", str(tmp_path)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    assert '"ociVersion"' in (tmp_path / "config.json").read_text()


def test_in_process_cli_gets_the_full_site(tmp_path: Path) -> None:
    """No server: the whole CLI runs in the `-S` process, after `site.main()` (the launcher's
    `full_site`), so site-packages are importable as with pip's scripts."""
    bin_dir = _install(tmp_path)
    env = {**os.environ, "DOCKYARD_SERVER": "0"}
    p = subprocess.run(
        [str(bin_dir / "dockyard"), "--root", str(tmp_path / "root"), "images"],
        capture_output=True, text=True, timeout=60, env=env, check=False,
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    assert p.stdout.split()[:3] == ["REPOSITORY", "TAG", "IMAGE"]
    probe = (
        f"import sys\nsys.path.append({fastscripts.package_parent()!r})\n"
        "from dockyard import launcher\n"
        "assert 'site' not in sys.modules and 'os' not in sys.modules, sorted(sys.modules)\n"
        "launcher.full_site()\nimport jsonschema\nprint('ok')\n"
    )
    p = subprocess.run(
        [sys.executable, "-S", "-c", probe], capture_output=True, text=True, timeout=60,
        check=False,
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "ok"


def test_rewriting_is_idempotent(tmp_path: Path) -> None:
    bin_dir = _install(tmp_path)
    first = (bin_dir / "dockyard-runtime").read_text()
    fastscripts.install(str(bin_dir), sys.executable)
    assert (bin_dir / "dockyard-runtime").read_text() == first
    assert sorted(os.listdir(bin_dir)) == ["dockyard", "dockyard-runtime"]


def test_a_library_call_sends_the_environment_as_changed(monkeypatch: pytest.MonkeyPatch) -> None:
    """`launcher.main(args)` from a program that changed `os.environ` sends the changed
    environment (`posix.environ` is only the start-up copy)."""
    from dockyard import launcher

    monkeypatch.setenv("DOCKYARD_PROBE_ENV", "changed")
    body = launcher.encode_request(["ps"])
    assert b"\0DOCKYARD_PROBE_ENV=changed" in body
    assert launcher._env("DOCKYARD_PROBE_ENV") == "changed"
