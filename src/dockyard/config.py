"""Engine configuration (layer L5): explicit values, no globals.

The state root is `/var/lib/dockyard` unless `--root` or `DOCKYARD_ROOT` says otherwise.
Optional settings are read from `<root>/config.json` (Docker's daemon.json keys where they
exist, e.g. `insecure-registries`, `registry-mirrors`).
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_ROOT = Path("/var/lib/dockyard")


@dataclass(frozen=True)
class Config:
    root: Path = DEFAULT_ROOT
    insecure_registries: tuple[str, ...] = ()
    registry_mirrors: tuple[str, ...] = ()
    default_platform: str = ""  # empty: this host's platform (see `platform()`)
    extra: dict[str, object] = field(default_factory=dict)

    def platform(self) -> str:
        from dockyard.oci.types import Platform

        return self.default_platform or str(Platform.host())

    @classmethod
    def load(cls, root: str | Path | None = None) -> Config:
        r = Path(root or os.environ.get("DOCKYARD_ROOT") or DEFAULT_ROOT)
        settings: dict[str, object] = {}
        with contextlib.suppress(FileNotFoundError):
            settings = json.loads((r / "config.json").read_text())
        insecure = settings.get("insecure-registries") or ()
        mirrors = settings.get("registry-mirrors") or ()
        return cls(
            root=r,
            insecure_registries=tuple(str(x) for x in insecure)
            if isinstance(insecure, list)
            else (),
            registry_mirrors=tuple(str(x) for x in mirrors) if isinstance(mirrors, list) else (),
            extra=settings,
        )
