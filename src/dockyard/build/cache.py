"""Build state and the build cache (layer L4): what a step produced, keyed by what it read.

`State` is the image being built after some step: its config section, layer descriptors and
diff_ids, history, platform, and the cache `key` that produced it. `step_key(parent, ...)`
derives a step's key from its parent's key, the instruction after expansion (its `Loc` left
out, so moving a line does not miss), the build args that reach it, and the content checksum of
whatever it reads (context files, another stage's result, an image ID). `BuildCache` stores
key → State in the metadata DB (the `build_cache` table) with the blobs and snapshots the state
needs, which image GC keeps.

Invariants ("never wrong"): a key covers every input that can change a step's result — the
parent key (so the whole chain), the expanded instruction, the ARG values in scope, the bytes and
layer metadata of the files read (never mtimes), and SOURCE_DATE_EPOCH (it changes layer bytes
and history). A hit restores the complete state, history timestamps included, so a fully cached
rebuild makes the same image ID.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dockyard.snapshot.chain import chain_ids
from dockyard.store.meta import MetaDB

KEY_VERSION = "dockyard-build-v1"


@dataclass
class State:
    key: str
    config: dict[str, Any] = field(default_factory=dict)
    diff_ids: list[str] = field(default_factory=list)
    layers: list[dict[str, Any]] = field(default_factory=list)  # mediaType, digest, size
    history: list[dict[str, Any]] = field(default_factory=list)
    os: str = "linux"
    architecture: str = "amd64"
    variant: str | None = None

    def copy(self, key: str | None = None) -> State:
        data = json.loads(self.to_json())
        if key is not None:
            data["key"] = key
        return State(**data)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> State:
        return cls(**json.loads(text))

    @property
    def chain(self) -> list[str]:
        return [str(c) for c in chain_ids(self.diff_ids)]

    @property
    def top(self) -> str | None:
        chain = self.chain
        return chain[-1] if chain else None


def _plain(value: Any) -> Any:
    """JSON-able form of an instruction, without its `Loc` (a moved line still hits)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out = {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
        out.pop("loc", None)
        out["_kind"] = type(value).__name__
        return out
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def step_key(
    parent: str,
    instruction: object,
    *,
    args: Mapping[str, str] | None = None,
    inputs: list[str] | None = None,
) -> str:
    """The cache key of one step (sha256 hex)."""
    doc = {
        "v": KEY_VERSION,
        "parent": parent,
        "instruction": _plain(instruction),
        "args": dict(sorted((args or {}).items())),
        "inputs": inputs or [],
    }
    blob = json.dumps(doc, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode("utf-8", "surrogateescape")).hexdigest()


def root_key(kind: str, ref: str, platform: str, epoch: int | None) -> str:
    """The key of a stage's starting point: `scratch`, an image ID, with platform and epoch."""
    doc = [KEY_VERSION, kind, ref, platform, epoch]
    return hashlib.sha256(json.dumps(doc).encode()).hexdigest()


class BuildCache:
    """key → State in the metadata DB; `enabled=False` (`--no-cache`) never reads it."""

    def __init__(self, meta: MetaDB, *, enabled: bool = True) -> None:
        self.meta = meta
        self.enabled = enabled

    def get(self, key: str) -> State | None:
        if not self.enabled:
            return None
        text = self.meta.build_cache(key)
        if text is None:
            return None
        try:
            st = State.from_json(text)
        except (ValueError, TypeError):
            return None
        return st if st.key == key else None

    def put(self, state: State) -> None:
        blobs = [str(layer["digest"]) for layer in state.layers]
        with self.meta.tx():
            self.meta.put_build_cache(state.key, state.to_json(), blobs, state.chain, time.time())

    def prune(self) -> int:
        with self.meta.tx():
            return self.meta.delete_build_cache()
