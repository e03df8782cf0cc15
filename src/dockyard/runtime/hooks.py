"""OCI hooks (config.md, "POSIX-platform Hooks"): run a hook list with the state on stdin.

Responsibility: execute each hook of one kind in order — `path` with `args` (args[0] is argv[0]),
`env`, an optional `timeout` in seconds — writing the container's state JSON to its stdin.
Invariants: a failing or timed-out hook raises `FailedPrecondition` naming the hook kind and
path; callers decide whether that aborts (prestart, createRuntime, createContainer,
startContainer) or is only reported (poststart, poststop), as the spec says.
"""

from __future__ import annotations

import sys

from dockyard.errors import FailedPrecondition
from dockyard.runtime import jsonio

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (startup time)
if TYPE_CHECKING:
    from typing import Any

KINDS = (
    "prestart",
    "createRuntime",
    "createContainer",
    "startContainer",
    "poststart",
    "poststop",
)


def hooks_of(spec: dict[str, Any], *kinds: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for kind in kinds:
        found.extend((spec.get("hooks") or {}).get(kind) or [])
    return found


def run(kind: str, hooks: list[dict[str, Any]], state: dict[str, Any]) -> None:
    """Run `hooks` in order; raise on the first failure."""
    if not hooks:
        return
    import subprocess

    payload = jsonio.dumps(state).encode()
    for hook in hooks:
        path = hook["path"]
        argv = hook.get("args") or [path]
        env = dict(e.split("=", 1) for e in hook.get("env") or [] if "=" in e)
        try:
            proc = subprocess.run(
                argv,
                executable=path,
                input=payload,
                env=env,
                capture_output=True,
                timeout=hook.get("timeout"),
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise FailedPrecondition(
                f"{kind} hook {path} timed out after {hook.get('timeout')}s"
            ) from None
        except OSError as e:
            raise FailedPrecondition(f"{kind} hook {path}: {e.strerror}") from None
        if proc.returncode != 0:
            err = proc.stderr.decode(errors="replace").strip()
            raise FailedPrecondition(f"{kind} hook {path} exited with {proc.returncode}: {err}")


def run_reporting(kind: str, hooks: list[dict[str, Any]], state: dict[str, Any]) -> None:
    """Run hooks whose failure must not abort the operation (poststart, poststop): warn."""
    try:
        run(kind, hooks, state)
    except FailedPrecondition as e:
        print(f"dockyard-runtime: warning: {e}", file=sys.stderr)
