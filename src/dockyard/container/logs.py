"""Container logs in Docker's json-file format, rotated (layer L4).

One JSON object per line: {"log": "...\\n", "stream": "stdout"|"stderr", "time": RFC3339Nano}.
The writer rotates at `max_size` bytes keeping `max_file` files (`<id>-json.log`,
`<id>-json.log.1`, ...), so logs never fill the disk by default (Docker's json-file does not
rotate unless told; we rotate by default at 10 MB x 5). The reader merges the files oldest
first and supports --tail, --since, --until and follow.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from dockyard.units import parse_time, rfc3339

DEFAULT_MAX_SIZE = 10 * 1000 * 1000
DEFAULT_MAX_FILE = 5


@dataclass(frozen=True)
class LogLine:
    stream: str
    data: bytes
    time: str


class LogWriter:
    def __init__(
        self, path: Path, max_size: int = DEFAULT_MAX_SIZE, max_file: int = DEFAULT_MAX_FILE
    ):
        self.path = path
        self.max_size = max_size
        self.max_file = max(1, max_file)
        self._f = open(path, "ab", buffering=0)  # noqa: SIM115 - owned by the writer
        self._size = self._f.tell()
        self._partial: dict[str, bytes] = {"stdout": b"", "stderr": b""}

    def write(self, stream: str, data: bytes) -> None:
        """Record `data` from a stream, one log entry per complete line."""
        buf = self._partial[stream] + data
        *lines, rest = buf.split(b"\n")
        self._partial[stream] = rest
        for line in lines:
            self._entry(stream, line + b"\n")
        if len(rest) > 16384:  # Docker splits very long lines at 16k
            self._entry(stream, rest)
            self._partial[stream] = b""

    def _entry(self, stream: str, line: bytes) -> None:
        rec = (
            json.dumps(
                {"log": line.decode("utf-8", "replace"), "stream": stream, "time": rfc3339()},
                ensure_ascii=False,
                separators=(",", ":"),
            ).encode()
            + b"\n"
        )
        if self.max_size > 0 and self._size + len(rec) > self.max_size and self._size > 0:
            self._rotate()
        self._f.write(rec)
        self._size += len(rec)

    def _rotate(self) -> None:
        self._f.close()
        if self.max_file == 1:
            self.path.unlink(missing_ok=True)
        else:
            for i in range(self.max_file - 1, 0, -1):
                src = self.path if i == 1 else self.path.with_name(f"{self.path.name}.{i - 1}")
                if src.exists():
                    os.replace(src, self.path.with_name(f"{self.path.name}.{i}"))
        self._f = open(self.path, "ab", buffering=0)  # noqa: SIM115
        self._size = 0

    def flush(self) -> None:
        for stream, rest in self._partial.items():
            if rest:
                self._entry(stream, rest)
                self._partial[stream] = b""

    def close(self) -> None:
        self.flush()
        self._f.close()


def log_files(path: Path) -> list[Path]:
    """Oldest first."""
    rotated = sorted(
        (p for p in path.parent.glob(path.name + ".*") if p.suffix[1:].isdigit()),
        key=lambda p: -int(p.suffix[1:]),
    )
    return [*rotated, path] if path.exists() else rotated


def _parse(raw: bytes) -> LogLine | None:
    try:
        d = json.loads(raw)
    except ValueError:
        return None
    return LogLine(d.get("stream", "stdout"), d.get("log", "").encode(), d.get("time", ""))


def read_logs(
    path: Path, *, tail: int | None = None, since: float | None = None, until: float | None = None
) -> list[LogLine]:
    lines: list[LogLine] = []
    for p in log_files(path):
        with open(p, "rb") as f:
            for raw in f:
                ll = _parse(raw)
                if ll is None:
                    continue
                if since is not None or until is not None:
                    dt = parse_time(ll.time)
                    ts = dt.timestamp() if dt else 0.0
                    if since is not None and ts < since:
                        continue
                    if until is not None and ts > until:
                        continue
                lines.append(ll)
    if tail is not None and tail >= 0:
        lines = lines[-tail:] if tail else []
    return lines


def follow(path: Path, still_running: object, poll: float = 0.05) -> Iterator[LogLine]:
    """New lines appended to the current log file until `still_running()` turns false."""
    f = None
    pos = path.stat().st_size if path.exists() else 0
    ino = path.stat().st_ino if path.exists() else 0
    buf = b""
    while True:
        try:
            st = path.stat()
        except FileNotFoundError:
            st = None
        if st is not None and (st.st_ino != ino or st.st_size < pos):
            ino, pos = st.st_ino, 0  # rotated: start the new file from its beginning
            if f:
                f.close()
                f = None
        if st is not None and st.st_size > pos:
            if f is None:
                f = open(path, "rb")  # noqa: SIM115
            f.seek(pos)
            chunk = f.read(st.st_size - pos)
            pos += len(chunk)
            buf += chunk
            *full, buf = buf.split(b"\n")
            for raw in full:
                ll = _parse(raw)
                if ll is not None:
                    yield ll
            continue
        if not still_running():  # type: ignore[operator]
            break
        time.sleep(poll)
    if f:
        f.close()
