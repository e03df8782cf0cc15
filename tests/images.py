"""The base image every test (and the README demo) builds on: `FROM scratch` around Debian's
static busybox, imported through `dockyard import`.

`write_busybox_rootfs(out)` writes a deterministic rootfs tar: /bin/busybox, an applet symlink
for every applet (`busybox --list-full`), /etc/passwd, /etc/group, /etc/hostname-free /etc,
/tmp (1777), /root, and empty /dev /proc /sys mount points. Run as a script to write the tar:
`python tests/images.py OUT.tar`.
"""

from __future__ import annotations

import io
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

if TYPE_CHECKING:
    from dockyard.engine import Engine
    from dockyard.image.model import Image

BUSYBOX = Path("/bin/busybox")
BASE_CHANGES = [
    "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    'CMD ["sh"]',
]
PASSWD = (
    "root:x:0:0:root:/root:/bin/sh\n"
    "daemon:x:1:1:daemon:/usr/sbin:/bin/false\n"
    "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
)
GROUP = "root:x:0:\ndaemon:x:1:\nnogroup:x:65534:\n"
MTIME = 1700000000


def _dir(tf: tarfile.TarFile, name: str, mode: int = 0o755) -> None:
    ti = tarfile.TarInfo(name)
    ti.type = tarfile.DIRTYPE
    ti.mode = mode
    ti.mtime = MTIME
    tf.addfile(ti)


def _file(tf: tarfile.TarFile, name: str, data: bytes, mode: int = 0o644) -> None:
    ti = tarfile.TarInfo(name)
    ti.size = len(data)
    ti.mode = mode
    ti.mtime = MTIME
    tf.addfile(ti, io.BytesIO(data))


def applets() -> list[str]:
    out = subprocess.run([str(BUSYBOX), "--list-full"], capture_output=True, text=True, check=True)
    return sorted({line.strip() for line in out.stdout.splitlines() if line.strip()})


def write_busybox_rootfs(out: BinaryIO) -> None:
    if not BUSYBOX.exists():
        raise FileNotFoundError("/bin/busybox is missing: apt-get install busybox-static")
    links = [a for a in applets() if a != "bin/busybox"]
    dirs = {"bin", "dev", "etc", "proc", "root", "sys", "tmp", "usr", "usr/bin", "usr/sbin",
            "sbin", "var", "home"}  # fmt: skip
    for a in links:
        parts = a.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            dirs.add("/".join(parts[:i]))
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for d in sorted(dirs):
            _dir(tf, d, 0o1777 if d == "tmp" else (0o700 if d == "root" else 0o755))
        ti = tarfile.TarInfo("bin/busybox")
        data = BUSYBOX.read_bytes()
        ti.size = len(data)
        ti.mode = 0o755
        ti.mtime = MTIME
        tf.addfile(ti, io.BytesIO(data))
        _file(tf, "etc/passwd", PASSWD.encode())
        _file(tf, "etc/group", GROUP.encode())
        for a in links:
            ti = tarfile.TarInfo(a)
            ti.type = tarfile.SYMTYPE
            ti.linkname = "/bin/busybox"
            ti.mode = 0o777
            ti.mtime = MTIME
            tf.addfile(ti)


def busybox_image(engine: Engine, name: str = "busybox:latest") -> Image:
    """Import the busybox rootfs into `engine` as `name` (what `dockyard import` does)."""
    from dockyard.image.importer import import_rootfs
    from dockyard.reference import parse_reference

    buf = io.BytesIO()
    write_busybox_rootfs(buf)
    buf.seek(0)
    return import_rootfs(
        engine.images, buf, ref=parse_reference(name), changes=BASE_CHANGES, source="-"
    )


if __name__ == "__main__":
    with open(sys.argv[1], "wb") as f:
        write_busybox_rootfs(f)


def extract_archive(tar: tarfile.TarFile, dest: Path) -> None:
    """Extract one of our own archives (`save` output) with the `data` filter where this
    Python has extraction filters (3.11.4+; Debian 12's 3.11.2 has none)."""
    if hasattr(tarfile, "data_filter"):
        tar.extractall(dest, filter="data")
    else:
        tar.extractall(dest)
