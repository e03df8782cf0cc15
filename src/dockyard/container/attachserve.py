"""The container's stdin and terminal size, served to `attach` (layer L4): the supervisor's
side of attaching.

The supervisor owns a running container's stdin: the write end of its pipe (`-i` with no CLI
attached at start, `Running.stdin_w`) or the pty master (`-t`). A `StdinRelay` listens on
`<dir>/attach.sock` (a unix stream socket, mode 0600) and copies the bytes of every connection
to the container's stdin, and, for `run -it`, those of the CLI's stdin too. With `-t` (with or
without `-i`) it also serves `<dir>/resize.sock` (a unix datagram socket, mode 0600): each
datagram is a terminal size as ASCII `b"ROWS COLS"` (`send_size`), which it sets on the pty
master (TIOCSWINSZ; the kernel then signals SIGWINCH to the container's foreground process
group) — the stdin stream stays raw bytes, no framing. It runs inside the
supervisor's select loop (`supervisor._pump`): every selector key it registers carries the
relay itself as its data, and the loop hands those events to `on_event`.

Invariants:
- The supervisor never blocks on the container's stdin: the writer is non-blocking, bytes it
  cannot take yet are kept, and the readers are paused (back-pressure on the clients) until it
  drains; a container that does not read its stdin never stalls the copying of its output.
- StdinOnce (`create -i`, `run -i` attached): when an attached client closes its input, the
  container's stdin is closed after what is pending (EOF), as Docker does; otherwise it stays
  open for the next client. A pty cannot be half-closed: with `-t` the stdin stays open.
- `close()` is idempotent; it unlinks the sockets and closes every fd the relay owns (the
  CLI's stdin and the pty master are not its own: it holds a dup of the master).
- A malformed or out-of-range resize message is dropped; resizing never blocks the loop and is
  not held back while the container's stdin is full.
- Socket paths go through /proc/self/fd/<dirfd>/, so a deep state root never exceeds the
  108-byte limit of a unix socket address.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import socket
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

SOCKET = "attach.sock"
RESIZE_SOCKET = "resize.sock"
_CHUNK = 65536
_T = TypeVar("_T")


def _at(directory: Path, fn: Callable[[str], _T], name: str = SOCKET) -> _T:
    """`fn(path of the socket `name` in directory)`, with a short path to it."""
    dfd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        return fn(f"/proc/self/fd/{dfd}/{name}")
    finally:
        os.close(dfd)


def connect(directory: Path) -> socket.socket | None:
    """A connection to the stdin of the container whose directory is `directory`, or None
    when nobody serves it (no `-i`, or the stdin belongs to the CLI that ran it)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        _at(directory, s.connect)
    except OSError:
        s.close()
        return None
    return s


