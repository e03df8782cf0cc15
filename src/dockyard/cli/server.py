"""The command server: a warmed-up interpreter that forks one worker per `dockyard` command.

Responsibility: `serve(root)` imports the engine and the CLI's commands once, builds their
argument parsers, then accepts requests from `dockyard.launcher` on `<root>/cli.sock`. For each it
forks a worker that takes the caller's stdin/stdout/stderr (passed as fds), argv, environment,
working directory and umask, runs `dockyard.cli.main` exactly as the launcher would have in its own
process, and exits with its code; the server reports `P<pid>` when the worker exists and
`X<code>` when it has exited. A caller that goes away gets its worker killed (SIGKILL).
One worker is forked ahead of time, as a *spare*: it rehearses the common path, then accepts
the next caller itself (the server stops accepting while a spare waits) and passes the
connection back, so a command pays neither the fork nor most first-touch page faults
(`DOCKYARD_SERVER_SPARE=0`: no spare). The next spare is forked once the commands running
have finished, or `SPARE_DELAY` after the latest one began, whichever comes first: forked at
once, it (and the supervisor and namespaces it makes ahead) took CPU from the command it was
meant to help, ~6 ms of a `run --rm` on two cores (A/B in benchmarks/README.md). The
worker's side is `server_worker`, the one-time warm-up `server_preload`, and starting a server
in the background `server_start`.

Invariants:
- Stateless: no database connection, lock or engine object is ever opened here (a fork must not
  copy an open SQLite connection; see `ContainerService.close_db`). Workers open their own.
- Single-threaded, so a worker may fork and clone freely (the runtime's requirement).
- A worker keeps none of the server's descriptors (socket, lock, wake-up pipe, other callers'
  connections), so a container's supervisor forked from it never pins the server's lock.
- Never stale: before each fork the server checks that no loaded Dockyard source file changed
  and that the caller runs the same interpreter; otherwise it answers `R` (run it yourself),
  removes its socket and exits; the launcher runs the command in-process and starts a new one.
- One server per state root (an flock on `<root>/cli.lock`); the socket is bound under a
  temporary name and renamed into place, mode 0600, and only callers with our uid are served.
- It exits after `DOCKYARD_SERVER_IDLE` seconds without a command (default 600), on SIGTERM,
  when its socket file is removed or replaced (say, with the whole state root), and when the
  process named by `DOCKYARD_SERVER_OWNER` exits (test sessions use this).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import select
import signal
import socket
import sys
import time

from dockyard.cli.server_preload import package_dirs, preload, stamp, threads, unchanged
from dockyard.cli.server_start import maybe_start, spawn_detached
from dockyard.cli.server_worker import STALE, intake, peer_is_us, run_spare, run_worker
from dockyard.launcher import SOCKET_NAME
from dockyard.linux.inotify import ChangeWatch

__all__ = ["Server", "maybe_start", "preload", "serve", "spawn_detached"]

IDLE_DEFAULT = 600.0
REACHABLE_CHECK = 5.0  # seconds between checks that our socket file still exists
SPARE_FAILURES = 3  # spares that die young before we stop making them
SPARE_DELAY = 0.25  # seconds after a command began before its successor's spare is forked


class Server:
    def __init__(self, root: str) -> None:
        self.root = root
        self.path = os.path.join(root, SOCKET_NAME)
        self.lock_fd = -1
        self.sock: socket.socket | None = None
        self.sock_ino = 0
        self.workers: dict[int, socket.socket] = {}  # worker pid -> its caller's connection
        self.stamp: dict[str, tuple[int, int]] = {}
        self.spare: tuple[int, socket.socket] | None = None  # (pid, our end of its socket)
        self.spare_born = 0.0
        self.busy_since = 0.0  # when the latest command began (see SPARE_DELAY)
        self.spare_failures = 0
        self.spares = os.environ.get("DOCKYARD_SERVER_SPARE", "1") != "0"
        self.watch: ChangeWatch | None = None
        self.idle = float(os.environ.get("DOCKYARD_SERVER_IDLE") or IDLE_DEFAULT)
        owner = os.environ.get("DOCKYARD_SERVER_OWNER")
        self.owner_fd = -1
        if owner:
            try:
                self.owner_fd = os.pidfd_open(int(owner))
            except (OSError, ValueError):
                self.owner_fd = -2  # the owner is gone already

    def lock(self) -> bool:
        self.lock_fd = os.open(
            os.path.join(self.root, "cli.lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600
        )
        try:
            fcntl.flock(self.lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        # the pid file names us from now on (while we load, too): SIGTERM stops a server
        # at any stage, and `close` removes the file only while it is still ours
        with open(os.path.join(self.root, "cli.pid"), "w") as f:
            f.write(f"{os.getpid()}\n")
        return True

    def bind(self) -> None:
        tmp = f"{self.path}.{os.getpid()}"
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)
        try:
            s.bind(tmp)
        finally:
            os.umask(old)
        s.listen(128)
        os.rename(tmp, self.path)
        self.sock = s
        self.sock_ino = os.stat(self.path).st_ino

    def close(self) -> None:
        self._unlink_own()
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def _reachable(self) -> bool:
        """Whether callers can still find us: our socket file is where we bound it."""
        assert self.sock is not None
        try:
            return os.stat(self.path).st_ino == self.sock_ino
        except OSError:
            return False

    def _unlink_own(self) -> None:
        """Remove the socket and pid file if they are still ours (a newer server may have
        replaced them)."""
        pidfile = os.path.join(self.root, "cli.pid")
        try:
            with open(pidfile) as f:
                ours = int(f.read().strip() or 0) == os.getpid()
        except (OSError, ValueError):
            ours = False
        if ours:
            for p in (self.path, pidfile):
                with contextlib.suppress(OSError):
                    os.unlink(p)

    def loop(self) -> None:
        assert self.sock is not None
        wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        stop = []
        signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
        signal.signal(signal.SIGINT, lambda *_: stop.append(1))
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        self.stamp = stamp() if self.watch is None else {}  # the fallback's baseline
        self.private = [self.lock_fd, wake_r, wake_w, self.owner_fd]
        if self.watch is not None:
            self.private.append(self.watch.fd)
        poll = select.poll()
        poll.register(self.sock.fileno(), select.POLLIN)
        poll.register(wake_r, select.POLLIN)
        if self.owner_fd >= 0:
            poll.register(self.owner_fd, select.POLLIN)
        elif self.owner_fd == -2:
            return
        conns: dict[int, tuple[int, socket.socket]] = {}  # conn fd -> (worker pid, conn)
        last = time.monotonic()
        while not stop:
            self._ensure_spare(poll)
            idle_left = last + self.idle - time.monotonic()
            timeout = min(REACHABLE_CHECK, max(0.0, idle_left), self._spare_due())
            events = poll.poll(int(timeout * 1000) + 1)
            if not events and not self.workers and time.monotonic() - last >= self.idle:
                break
            if not events and not self._reachable():
                break  # our socket is gone (the state root was removed): nobody can call
            for fd, _ev in events:
                if fd == wake_r:
                    with contextlib.suppress(BlockingIOError):
                        os.read(wake_r, 4096)
                elif fd == self.owner_fd:
                    stop.append(1)
                elif self.spare is not None and fd == self.spare[1].fileno():
                    if not self._from_spare(poll, conns):
                        stop.append(1)  # stale: the spare answered "R"
                        break
                    last = self.busy_since = time.monotonic()
                elif fd == self.sock.fileno():
                    conn = self._accept()
                    if conn is None:
                        continue
                    pid = self._fork(conn)
                    if pid == 0:
                        stop.append(1)  # stale: answered "R"
                        break
                    if pid > 0:
                        self.workers[pid] = conn
                        conns[conn.fileno()] = (pid, conn)
                        poll.register(conn.fileno(), select.POLLIN)
                    last = self.busy_since = time.monotonic()
                elif fd in conns:  # the caller hung up (or wrote something): kill the worker
                    pid, conn = conns[fd]
                    try:
                        gone = not conn.recv(64, socket.MSG_DONTWAIT)
                    except BlockingIOError:
                        gone = False
                    except OSError:
                        gone = True
                    if gone:
                        poll.unregister(fd)
                        with contextlib.suppress(ProcessLookupError):
                            os.kill(pid, signal.SIGKILL)
            self._reap(conns, poll)
            if self.workers:
                last = time.monotonic()
        self._drop_spare()
        self.close()
        # Workers still running finish on their own; their callers get the exit code only
        # while we live, so wait for them — woken by SIGCHLD alone (a caller that hung up
        # would make its connection readable forever).
        quiet = select.poll()
        quiet.register(wake_r, select.POLLIN)
        while self.workers:
            quiet.poll(1000)
            with contextlib.suppress(BlockingIOError):
                os.read(wake_r, 4096)
            self._reap(conns, poll)

    def _reap(self, conns: dict[int, tuple[int, socket.socket]], poll: select.poll) -> None:
        while True:  # workers, and spares that died or were dropped
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                self.workers.clear()
                return
            if pid == 0:
                return
            conn = self.workers.pop(pid, None)
            if conn is None:
                continue
            code = os.waitstatus_to_exitcode(status)
            code = 128 - code if code < 0 else code
            with contextlib.suppress(OSError):
                conn.sendall(f"X{code}\n".encode())
            fd = conn.fileno()
            with contextlib.suppress(KeyError, ValueError):
                poll.unregister(fd)
            conns.pop(fd, None)
            conn.close()

    def _spare_due(self) -> float:
        """Seconds until the next spare may be forked: 0 for now, REACHABLE_CHECK when none
        is wanted (one waits, spares are off, or they keep dying)."""
        if self.spare is not None or not self.spares or self.spare_failures >= SPARE_FAILURES:
            return REACHABLE_CHECK
        if not self.workers:
            return 0.0
        return max(0.0, self.busy_since + SPARE_DELAY - time.monotonic())

    def _ensure_spare(self, poll: select.poll) -> None:
        """Fork a spare worker unless one waits already (or spares keep dying). While it
        waits, the spare accepts callers, not us: our listening socket leaves the poll set."""
        if self.spare is not None or not self.spares or self.spare_failures >= SPARE_FAILURES:
            return
        if self._spare_due() > 0:
            return  # a command has just begun: it gets the CPU (SPARE_DELAY)
        assert self.sock is not None
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            pid = os.fork()
        except OSError:
            ours.close()
            theirs.close()
            self.spare_failures += 1
            return
        if pid == 0:
            code = 1
            try:
                ours.close()
                keep = self.watch.fd if self.watch is not None else -1  # the spare checks it
                others = list(self.workers.values())
                private = [fd for fd in self.private if fd != keep]
                code = run_spare(self.root, self.sock, theirs, self._stale, others, private)
            finally:
                os._exit(code)
        theirs.close()
        self.spare = (pid, ours)
        self.spare_born = time.monotonic()
        with contextlib.suppress(KeyError):
            poll.unregister(self.sock.fileno())
        poll.register(ours.fileno(), select.POLLIN)

    def _from_spare(self, poll: select.poll, conns: dict[int, tuple[int, socket.socket]]) -> bool:
        """The spare spoke or died: adopt the caller it took (its worker now), or note that
        the code is stale (False). We accept callers ourselves until the next spare waits."""
        assert self.spare is not None and self.sock is not None
        pid, ours = self.spare
        try:
            msg, anc, _flags, _addr = ours.recvmsg(16, socket.CMSG_LEN(4))
        except OSError:
            msg, anc = b"", []
        fds = [
            int.from_bytes(data[:4], sys.byteorder)
            for level, kind, data in anc
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS and len(data) >= 4
        ]
        poll.unregister(ours.fileno())
        ours.close()
        self.spare = None
        poll.register(self.sock.fileno(), select.POLLIN)
        if msg == b"T" and fds:
            conn = socket.socket(fileno=fds[0])
            self.workers[pid] = conn
            conns[conn.fileno()] = (pid, conn)
            poll.register(conn.fileno(), select.POLLIN)
            return True
        for fd in fds:
            os.close(fd)
        if msg == b"S":
            return False
        if time.monotonic() - self.spare_born < 2.0:  # died young: not forever
            self.spare_failures += 1
        return True

    def _stale(self) -> bool:
        """Whether a loaded Dockyard source file changed since we imported it."""
        if self.watch is not None:
            return self.watch.changed()
        return not unchanged(self.stamp)

    def _drop_spare(self) -> None:
        if self.spare is None:
            return
        pid, ours = self.spare
        self.spare = None
        ours.close()
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)

    def _accept(self) -> socket.socket | None:
        assert self.sock is not None
        try:
            conn, _ = self.sock.accept()
        except OSError:
            return None
        if not peer_is_us(conn):
            conn.close()
            return None
        return conn

    def _fork(self, conn: socket.socket) -> int:
        """Read the request and fork its worker; return the worker's pid, -1 when the request
        was refused, 0 when this server is stale (the caller was told to run it itself)."""
        got = intake(conn, self._stale)
        if got == STALE:
            self._unlink_own()
            return 0
        if isinstance(got, str):
            return -1
        text, fds = got
        try:
            pid = os.fork()
        except BaseException:
            for fd in fds:
                os.close(fd)
            conn.close()
            raise
        if pid == 0:
            code = 125
            try:
                assert self.sock is not None
                code = run_worker(
                    conn, text, fds, self.sock, list(self.workers.values()), self.private
                )
            except BaseException:  # a bug here, not in the command: say it where the caller sees
                import traceback

                with contextlib.suppress(BaseException):
                    os.write(2, traceback.format_exc().encode())
            finally:
                os._exit(code)
        for fd in fds:
            os.close(fd)
        try:
            conn.sendall(f"P{pid}\n".encode())
        except OSError:
            os.kill(pid, signal.SIGKILL)
        return pid


def serve(root: str) -> int:
    os.makedirs(root, mode=0o711, exist_ok=True)
    server = Server(root)
    if not server.lock():
        return 0  # another server runs for this root
    try:
        server.watch = ChangeWatch.open(package_dirs(), ".py")  # before the imports it guards
        preload()
        if threads() != 1:  # a library started threads: forking workers would not be safe
            sys.stderr.write("dockyard command server: not single-threaded after preload\n")
            return 1
        server.bind()
        server.loop()
    finally:
        server.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="python -m dockyard.cli.server")
    p.add_argument("--root", required=True)
    args = p.parse_args(argv)
    return serve(args.root)


if __name__ == "__main__":
    sys.exit(main())
