"""Named volumes as data (pure, no I/O): the record, name and option checks, filters.

Responsibility: what a volume IS (name, driver, creation time, labels, local-driver options,
where its data lives) and the rules Docker's `local` driver applies to it, with Docker's
error messages. Invariants: a `Volume` is immutable; a valid name matches
`[a-zA-Z0-9][a-zA-Z0-9_.-]+`; options hold only the local driver's keys (`type`, `device`,
`o`) and `type` and `device` come together; an anonymous volume carries the label
`com.docker.volume.anonymous` (as Docker >= 23 marks them, so `prune` can tell them apart).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from dockyard.errors import InvalidArgument, NotFound

DRIVER = "local"
ANONYMOUS_LABEL = "com.docker.volume.anonymous"
NAME_CHARS = "[a-zA-Z0-9][a-zA-Z0-9_.-]"
_NAME_RE = re.compile(NAME_CHARS + "+")
_VALID_OPTS = ("type", "o", "device", "size")
_REQUIRED_OPTS = {"device": ("type",), "type": ("device",), "o": ("device", "type")}
LIST_FILTERS = frozenset({"dangling", "name", "driver", "label", "label!"})
PRUNE_FILTERS = frozenset({"label", "label!", "all"})


@dataclass(frozen=True)
class Volume:
    name: str
    driver: str
    created: str  # RFC 3339, UTC
    mountpoint: str  # <root>/volumes/<name>/_data
    labels: dict[str, str] = field(default_factory=dict)
    options: dict[str, str] = field(default_factory=dict)
    used: bool = False  # a container has mounted it at least once

    @property
    def anonymous(self) -> bool:
        return ANONYMOUS_LABEL in self.labels

    @property
    def needs_mount(self) -> bool:
        """True for volumes the local driver mounts (`-o type=tmpfs -o device=tmpfs`...)."""
        return bool(self.options.get("type") or self.options.get("device"))

    def inspect(self) -> dict[str, Any]:
        """`docker volume inspect`'s object, keys sorted as Go marshals structs and maps."""
        return {
            "CreatedAt": self.created,
            "Driver": self.driver,
            "Labels": dict(sorted(self.labels.items())),
            "Mountpoint": self.mountpoint,
            "Name": self.name,
            "Options": dict(sorted(self.options.items())),
            "Scope": "local",
        }


def check_name(name: str) -> None:
    """Raise InvalidArgument, worded as Docker's local driver, for a name it refuses."""
    if len(name) == 1:
        raise InvalidArgument(
            f"create {name}: volume name is too short, names should be at least two "
            "alphanumeric characters"
        )
    if not _NAME_RE.fullmatch(name):
        raise InvalidArgument(
            f'create {name}: "{name}" includes invalid characters for a local volume name, '
            f'only "{NAME_CHARS}" are allowed. If you intended to pass a host directory, '
            "use absolute path"
        )


def check_options(name: str, opts: Mapping[str, str]) -> None:
    """Docker's local-driver option rules (`size` needs quotas, which we do not have)."""
    for key in opts:
        if key not in _VALID_OPTS:
            raise InvalidArgument(f'create {name}: invalid option: "{key}"')
    if "size" in opts:
        raise InvalidArgument(f"create {name}: quota size requested but no quota support")
    for key in ("device", "type", "o"):
        if key in opts:
            for req in _REQUIRED_OPTS[key]:
                if req not in opts:
                    raise InvalidArgument(f'create {name}: missing required option: "{req}"')


def check_driver(driver: str) -> None:
    if driver != DRIVER:
        raise NotFound(f'error looking up volume plugin {driver}: plugin "{driver}" not found')


def no_such_volume(name: str) -> NotFound:
    return NotFound(f"get {name}: no such volume")


def mount_options(opts: Mapping[str, str]) -> tuple[str, str, list[str]]:
    """(fstype, source, options) the local driver mounts at `_data` for `opts`."""
    o = opts.get("o", "")
    return opts.get("type", ""), opts.get("device", ""), [x for x in o.split(",") if x]


# filters ---------------------------------------------------------------------------------


def check_filters(filters: Mapping[str, list[str]], accepted: frozenset[str]) -> None:
    for key in filters:
        if key not in accepted:
            raise InvalidArgument(f"invalid filter '{key}'")


def parse_bool_filter(key: str, values: list[str]) -> bool:
    """Docker's GetBoolOrDefault: 'true'/'1' or 'false'/'0', and not both."""
    is_true = any(v.lower() in ("1", "true") for v in values)
    is_false = any(v.lower() in ("0", "false") for v in values)
    if is_true == is_false:
        raise InvalidArgument(f"invalid filter '{key}={','.join(values)}'")
    return is_true


def match_labels(wanted: list[str], labels: Mapping[str, str]) -> bool:
    """All of `wanted` (`key` or `key=value`) hold for `labels` (Docker's MatchKVList)."""
    if not wanted:
        return True
    if not labels:
        return False
    for w in wanted:
        k, has_value, v = w.partition("=")
        if k not in labels or (has_value and labels[k] != v):
            return False
    return True


def match_name(patterns: list[str], name: str) -> bool:
    """Docker's `name=` filter: exact, or a regular expression found anywhere in the name."""
    for p in patterns:
        if p == name:
            return True
        try:
            if re.search(p, name):
                return True
        except re.error:
            continue
    return False


def selector(
    filters: Mapping[str, list[str]], in_use: Callable[[str], list[str]]
) -> Callable[[Volume], bool]:
    """A predicate for `volume ls --filter` (dangling, name, driver, label, label!)."""
    check_filters(filters, LIST_FILTERS)
    dangling = parse_bool_filter("dangling", filters["dangling"]) if "dangling" in filters else None

    def keep(v: Volume) -> bool:
        if "driver" in filters and v.driver not in filters["driver"]:
            return False
        if "name" in filters and not match_name(filters["name"], v.name):
            return False
        if not match_labels(filters.get("label", []), v.labels):
            return False
        if filters.get("label!") and match_labels(filters["label!"], v.labels):
            return False
        return dangling is None or (not in_use(v.name)) == dangling

    return keep


def natural_key(name: str) -> list[tuple[int, int | str]]:
    """Sort key putting `vol2` before `vol10`, as the Docker CLI orders `volume ls`."""
    parts = re.split(r"(\d+)", name)
    return [(0, int(p)) if p.isdigit() else (1, p) for p in parts if p]
