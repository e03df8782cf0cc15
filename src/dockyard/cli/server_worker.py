"""The worker side of the command server: a process forked from `server.Server` for one
command, turned into that command's process.

Responsibility: `run_worker` drops every descriptor of the server, takes the caller's stdin,
stdout and stderr, environment, working directory, umask and argv, runs `dockyard.cli.main`
and reports the exit code to the caller as soon as the command is done.

Invariants: processes the command forks (a container's supervisor, a container) keep none of
the server's descriptors nor the caller's connection; what a normal interpreter exit does that
matters (threads joined, atexit, flushed streams) is done before the exit code is reported.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys


def run_worker(
    conn: socket.socket,
    text: list[str],
    fds: list[int],
    listener: socket.socket,
    others: list[socket.socket],
    private: list[int],
) -> int:
    """In a worker just forked from the server: close the server's descriptors (`listener`,
    the `others` callers' connections, its `private` fds), become the caller's command
    (`text`: the decoded request; `fds`: the caller's stdin/stdout/stderr), run it, and
    return its exit code."""
    signal.set_wakeup_fd(-1)
    for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    # Our own copy of the connection, to report the exit code the moment the command is
    # done (the server reports it again after reaping us; the caller takes the first).
    # Processes the command forks (a supervisor, a container) must not keep it open.
    report = os.dup(conn.fileno())
    held = [report]  # in a child: closed once, then forgotten (the number may be reused)

    def drop() -> None:
        if held[0] >= 0:
            _close_quietly(held[0])
            held[0] = -1

    os.register_at_fork(after_in_child=drop)
    conn.close()
    listener.close()
    for other in others:
        other.close()
    for fd in private:
        if fd >= 0:
            with contextlib.suppress(OSError):
                os.close(fd)
    for target, fd in enumerate(fds[:3]):
        os.dup2(fd, target)
    for fd in fds:
        if fd > 2:
            os.close(fd)
    cwd, umask, argc = text[2], int(text[3]), int(text[4])
    argv = text[5 : 5 + argc]
    env = dict(e.split("=", 1) for e in text[5 + argc :] if "=" in e)
    os.environ.clear()
    os.environ.update(env)
    os.umask(umask)
    try:
        os.chdir(cwd)
    except OSError as e:
        os.write(2, f"dockyard: cannot enter {cwd}: {e.strerror}\n".encode())
        return 125
    sys.argv = ["dockyard", *argv]
    sys.stdin = open(0, encoding="utf-8", closefd=False)  # noqa: SIM115
    sys.stdout = open(1, "w", 1 if os.isatty(1) else -1, "utf-8", closefd=False)  # noqa: SIM115
    sys.stderr = open(2, "w", 1, "utf-8", "backslashreplace", closefd=False)  # noqa: SIM115
    from dockyard.cli import main

    code = 0
    try:
        code = main(argv)
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        if not isinstance(e.code, int) and e.code is not None:
            sys.stderr.write(f"{e.code}\n")
    except KeyboardInterrupt:
        code = 130
    finally:
        _finish()
    with contextlib.suppress(OSError):
        os.write(report, f"X{code}\n".encode())
    return code


def _close_quietly(fd: int) -> None:
    with contextlib.suppress(OSError):
        os.close(fd)


def _finish() -> None:
    """What a normal interpreter exit does that matters: join threads, run atexit, flush."""
    import atexit

    threading = sys.modules.get("threading")
    shutdown = getattr(threading, "_shutdown", None)
    if shutdown is not None:
        with contextlib.suppress(Exception):
            shutdown()
    with contextlib.suppress(Exception):
        atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
