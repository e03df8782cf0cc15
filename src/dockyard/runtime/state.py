"""On-disk state of the native runtime: one directory per container under the state root.

Responsibility: create, read, list and remove `<root>/<id>/state.json` records, and tell whether a
recorded process is still the one we started (pid + start time from /proc/PID/stat, so a reused
pid is never mistaken for the container).

Invariants: every write goes to a temporary file in the same directory and is renamed over the
record (a crash leaves the old record or the new one, never half of one); container ids are
checked (`[A-Za-z0-9_.+-]`, like runc) before they become path names; the state directory is
created with mode 0711.
"""

from __future__ import annotations

import os

from dockyard.errors import AlreadyExists, InvalidArgument, NotFound
from dockyard.runtime import jsonio

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (startup time)
if TYPE_CHECKING:
    from typing import Any

DEFAULT_ROOT = "/run/dockyard-runtime"
STATE_FILE = "state.json"
EXEC_FIFO = "exec.fifo"
_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.+-")


def check_id(container_id: str) -> str:
    if (
        not container_id
        or container_id in (".", "..")
        or not set(container_id) <= _ID_CHARS
        or len(container_id) > 1024
    ):
        raise InvalidArgument(
            f"invalid container id {container_id!r}: use letters, digits and _ . + -"
        )
    return container_id


def write_atomic(path: str, data: bytes, mode: int = 0o600) -> None:
    """Write `data` to `path` through a temporary file and rename(2)."""
    head, name = os.path.split(path)
    tmp = os.path.join(head, f".{name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    os.rename(tmp, path)


class StateRoot:
    """The directory holding every container's state directory."""

    def __init__(self, root: str = DEFAULT_ROOT) -> None:
        self.root = str(root)

    def dir(self, container_id: str) -> str:
        return os.path.join(self.root, check_id(container_id))

    def create(self, container_id: str) -> str:
        os.makedirs(self.root, mode=0o711, exist_ok=True)
        d = self.dir(container_id)
        try:
            os.mkdir(d, mode=0o711)
        except FileExistsError:
            raise AlreadyExists(f"container {container_id!r} already exists") from None
        return d

    def save(self, container_id: str, record: dict[str, Any]) -> None:
        write_atomic(
            os.path.join(self.dir(container_id), STATE_FILE), jsonio.dumps(record).encode()
        )

    def load(self, container_id: str) -> dict[str, Any]:
        try:
            with open(os.path.join(self.dir(container_id), STATE_FILE), "rb") as f:
                data = f.read()
        except FileNotFoundError:
            raise NotFound(f"container {container_id!r} does not exist") from None
        record: dict[str, Any] = jsonio.loads(data.decode())
        return record

    def ids(self) -> list[str]:
        try:
            names = sorted(os.listdir(self.root))
        except FileNotFoundError:
            return []
        return [n for n in names if os.path.exists(os.path.join(self.root, n, STATE_FILE))]

    def remove(self, container_id: str) -> None:
        d = self.dir(container_id)
        if not os.path.isdir(d):
            return
        for name in os.listdir(d):
            os.unlink(os.path.join(d, name))
        os.rmdir(d)
