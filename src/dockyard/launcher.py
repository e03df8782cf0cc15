"""The `dockyard` command's entry point: hand the command to a warm command server, or run it here.

Why: a fresh interpreter that imports what `dockyard run` needs takes ~60 ms on these machines
before it does any work; a fork of a process that has already imported it all takes ~1 ms. So,
like Gradle's daemon or Python's own forkserver, a per-state-root *command server*
(`dockyard.cli.server`) keeps a warmed-up interpreter; this launcher sends it the command line,
environment, working directory and umask, and passes the caller's own stdin, stdout and stderr
(SCM_RIGHTS), so the command reads and writes exactly the files, pipes or terminal it would have
used here. The server forks one worker per command; the worker runs the ordinary CLI.

The server holds no state (Dockyard stays daemonless: every fact is on disk under the state root);
it is a cache of imported modules. Without it everything works the same, only slower: when there
is no server (or `DOCKYARD_SERVER=0`), the command runs in this process and, afterwards, if the
same state root was used in the last ten minutes too, a server is started in the background for
the next command (`server_start.maybe_start`; never when `DOCKYARD_SERVER=0`).

Signals: SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2 and SIGWINCH that reach this process are
forwarded to the worker. If this process dies, the server kills the worker (SIGKILL), as the
command would have died with it. The exit code is the worker's (128+N if signal N killed it).

Invariants: before it knows whether a server answers, this module imports only `posix`, `sys`,
`_socket` and `_signal` (built in, or one small extension) — not even `os` — so the hand-off costs
about one bare interpreter start (`dockyard.fastscripts` also spares it `site`); any failure to
reach a server falls back to the in-process CLI before the command has begun.
"""

import posix
import sys

PROTOCOL = b"DY1"
FORWARDED = ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGWINCH")
DEFAULT_ROOT = "/var/lib/dockyard"
SOCKET_NAME = "cli.sock"


def state_root(argv: list[str]) -> str:
    """The state root the command line names (`--root` among the global flags), else
    `DOCKYARD_ROOT`, else the default — as `dockyard.config.Config.load` decides."""
    root = None
    i = 0
    while i < len(argv) and argv[i].startswith("-"):
        a = argv[i]
        if a == "--root" and i + 1 < len(argv):
            root = argv[i + 1]
            i += 2
            continue
        if a.startswith("--root="):
            root = a.split("=", 1)[1]
        i += 1
    return root or _env("DOCKYARD_ROOT") or DEFAULT_ROOT


def _environ() -> dict[bytes, bytes]:
    """The environment as bytes: `os.environb` when `os` is loaded (a program that calls
    `main(args)` may have changed `os.environ`; `posix.environ` is the start-up copy), else
    `posix.environ` (the console script: nothing changed it)."""
    os_mod = sys.modules.get("os")
    return os_mod.environb if os_mod is not None else posix.environ


def _env(name: str) -> str | None:
    value = _environ().get(name.encode())
    return None if value is None else value.decode("utf-8", "surrogateescape")


def server_enabled() -> bool:
    return (_env("DOCKYARD_SERVER") or "1").lower() not in ("0", "false", "no", "off")


def encode_request(argv: list[str]) -> bytes:
    """The request body: NUL-separated fields (version, executable, cwd, umask, argv count,
    argv, environment entries), each field UTF-8 with surrogateescape (any bytes round-trip)."""
    umask = posix.umask(0o022)
    posix.umask(umask)
    fields = [
        PROTOCOL.decode(),
        sys.executable,
        posix.getcwd(),
        str(umask),
        str(len(argv)),
        *argv,
    ]
    head = [f.encode("utf-8", "surrogateescape") for f in fields]
    return b"\0".join(head + [k + b"=" + v for k, v in _environ().items()])


def main(args: list[str] | None = None) -> int:
    """The console script (`args` None: exits the process as soon as the server's worker is
    done), or a call with explicit arguments (returns the exit code)."""
    argv = sys.argv[1:] if args is None else list(args)
    if not server_enabled():
        return _in_process(argv, spawn=None)
    root = state_root(argv)
    path = (root if root.startswith("/") else f"{posix.getcwd()}/{root}").rstrip("/")
    path = f"{path}/{SOCKET_NAME}"
    rc = _via_server(path, argv)
    if rc is not None:
        if args is None:
            _exit_now(rc)
        return rc
    return _in_process(argv, spawn=root)


def _exit_now(code: int) -> None:
    """Exit at once: an interpreter's orderly teardown costs milliseconds per command and this
    process has nothing to clean up (the worker flushed the command's output itself)."""
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        return  # let the normal exit report it
    posix._exit(code)


def full_site() -> None:
    """Finish the interpreter's start-up that a `-S` script skipped (`dockyard.fastscripts`):
    site-packages and `.pth` files, before anything that may need a third-party package."""
    if sys.flags.no_site and "site" not in sys.modules:
        import site

        site.main()


def _in_process(argv: list[str], spawn: str | None) -> int:
    full_site()
    from dockyard.cli import main as cli_main

    try:
        return cli_main(argv)
    finally:
        if spawn is not None:
            from dockyard.cli.server_start import maybe_start

            maybe_start(spawn)


def _via_server(path: str, argv: list[str]) -> int | None:
    """Run the command in the server's worker; None when no server takes it (nothing has
    happened yet: the caller runs it in-process)."""
    import _socket

    if len(path.encode()) >= 108:  # sun_path: such a root gets no server
        return None
    s = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        s.connect(path)
        body = encode_request(argv)
        fds = b"".join(fd.to_bytes(4, sys.byteorder) for fd in _stdio())
        head = len(body).to_bytes(4, "big")
        s.sendmsg([head + body], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, fds)])
        reply = _Lines(s)
        first = reply.next()
    except OSError:
        s.close()
        return None
    if not first.startswith(b"P"):  # "R": the server is stale or busy elsewhere — run here
        s.close()
        return None
    pid = int(first[1:])
    _forward_signals(pid)
    try:
        while True:
            line = reply.next()
            if line.startswith(b"X"):
                return int(line[1:])
            if not line:
                sys.stderr.write("dockyard: the command server went away\n")
                return 125
    finally:
        s.close()


def _stdio() -> list[int]:
    """fds 0-2, with /dev/null standing in for a closed one."""
    out = []
    for fd in (0, 1, 2):
        try:
            posix.fstat(fd)
            out.append(fd)
        except OSError:
            out.append(posix.open("/dev/null", posix.O_RDWR))
    return out


class _Lines:
    def __init__(self, s: object) -> None:
        self.s = s
        self.buf = b""

    def next(self) -> bytes:
        """The next line (without newline); b"" at end of stream."""
        while b"\n" not in self.buf:
            data = self.s.recv(4096)  # type: ignore[attr-defined]
            if not data:
                return b""
            self.buf += data
        line, _, self.buf = self.buf.partition(b"\n")
        return line


def _forward_signals(pid: int) -> None:
    import _signal  # type: ignore[import-not-found]

    def forward(signum: int, _frame: object) -> None:
        try:  # noqa: SIM105 - contextlib is not imported on this path
            posix.kill(pid, signum)
        except OSError:
            pass

    for name in FORWARDED:
        _signal.signal(getattr(_signal, name), forward)
