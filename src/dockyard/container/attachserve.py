"""The container's stdin, served to `attach` (layer L4): the supervisor's side of attaching.

The supervisor owns a running container's stdin: the write end of its pipe (`-i` with no CLI
attached at start, `Running.stdin_w`) or the pty master (`-t`). A `StdinRelay` listens on
`<dir>/attach.sock` (a unix stream socket, mode 0600) and copies the bytes of every connection
to the container's stdin, and, for `run -it`, those of the CLI's stdin too. It runs inside the
supervisor's select loop (`supervisor._pump`): every selector key it registers carries the
relay itself as its data, and the loop hands those events to `on_event`.

Invariants:
- The supervisor never blocks on the container's stdin: the writer is non-blocking, bytes it
  cannot take yet are kept, and the readers are paused (back-pressure on the clients) until it
  drains; a container that does not read its stdin never stalls the copying of its output.
- StdinOnce (`create -i`, `run -i` attached): when an attached client closes its input, the
  container's stdin is closed after what is pending (EOF), as Docker does; otherwise it stays
  open for the next client. A pty cannot be half-closed: with `-t` the stdin stays open.
- `close()` is idempotent; it unlinks the socket and closes every fd the relay owns (the CLI's
  stdin and the pty master are not its own: it holds a dup of the master).
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
_CHUNK = 65536
_T = TypeVar("_T")


def _at(directory: Path, fn: Callable[[str], _T]) -> _T:
    """`fn(path of attach.sock in directory)`, with a short path to it."""
    dfd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        return fn(f"/proc/self/fd/{dfd}/{SOCKET}")
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


def for_run(
    directory: Path, run: Any, config: Mapping[str, Any], cli_stdin: int
) -> StdinRelay | None:
    """The relay for a container just started (`run`: a `service.Running`), or None when
    its stdin is not the supervisor's to feed (no `-i`, or the CLI's stdin is inherited)."""
    open_stdin = bool(config.get("OpenStdin"))
    if run.tty:
        if not open_stdin and cli_stdin < 0:
            return None
        return StdinRelay(
            os.dup(run.stdout),
            directory if open_stdin else None,
            cli_stdin=cli_stdin,
            once=False,
        )
    if run.stdin_w < 0:
        return None
    return StdinRelay(run.stdin_w, directory, once=bool(config.get("StdinOnce")))


class StdinRelay:
    """Copies attached clients' bytes to the container's stdin (`writer`, owned from now)."""

    def __init__(
        self, writer: int, directory: Path | None, *, cli_stdin: int = -1, once: bool = False
    ) -> None:
        self._writer = writer
        os.set_blocking(writer, False)
        self._once = once
        self._eof_after_drain = False
        self._pending = b""
        self._paused = False
        self._sel: selectors.BaseSelector | None = None
        self._conns: dict[int, socket.socket] = {}
        self._cli_stdin = cli_stdin
        self._dir = directory
        self._listener: socket.socket | None = None
        if directory is not None:
            self._listener = _listen(directory)

    # -- the select loop's side ---------------------------------------------------------

    def register(self, sel: selectors.BaseSelector) -> None:
        """Start serving in `sel` (the supervisor's loop for this run of the container)."""
        self._sel = sel
        if self._listener is not None:
            sel.register(self._listener, selectors.EVENT_READ, self)
        if self._cli_stdin >= 0:
            sel.register(self._cli_stdin, selectors.EVENT_READ, self)

    def on_event(self, fd: int, mask: int) -> None:
        if self._listener is not None and fd == self._listener.fileno():
            self._accept()
        elif fd == self._writer and mask & selectors.EVENT_WRITE:
            self._flush()
        else:
            self._read(fd)

    def close(self) -> None:
        """Stop serving: unlink the socket, close the connections and the writer."""
        for fd in [*self._readers(), self._writer]:
            self._unregister(fd)
        if self._listener is not None:
            self._unregister(self._listener.fileno())
        self._sel = None
        if self._listener is not None:
            self._listener.close()
            self._listener = None
            if self._dir is not None:
                with contextlib.suppress(OSError):
                    os.unlink(self._dir / SOCKET)
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


def _listen(directory: Path) -> socket.socket | None:
    """A listening socket at `directory/attach.sock`, mode 0600 from the start."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(directory / SOCKET)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    old = os.umask(0o177)
    try:
        _at(directory, s.bind)
        s.listen(8)
    except OSError:
        s.close()
        return None
    finally:
        os.umask(old)
    s.setblocking(False)
    return s
