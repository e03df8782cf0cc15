"""The synchronisation channel between the runtime and the process it is turning into a container.

Responsibility: a pair of pipes carrying one JSON object per line — child to parent: `pid`,
`hooks`, `ready`, `error`; parent to child: `go`. Errors cross the channel as (class name,
message) and are re-raised in the parent as the same `DockyardError` class (`OSError` becomes
`DockyardError` with the message).

Invariants: every descriptor is close-on-exec (a container never inherits the channel); a
closed channel reads as EOF, which the parent reports as "container init exited".
"""

from __future__ import annotations

import os

from dockyard import errors
from dockyard.runtime import jsonio

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (startup time)
if TYPE_CHECKING:
    import socket
    from typing import Any


class Channel:
    """One end of the channel: reads lines from `rfd`, writes lines to `wfd`."""

    def __init__(self, rfd: int, wfd: int) -> None:
        self.rfd, self.wfd = rfd, wfd
        self._buf = b""
        self._pending: list[dict[str, Any]] = []

    def send(self, kind: str, **fields: Any) -> None:
        data = (jsonio.dumps({"t": kind, **fields}) + "\n").encode()
        while data:
            data = data[os.write(self.wfd, data) :]

    def send_error(self, exc: BaseException) -> None:
        name = type(exc).__name__ if isinstance(exc, errors.DockyardError) else "DockyardError"
        try:  # after pivot_root the standard library may no longer be importable
            import traceback

            trace = "".join(traceback.format_exception(exc))
        except ImportError:
            trace = ""
        self.send("error", cls=name, msg=str(exc), trace=trace)

    def recv(self) -> dict[str, Any] | None:
        """The next message, or None at EOF."""
        if self._pending:
            return self._pending.pop(0)
        while b"\n" not in self._buf:
            chunk = os.read(self.rfd, 65536)
            if not chunk:
                return None
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        msg: dict[str, Any] = jsonio.loads(line.decode())
        return msg

    def expect(self, kind: str, *, defer: tuple[str, ...] = ()) -> dict[str, Any]:
        """Receive a message of `kind`; raise the child's error or a closed-channel error.

        Messages of a kind in `defer` that arrive first are kept for later `recv`s (stage 2
        may report before stage 1 has sent its pid)."""
        deferred: list[dict[str, Any]] = []
        try:
            while True:
                msg = self.recv()
                if msg is None:
                    raise errors.DockyardError("container init exited before it was set up")
                if msg["t"] == "error":
                    raise rebuild_error(msg)
                if msg["t"] == kind:
                    return msg
                if msg["t"] not in defer:
                    raise errors.DockyardError(
                        f"runtime protocol: expected {kind!r}, got {msg['t']!r}"
                    )
                deferred.append(msg)
        finally:
            self._pending[:0] = deferred

    def close(self) -> None:
        for fd in (self.rfd, self.wfd):
            try:  # noqa: SIM105 - contextlib costs startup time
                os.close(fd)
            except OSError:
                pass


def rebuild_error(msg: dict[str, Any]) -> errors.DockyardError:
    cls = getattr(errors, str(msg.get("cls")), errors.DockyardError)
    if not (isinstance(cls, type) and issubclass(cls, errors.DockyardError)):
        cls = errors.DockyardError
    err = cls(str(msg.get("msg")))
    err.child_traceback = str(msg.get("trace", ""))  # type: ignore[attr-defined]
    return err


def pair() -> tuple[Channel, Channel]:
    """(parent end, child end); all four fds close-on-exec."""
    down_r, down_w = os.pipe2(os.O_CLOEXEC)
    up_r, up_w = os.pipe2(os.O_CLOEXEC)
    return Channel(up_r, down_w), Channel(down_r, up_w)


# -- orders: one JSON object with descriptors, over a socket read to its end -----------------


def send_order(sock: socket.socket, order: dict[str, Any], fds: list[int]) -> None:
    """Send `order` as JSON, `fds` (SCM_RIGHTS) on its first bytes, for `receive_order`: the
    receiver reads until EOF, so close the socket (or shut down its writing side) after.
    Raises OSError as sendmsg does (e.g. EPIPE: the receiver is gone)."""
    import socket

    data = jsonio.dumps(order).encode()
    sent = socket.send_fds(sock, [data], fds) if fds else 0
    sock.sendall(data[sent:])


def receive_order(
    sock: socket.socket, max_fds: int = 16
) -> tuple[dict[str, Any] | None, list[int]]:
    """The order `send_order` sent (None at EOF without one) and its descriptors (not
    close-on-exec: recvmsg gives them so); closes `sock`."""
    import socket

    chunks: list[bytes] = []
    fds: list[int] = []
    while True:
        data, got, _flags, _addr = socket.recv_fds(sock, 1 << 20, max_fds)
        fds.extend(got)
        if not data:
            break
        chunks.append(data)
    sock.close()
    msg = b"".join(chunks)
    order: dict[str, Any] | None = jsonio.loads(msg.decode()) if msg else None
    return order, fds
