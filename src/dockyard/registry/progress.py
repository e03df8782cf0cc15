"""Progress reporting for pull and push: a callback receiving one `ProgressEvent` at a time.

The library never prints. A CLI turns events into Docker-like lines (`<id>: Downloading
[==>   ] 1.2MB/3.4MB`). Callbacks may be called from several worker threads at once; events of
one `id` arrive in order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

# Pull statuses, as the docker CLI shows them.
PULLING_FS_LAYER = "Pulling fs layer"
WAITING = "Waiting"
DOWNLOADING = "Downloading"
VERIFYING = "Verifying Checksum"
DOWNLOAD_COMPLETE = "Download complete"
EXTRACTING = "Extracting"
PULL_COMPLETE = "Pull complete"
ALREADY_EXISTS = "Already exists"
# Push statuses.
PREPARING = "Preparing"
PUSHING = "Pushing"
PUSHED = "Pushed"
LAYER_ALREADY_EXISTS = "Layer already exists"
MOUNTED_FROM = "Mounted from"


@dataclass(frozen=True)
class ProgressEvent:
    id: str  # the blob's short ID (12 hex digits), as Docker shows it
    status: str
    current: int = 0
    total: int = 0
    detail: str = ""  # e.g. the source repository of "Mounted from"


Progress = Callable[[ProgressEvent], object]


def short_id(digest: str) -> str:
    return digest.split(":", 1)[-1][:12]


def emit(
    progress: Progress | None,
    digest: str,
    status: str,
    current: int = 0,
    total: int = 0,
    detail: str = "",
) -> None:
    if progress is not None:
        progress(ProgressEvent(short_id(digest), status, current, total, detail))
