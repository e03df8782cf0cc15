"""`ps --filter` for containers: id, name, label, status, exited, ancestor, before, since."""

from __future__ import annotations

import re
from collections.abc import Callable

from dockyard.container.model import Container
from dockyard.errors import InvalidArgument

_KNOWN = ("id", "name", "label", "status", "exited", "ancestor", "before", "since", "health")
_STATUSES = ("created", "restarting", "running", "removing", "paused", "exited", "dead")


def select(
    containers: list[Container], filters: dict[str, list[str]], lookup: Callable[[str], str]
) -> list[Container]:
    for k in filters:
        if k not in _KNOWN:
            raise InvalidArgument(f"invalid filter '{k}'")
    for s in filters.get("status", []):
        if s not in _STATUSES:
            raise InvalidArgument(f"invalid filter 'status={s}'")
    before = {lookup(x) for x in filters.get("before", [])}
    since = {lookup(x) for x in filters.get("since", [])}
    out = []
    seen_before = not before
    for c in reversed(containers):  # oldest first, to apply before/since by creation order
        if c.id in before:
            seen_before = True
        out.append((c, seen_before))
    result = []
    passed_since = False
    for c, after_before in out:
        if since and c.id in since:
            passed_since = True
            continue
        if before and after_before:
            continue
        if since and not passed_since:
            continue
        if not _match(c, filters):
            continue
        result.append(c)
    result.reverse()
    return result


def _match(c: Container, f: dict[str, list[str]]) -> bool:
    if "id" in f and not any(c.id.startswith(x) for x in f["id"]):
        return False
    if "name" in f and not any(re.search(x, c.name) for x in f["name"]):
        return False
    if "status" in f and c.state.status not in f["status"]:
        return False
    if "exited" in f and (c.state.status != "exited" or str(c.state.exit_code) not in f["exited"]):
        return False
    if "ancestor" in f and not any(
        a in (c.image, c.image_id, c.image_id[7:19]) for a in f["ancestor"]
    ):
        return False
    labels = c.config.get("Labels") or {}
    for want in f.get("label", []):
        k, sep, v = want.partition("=")
        if k not in labels or (sep and labels[k] != v):
            return False
    return True
