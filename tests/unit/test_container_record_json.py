"""The container record's JSON (container/model.py): the same document `dataclasses.asdict`
would give, and a round trip that loses nothing."""

from __future__ import annotations

import json
from dataclasses import asdict

from dockyard.container.model import Container, State


def _sample() -> Container:
    return Container(
        id="a" * 64, name="web", image="bb:1", image_id="sha256:" + "b" * 64, created="t",
        config={"Env": ["A=B"], "Cmd": ["true"], "Labels": {"k": "v"}},
        host_config={"Memory": 0, "Binds": ["/a:/b"], "PortBindings": {"80/tcp": [{}]}},
        state=State(status="running", pid=42, health={"Status": "healthy", "Log": []}),
        mounts=[{"Type": "volume", "Name": "v"}], image_config={"Env": ["PATH=/bin"]},
        image_chain=["sha256:" + "c" * 64], network={"Settings": {"Networks": {"none": {}}}},
    )  # fmt: skip


def test_json_is_what_asdict_gives() -> None:
    c = _sample()
    assert c.to_json() == json.dumps(asdict(c), separators=(",", ":"), sort_keys=True)


def test_round_trip() -> None:
    c = _sample()
    assert Container.from_json(c.to_json()) == c
