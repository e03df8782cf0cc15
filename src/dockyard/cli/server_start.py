"""Starting a command server in the background (the launcher's side, see `server`).

Responsibility: after a command ran in its own process, `maybe_start(root)` starts a server
for the state root if the root was used recently too; `spawn_detached` starts one.
Only `os`, `sys` and `time` are imported: this runs at the end of an in-process command.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time

WARM_AFTER = 600.0  # a second in-process command within this many seconds starts a server


def maybe_start(root: str) -> None:
    """After an in-process command: start a server for `root` if this root was used recently
    too (`<root>/cli.used`), so a root used once (a script's scratch root, a test's temp
    root) never costs a server's start-up (~0.4 s of CPU)."""
    marker = os.path.join(root, "cli.used")
    try:
        recent = time.time() - os.stat(marker).st_mtime < WARM_AFTER
    except OSError:
        recent = False
    try:
        os.close(os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600))
        os.utime(marker)
    except OSError:
        return  # no root (the command failed early) or not ours to write
    if recent:
        spawn_detached(root)


def spawn_detached(root: str) -> None:
    """Start a server for `root` in the background (best effort; returns at once).

    fork + exec, not posix_spawn: glibc's posix_spawn sets the C library's internal signals
    (32, 33) to SIG_IGN in the child, the server's children would inherit that through execve,
    and Python cannot reset them — containers would start with signal 32 ignored."""
    if not os.path.isdir(root):
        return
    env = dict(os.environ)
    env.pop("DOCKYARD_DEBUG", None)
    argv = [sys.executable, "-m", "dockyard.cli.server", "--root", os.path.abspath(root)]
    try:
        pid = os.fork()
    except OSError:
        return
    if pid == 0:
        try:
            os.setsid()
            if os.fork() == 0:  # not a session leader, and not our child: init reaps it
                fd = os.open(os.devnull, os.O_RDWR)
                for i in (0, 1, 2):
                    os.dup2(fd, i)
                os.execve(sys.executable, argv, env)
        finally:
            os._exit(0)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)
