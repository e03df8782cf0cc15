"""Image filters and listing as `docker images` understands them (pure logic over records).

Filters: `dangling=true|false`, `label=KEY` / `label=KEY=VALUE`, `before=IMAGE`,
`since=IMAGE`, `reference=PATTERN` (glob on the familiar `name[:tag]`).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable

from dockyard.errors import InvalidArgument
from dockyard.image.inspect import familiar
from dockyard.image.model import Image

_KNOWN = ("dangling", "label", "before", "since", "reference", "until")


def _ref_match(img: Image, patterns: list[str]) -> bool:
    for t in img.tags:
        name = familiar(t)
        repo = name.rpartition(":")[0]
        for p in patterns:
            if ":" in p.rsplit("/", 1)[-1]:
                if fnmatch.fnmatchcase(name, p):
                    return True
            elif fnmatch.fnmatchcase(repo, p):
                return True
    return False


def _label_match(img: Image, wanted: list[str]) -> bool:
    labels = img.config.config.get("Labels") or {}
    for w in wanted:
        k, sep, v = w.partition("=")
        if k not in labels or (sep and labels[k] != v):
            return False
    return True


def select(
    images: list[Image], filters: dict[str, list[str]], resolve: Callable[[str], Image]
) -> list[Image]:
    for k in filters:
        if k not in _KNOWN:
            raise InvalidArgument(f"invalid filter '{k}'")
    out = []
    before = [resolve(x).added for x in filters.get("before", [])]
    since = [resolve(x).added for x in filters.get("since", [])]
    for img in images:
        if "dangling" in filters:
            want = filters["dangling"][-1].lower()
            if want not in ("true", "false", "1", "0"):
                raise InvalidArgument(f"invalid filter 'dangling={want}'")
            if (want in ("true", "1")) != (not img.tags):
                continue
        if "label" in filters and not _label_match(img, filters["label"]):
            continue
        if "reference" in filters and not _ref_match(img, filters["reference"]):
            continue
        if before and not all(img.added < b for b in before):
            continue
        if since and not all(img.added > s for s in since):
            continue
        out.append(img)
    return out


def repo_tag_pairs(img: Image) -> list[tuple[str, str, str]]:
    """(repository, tag, digest) rows for an image, `<none>` where absent, as Docker lists."""
    digests: dict[str, str] = {}
    for d in img.repo_digests:
        name, _, dg = familiar(d).partition("@")
        digests.setdefault(name, dg)
    rows = []
    seen = set()
    for t in img.tags:
        name = familiar(t)
        repo, _, tag = name.rpartition(":")
        rows.append((repo, tag, digests.get(repo, "<none>")))
        seen.add(repo)
    for repo, dg in digests.items():
        if repo not in seen:
            rows.append((repo, "<none>", dg))
    if not rows:
        rows.append(("<none>", "<none>", "<none>"))
    return rows