def send_size(directory: Path, rows: int, cols: int) -> bool:
    """Ask the supervisor of the `-t` container in `directory` to set its terminal size to
    `rows` x `cols`; False when nobody serves it (no tty, not running) or it is busy."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
    try:
        s.setblocking(False)
        _at(directory, s.connect, RESIZE_SOCKET)
        s.send(f"{rows} {cols}".encode())
    except OSError:
        return False
    finally:
        s.close()
    return True


def for_run(
    directory: Path, run: Any, config: Mapping[str, Any], cli_stdin: int
) -> StdinRelay | None:
    """The relay for a container just started (`run`: a `running.Running`), or None when it
    has no tty and its stdin is not the supervisor's to feed (no `-i`, or the CLI's stdin is
    inherited)."""
    open_stdin = bool(config.get("OpenStdin"))
    if run.tty:  # served even without stdin: the terminal's size
        return StdinRelay(
            os.dup(run.stdout), directory, attach=open_stdin, tty=True, cli_stdin=cli_stdin
        )
    if run.stdin_w < 0:
        return None
    return StdinRelay(run.stdin_w, directory, once=bool(config.get("StdinOnce")))


class StdinRelay:
    """Copies attached clients' bytes to the container's stdin (`writer`, owned from now).

    `attach`: serve `directory/attach.sock`; `tty`: `writer` is a pty master, and sizes sent
    to `directory/resize.sock` are set on it."""

    def __init__(
        self,
        writer: int,
        directory: Path | None,
        *,
        attach: bool = True,
        tty: bool = False,
        cli_stdin: int = -1,
        once: bool = False,
    ) -> None:
        self._writer = writer
        if not tty or attach or cli_stdin >= 0:  # written to: never block (a tty for its
            os.set_blocking(writer, False)  # size alone keeps the pump's reads as they were)
        self._once = once
        self._eof_after_drain = False
        self._pending = b""
        self._paused = False
        self._sel: selectors.BaseSelector | None = None
        self._conns: dict[int, socket.socket] = {}
        self._cli_stdin = cli_stdin
        self._dir = directory
        self._listener: socket.socket | None = None
        self._resizer: socket.socket | None = None
        if directory is not None and attach:
            self._listener = _listen(directory)
        if directory is not None and tty:
            self._resizer = _listen(directory, RESIZE_SOCKET)

    # -- the select loop's side ---------------------------------------------------------

    def register(self, sel: selectors.BaseSelector) -> None:
        """Start serving in `sel` (the supervisor's loop for this run of the container)."""
        self._sel = sel
        for sock in (self._listener, self._resizer):
            if sock is not None:
                sel.register(sock, selectors.EVENT_READ, self)
        if self._cli_stdin >= 0:
            sel.register(self._cli_stdin, selectors.EVENT_READ, self)

    def on_event(self, fd: int, mask: int) -> None:
        if self._listener is not None and fd == self._listener.fileno():
            self._accept()
        elif self._resizer is not None and fd == self._resizer.fileno():
            self._resize(self._resizer)
        elif fd == self._writer and mask & selectors.EVENT_WRITE:
            self._flush()
        else:
            self._read(fd)

    def close(self) -> None:
        """Stop serving: unlink the sockets, close the connections and the writer."""
        for fd in [*self._readers(), self._writer]:
            self._unregister(fd)
        for sock in (self._listener, self._resizer):
            if sock is not None:
                self._unregister(sock.fileno())
        self._sel = None
        for sock, name in ((self._listener, SOCKET), (self._resizer, RESIZE_SOCKET)):
            if sock is None:
                continue
            sock.close()
            if self._dir is not None:
                with contextlib.suppress(OSError):
                    os.unlink(self._dir / name)
        self._listener = self._resizer = None
        for conn in self._conns.values():
            conn.close()
        self._conns.clear()
        self._cli_stdin = -1
        self._paused = False
        self._close_writer()

    # -- internals ------------------------------------------------------------------------

    def _readers(self) -> list[int]:
        return [*self._conns, *([self._cli_stdin] if self._cli_stdin >= 0 else [])]

    def _unregister(self, fd: int) -> None:
        if self._sel is not None and fd >= 0:
            with contextlib.suppress(KeyError, ValueError, RuntimeError):
                self._sel.unregister(fd)

    def _accept(self) -> None:
        assert self._listener is not None
        try:
            conn, _ = self._listener.accept()
        except OSError:
            return
        conn.setblocking(False)
        self._conns[conn.fileno()] = conn
        if self._sel is not None and not self._paused:
            self._sel.register(conn, selectors.EVENT_READ, self)

    def _resize(self, sock: socket.socket) -> None:
        """Apply the last well-formed size among the queued datagrams to the pty."""
        size = None
        while True:
            try:
                msg = sock.recv(64)
            except OSError:  # EAGAIN: all read
                break
            parts = msg.split()
            if len(parts) == 2 and all(p.isdigit() and int(p) < 65536 for p in parts):
                size = (int(parts[0]), int(parts[1]))
        if size is not None and self._writer >= 0:
            from dockyard.linux.pty import set_winsize

            with contextlib.suppress(OSError):
                set_winsize(self._writer, *size)

    def _read(self, fd: int) -> None:
        try:
            data = self._conns[fd].recv(_CHUNK) if fd in self._conns else os.read(fd, _CHUNK)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if data:
            self._pending += data
            self._flush()
            return
        self._unregister(fd)
        if fd == self._cli_stdin:
            self._cli_stdin = -1  # the CLI's: not closed here (a restart uses it again)
            return
        self._conns.pop(fd).close()
        if self._once:
            self._eof_after_drain = True
            self._flush()

    def _flush(self) -> None:
        while self._pending and self._writer >= 0:
            try:
                n = os.write(self._writer, self._pending[:_CHUNK])
            except BlockingIOError:
                break
            except OSError:  # EPIPE/EIO: the container's stdin is gone; drop the rest
                self._pending = b""
                self._close_writer()
                break
            self._pending = self._pending[n:]
        if self._writer < 0:
            self._pending = b""
        if self._pending and not self._paused:
            self._set_paused(True)
        elif not self._pending and self._paused:
            self._set_paused(False)
        if not self._pending and self._eof_after_drain:
            self._close_writer()

    def _set_paused(self, paused: bool) -> None:
        """Stop reading clients while the writer is full; wait for it to be writable."""
        self._paused = paused
        sel = self._sel
        if sel is None:
            return
        for fd in self._readers():
            if paused:
                self._unregister(fd)
            else:
                sel.register(fd, selectors.EVENT_READ, self)
        if paused:
            sel.register(self._writer, selectors.EVENT_WRITE, self)
        else:
            self._unregister(self._writer)

    def _close_writer(self) -> None:
        if self._writer < 0:
            return
        if self._paused:
            self._set_paused(False)
        self._unregister(self._writer)
        with contextlib.suppress(OSError):
            os.close(self._writer)
        self._writer = -1


def _listen(directory: Path, name: str = SOCKET) -> socket.socket | None:
    """A listening socket at `directory/name` (a stream socket for attach.sock, a datagram
    socket for resize.sock), mode 0600 from the start."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(directory / name)
    kind = socket.SOCK_STREAM if name == SOCKET else socket.SOCK_DGRAM
    s = socket.socket(socket.AF_UNIX, kind | socket.SOCK_CLOEXEC)
    old = os.umask(0o177)
    try:
        _at(directory, s.bind, name)
        if kind == socket.SOCK_STREAM:
            s.listen(8)
    except OSError:
        s.close()
        return None
    finally:
        os.umask(old)
    s.setblocking(False)
    return s
