"""OCI runtimes (layer L3): turn a bundle (config.json + rootfs) into an isolated process tree.

`api.Runtime` is the protocol the engine programs against, with two implementations:
`native.NativeRuntime` (ours, in-process on `dockyard.linux`) and `external.ExternalRuntime`
(drives the `runc` or `crun` binary with runc's command line). `cli` is the `dockyard-runtime`
console script. Importing this package imports nothing; use `get_runtime(name)`.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (startup time)


if TYPE_CHECKING:
    from dockyard.runtime.api import Runtime


def get_runtime(name: str = "dockyard", root: str | None = None) -> Runtime:
    """ "dockyard" (native) or the name/path of a runc-compatible binary ("runc", "crun")."""
    if name in ("dockyard", "native"):
        from dockyard.runtime.native import NativeRuntime

        return NativeRuntime(root or "/run/dockyard-runtime")
    from dockyard.runtime.external import ExternalRuntime

    return ExternalRuntime(name, root=root)
