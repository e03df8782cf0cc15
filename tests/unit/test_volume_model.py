"""Pure volume rules: names, local-driver options, filters, ordering, inspect shape."""

from __future__ import annotations

import pytest

from dockyard.errors import InvalidArgument, NotFound
from dockyard.volume.model import (
    ANONYMOUS_LABEL,
    Volume,
    check_driver,
    check_name,
    check_options,
    match_labels,
    match_name,
    mount_options,
    natural_key,
    parse_bool_filter,
    selector,
)


@pytest.mark.parametrize("name", ["ab", "a1", "my-vol", "my_vol.2", "A" * 64, "0x"])
def test_valid_names(name: str) -> None:
    check_name(name)


@pytest.mark.parametrize("name", ["-ab", ".ab", "_ab", "a b", "a/b", "a:b", "x!", "é1"])
def test_invalid_names(name: str) -> None:
    with pytest.raises(InvalidArgument, match="includes invalid characters for a local volume"):
        check_name(name)


def test_one_letter_name_is_too_short() -> None:
    with pytest.raises(InvalidArgument, match="volume name is too short"):
        check_name("a")


def test_local_driver_options() -> None:
    check_options("v", {})
    check_options("v", {"type": "tmpfs", "device": "tmpfs", "o": "size=1m"})
    check_options("v", {"type": "tmpfs", "device": "tmpfs"})
    with pytest.raises(InvalidArgument, match='invalid option: "colour"'):
        check_options("v", {"colour": "red"})
    with pytest.raises(InvalidArgument, match='missing required option: "device"'):
        check_options("v", {"type": "tmpfs"})
    with pytest.raises(InvalidArgument, match='missing required option: "type"'):
        check_options("v", {"device": "tmpfs"})
    with pytest.raises(InvalidArgument, match="missing required option"):
        check_options("v", {"o": "size=1m"})
    with pytest.raises(InvalidArgument, match="quota size requested but no quota support"):
        check_options("v", {"size": "10m"})


def test_driver() -> None:
    check_driver("local")
    with pytest.raises(NotFound, match='plugin "nfs" not found'):
        check_driver("nfs")


def test_mount_options() -> None:
    assert mount_options({"type": "tmpfs", "device": "tmpfs", "o": "size=1m,uid=5"}) == (
        "tmpfs",
        "tmpfs",
        ["size=1m", "uid=5"],
    )
    assert mount_options({"type": "none", "device": "/x", "o": ""}) == ("none", "/x", [])


def test_filters_helpers() -> None:
    assert parse_bool_filter("dangling", ["true"]) is True
    assert parse_bool_filter("dangling", ["0"]) is False
    with pytest.raises(InvalidArgument, match="invalid filter 'dangling=maybe'"):
        parse_bool_filter("dangling", ["maybe"])
    with pytest.raises(InvalidArgument, match="invalid filter"):
        parse_bool_filter("dangling", ["true", "false"])
    assert match_labels(["a"], {"a": "1"})
    assert match_labels(["a=1", "b"], {"a": "1", "b": ""})
    assert not match_labels(["a=2"], {"a": "1"})
    assert not match_labels(["a"], {})
    assert match_name(["web"], "myweb1") and match_name(["^my"], "myweb")
    assert not match_name(["^web"], "myweb") and not match_name(["("], "x(")


def _vol(name: str, **labels: str) -> Volume:
    return Volume(name=name, driver="local", created="", mountpoint="/m", labels=labels)


def test_selector() -> None:
    vols = [_vol("alpha", tier="db"), _vol("beta"), _vol("gamma", tier="web")]
    used = {"beta": ["c1"]}

    def names(**f: list[str]) -> list[str]:
        keep = selector(f, lambda n: used.get(n, []))
        return [v.name for v in vols if keep(v)]

    assert names(dangling=["true"]) == ["alpha", "gamma"]
    assert names(dangling=["false"]) == ["beta"]
    assert names(label=["tier"]) == ["alpha", "gamma"]
    assert names(label=["tier=web"]) == ["gamma"]
    assert names(**{"label!": ["tier=web"]}) == ["alpha", "beta"]
    assert names(name=["ma$"]) == ["gamma"]
    assert names(name=["a$"]) == ["alpha", "beta", "gamma"]
    assert names(driver=["local"]) == ["alpha", "beta", "gamma"]
    assert names(driver=["other"]) == []
    with pytest.raises(InvalidArgument, match="invalid filter 'colour'"):
        names(colour=["red"])


def test_natural_order_and_inspect() -> None:
    assert sorted(["v10", "v2", "a", "v1"], key=natural_key) == ["a", "v1", "v2", "v10"]
    v = Volume("v", "local", "2024-01-01T00:00:00Z", "/r/volumes/v/_data", {"z": "1", "a": ""})
    assert list(v.inspect()) == [
        "CreatedAt",
        "Driver",
        "Labels",
        "Mountpoint",
        "Name",
        "Options",
        "Scope",
    ]
    assert list(v.inspect()["Labels"]) == ["a", "z"] and v.inspect()["Scope"] == "local"
    assert not v.anonymous and _vol("x", **{ANONYMOUS_LABEL: ""}).anonymous
