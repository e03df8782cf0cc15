"""Console scripts that start the interpreter without `site`: `python -m dockyard.fastscripts`.

Why: `pip` writes `dockyard` and `dockyard-runtime` as `#!/venv/bin/python` scripts, so every
command first runs `site` (site-packages, every `.pth` file, `os`): ~5 ms of a ~15 ms interpreter
start on these machines, and both commands are benchmarked against Go programs. pip cannot write
interpreter flags into a shebang (it replaces the whole first line), so `scripts/setup.sh` runs
this module after `pip install` to rewrite the two scripts as `#!<python> -S` with the package's
directory appended to `sys.path`. Nothing else changes: the launcher's hand-off to a command server
imports only built-ins, the runtime only the standard library and this package, and whatever
runs in-process with the whole CLI first calls `site.main()` (`dockyard.launcher.full_site`), so
third-party packages are found exactly as before.

A plain `pip install` without this step keeps pip's scripts, which work the same, only slower.
Running it again is harmless (the scripts are rewritten in place, atomically).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

# console script name -> (module, function); the same entry points as pyproject's [project.scripts]
SCRIPTS = {
    "dockyard": ("dockyard.launcher", "main"),
    "dockyard-runtime": ("dockyard.runtime.cli", "main"),
}

MARKER = "# written by dockyard.fastscripts"


def package_parent() -> str:
    """The directory that holds the `dockyard` package (src/ for an editable install)."""
    return str(Path(__file__).resolve().parent.parent)


def script_text(python: str, module: str, function: str, path_entry: str) -> str:
    # A directory that holds only this project (src/ of an editable install) goes first, so
    # that importing `dockyard` scans no standard-library directory; a shared one (say,
    # site-packages) goes last, where `site` would have put it.
    alone = all(n.startswith(("dockyard", ".")) for n in os.listdir(path_entry))
    add = f"sys.path.insert(1, {path_entry!r})" if alone else f"sys.path.append({path_entry!r})"
    return (
        f"#!{python} -S\n"
        f"{MARKER}: started without `site` (see that module)\n"
        "import sys\n"
        f"{add}\n"
        f"from {module} import {function}\n"
        f"sys.exit({function}())\n"
    )


def install(bin_dir: str, python: str) -> list[str]:
    """Write the fast scripts into `bin_dir`; the paths written."""
    written = []
    entry = package_parent()
    for name, (module, function) in SCRIPTS.items():
        path = os.path.join(bin_dir, name)
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "w") as f:
            f.write(script_text(python, module, function, entry))
        os.chmod(tmp, 0o755)
        os.replace(tmp, path)
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m dockyard.fastscripts", description=__doc__)
    ap.add_argument(
        "--bin", default=os.path.dirname(sys.executable), help="directory of the console scripts"
    )
    ap.add_argument("--python", default=sys.executable, help="interpreter for the shebang")
    args = ap.parse_args(argv)
    for path in install(args.bin, args.python):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
