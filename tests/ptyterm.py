"""A command under a pty made by the test (`Term`): set and change the window size as a
terminal emulator would, read its output up to a marker, wait for it."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import time

from dockyard.linux.pty import set_winsize


class Term:
    """A command (`argv`) running on a new pty of `rows` x `cols`: its stdin, stdout and
    stderr; `env` is added to ours."""

    def __init__(self, argv: list[str], *, rows: int, cols: int, env: dict[str, str]) -> None:
        self.master, slave = os.openpty()
        set_winsize(self.master, rows, cols)
        self.buf = b""
        try:
            self.p = subprocess.Popen(
                argv,
                stdin=slave, stdout=slave, stderr=slave, env={**os.environ, **env},
            )  # fmt: skip
        except BaseException:
            os.close(self.master)
            raise
        finally:
            os.close(slave)

    def resize(self, rows: int, cols: int) -> None:
        set_winsize(self.master, rows, cols)
        self.p.send_signal(signal.SIGWINCH)  # as the terminal (emulator) would

    def follow_sizes(self, *sizes: tuple[int, int]) -> None:
        """Resize to each (rows, cols) in turn and expect the program's `size=ROWS COLS` line
        (its WINCH trap printing `stty size`) for each."""
        for rows, cols in sizes:
            self.resize(rows, cols)
            self.expect(f"size={rows} {cols}".encode())

    def expect(self, needle: bytes, timeout: float = 20.0) -> bytes:
        """Read output until `needle`; return what came before it, consume through it."""
        deadline = time.monotonic() + timeout
        while needle not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{needle!r} not seen in {self.buf!r}")
            ready, _, _ = select.select([self.master], [], [], left)
            if not ready:
                continue
            try:
                chunk = os.read(self.master, 4096)
            except OSError:  # EIO: every slave closed (the command is done)
                chunk = b""
            if not chunk:
                raise AssertionError(f"EOF before {needle!r}: {self.buf!r}")
            self.buf += chunk
        before, _, self.buf = self.buf.partition(needle)
        return before

    def wait(self, timeout: float = 30.0) -> int:
        return self.p.wait(timeout=timeout)

    def close(self) -> None:
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()
        os.close(self.master)
