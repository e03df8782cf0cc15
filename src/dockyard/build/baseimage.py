"""The images a build starts from (layer L4): `FROM` bases and `--from` images, per platform.

`base_image(engine, name, platform, pull=...)` returns the image `name` for `platform`: the
local image when its config is for that platform (an image naming no architecture fits every
platform) and `--pull` was not given, else the one pulled for that platform. A local image for
another platform is never used for a stage: when no image for the stage's platform can be
pulled, the error names both platforms.

Invariant: errors are `NotFound` with BuildKit's "failed to resolve source metadata" wording.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dockyard.build.platforms import image_matches
from dockyard.errors import DockyardError, NotFound

if TYPE_CHECKING:
    from dockyard.engine import Engine
    from dockyard.image.model import Image


def base_image(engine: Engine, name: str, platform: str, *, pull: bool) -> Image:
    try:
        img = engine.images.resolve(name)
        if pull:
            img = _pull(engine, name, platform)
    except NotFound:
        img = _pull(engine, name, platform)
    cfg = img.config
    if image_matches(cfg.os, cfg.architecture, cfg.variant, platform):
        return img
    try:
        return _pull(engine, name, platform)
    except NotFound as e:
        have = f"{cfg.os}/{cfg.architecture}" + (f"/{cfg.variant}" if cfg.variant else "")
        msg = f"{name} is a {have} image and no {platform} one could be pulled ({e.message})"
        raise NotFound(msg) from None


def _pull(engine: Engine, name: str, platform: str) -> Image:
    from dockyard.image.distribution import pull_image
    from dockyard.oci.types import Platform
    from dockyard.reference import parse_reference

    try:
        return pull_image(engine, parse_reference(name), platform=Platform.parse(platform))
    except DockyardError as e:
        raise NotFound(f"failed to resolve source metadata for {name}: {e.message}") from None
