"""The worker side of the command server: a process forked from `server.Server` for one
command, turned into that command's process.

Responsibility: `run_worker` drops every descriptor of the server, takes the caller's stdin,
stdout and stderr, environment, working directory, umask and argv, runs `dockyard.cli.main`
and reports the exit code to the caller as soon as the command is done.

A *spare* (`run_spare`) is a worker forked ahead of time: it rehearses the common start path
(so its fork and first-touch page faults are paid before any command arrives), then waits in
`accept` on the server's socket itself, hands the connection to the server (to watch the
caller and report the exit code) and becomes the command's worker.

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
from collections.abc import Callable

from dockyard.launcher import PROTOCOL

MAX_REQUEST = 4 << 20


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


def same_interpreter(executable: str) -> bool:
    """Whether a caller's `sys.executable` is ours: the same path, or another name for the same
    binary in the same directory (a venv's `python` and `python3`); another venv is not."""
    if executable == sys.executable:
        return True
    return os.path.dirname(executable) == os.path.dirname(sys.executable) and (
        os.path.realpath(executable) == os.path.realpath(sys.executable)
    )


def peer_is_us(conn: socket.socket) -> bool:
    """Whether the caller runs with our uid (SO_PEERCRED: the kernel's word, not the caller's)."""
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12)
    return int.from_bytes(creds[4:8], sys.byteorder) == os.geteuid()


def decode_request(body: bytes) -> list[str]:
    """The request's fields (see `launcher.encode_request`); ValueError when it is not one."""
    fields = body.split(b"\0")
    if fields[0] != PROTOCOL or len(fields) < 5:
        raise ValueError("protocol")
    return [f.decode("utf-8", "surrogateescape") for f in fields]


def read_request(conn: socket.socket) -> tuple[bytes, list[int]]:
    import array

    fds = array.array("i")
    msg, anc, _flags, _addr = conn.recvmsg(65536, socket.CMSG_LEN(3 * fds.itemsize))
    for level, kind, data in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(data[: len(data) - (len(data) % fds.itemsize)])
    got = list(fds)
    try:
        if len(msg) < 4 or len(got) != 3:
            raise ValueError("bad request")
        size = int.from_bytes(msg[:4], "big")
        if size > MAX_REQUEST:
            raise ValueError("request too large")
        body = msg[4:]
        while len(body) < size:
            chunk = conn.recv(min(65536, size - len(body)))
            if not chunk:
                raise ValueError("short request")
            body += chunk
    except BaseException:
        for fd in got:
            os.close(fd)
        raise
    return body, got


REFUSED, STALE = "refused", "stale"


def intake(conn: socket.socket, stale: Callable[[], bool]) -> tuple[list[str], list[int]] | str:
    """Read one request from an accepted caller: its fields and the caller's stdio fds, to
    serve it; or, after answering `R` (run it yourself) and closing the connection and the
    fds, REFUSED (no request we can serve: malformed, another interpreter) or STALE (our code
    changed on disk)."""
    conn.settimeout(5.0)
    try:
        body, fds = read_request(conn)
    except (OSError, ValueError):
        conn.close()
        return REFUSED
    try:
        text = decode_request(body)
    except ValueError:
        text = []
    verdict = STALE if text and stale() else "" if text and same_interpreter(text[1]) else REFUSED
    if verdict:
        with contextlib.suppress(OSError):
            conn.sendall(b"R\n")
        conn.close()
        for fd in fds:
            _close_quietly(fd)
        return verdict
    conn.settimeout(None)
    return text, fds


def run_spare(
    root: str,
    listener: socket.socket,
    notify: socket.socket,
    stale: Callable[[], bool],
    others: list[socket.socket],
    private: list[int],
) -> int:
    """In a spare just forked from the server: drop the server's descriptors (but `listener`
    and `notify`), rehearse, then take the next caller ourselves. Tells the server on `notify`:
    `T` with the connection's fd (taken: we are its worker now) or `S` (the code is stale: the
    caller was told to run the command itself). Returns the exit code to leave with."""
    from dockyard.linux.kernel import PR_SET_PDEATHSIG, RealKernel

    server = os.getppid()
    kernel = RealKernel()
    kernel.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)  # a spare never outlives its server
    if os.getppid() != server:
        return 0
    signal.set_wakeup_fd(-1)
    for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(sig, signal.SIG_DFL)
    for other in others:
        other.close()
    for fd in private:
        _close_quietly(fd)
    with contextlib.suppress(OSError):
        os.nice(10)  # the command running now comes first
    from dockyard.cli.server_preload import rehearse
    from dockyard.container.prefork import make_ready

    # The next `run`'s supervisor, forked now and warmed up while nobody waits (taken by
    # `cli._early`; other commands let it go); our rehearsal after the fork then pays this
    # process's copy-on-write faults ahead too.
    with contextlib.suppress(OSError):
        make_ready(root, (listener.fileno(), notify.fileno()))
    rehearse(root)
    with contextlib.suppress(OSError):
        os.setpriority(os.PRIO_PROCESS, 0, 0)
    while True:
        try:
            conn, _ = listener.accept()
        except InterruptedError:
            continue
        except OSError:
            return 0
        if not peer_is_us(conn):
            conn.close()
            continue
        got = intake(conn, stale)
        if got == STALE:
            notify.sendall(b"S")
            return 0
        if isinstance(got, str):
            continue
        text, fds = got
        notify.sendmsg(
            [b"T"],
            [(socket.SOL_SOCKET, socket.SCM_RIGHTS, conn.fileno().to_bytes(4, sys.byteorder))],
        )
        notify.close()
        kernel.prctl(PR_SET_PDEATHSIG, 0)  # a worker finishes its command as forked ones do
        try:
            conn.sendall(f"P{os.getpid()}\n".encode())
        except OSError:
            return 1
        return run_worker(conn, text, fds, listener, [], [])
