"""The container record (pure data): what `create` decided, and the state the lifecycle moved
it to. Stored as one JSON document per container in the metadata DB.

`config` and `host_config` use the Docker Engine API's names (`Cmd`, `Env`, `Memory`,
`RestartPolicy`, ...), so `inspect` and the API adapter show them as they are.

State machine (Docker's): created → running ⇄ paused; running → exited (or restarting →
running); exited → running (start); any → removing → gone; `dead` marks a container whose
removal failed half-way. Who may move it: the supervisor (running/exited/restarting), the CLI
under the container's lock (everything else).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

ZERO_TIME = "0001-01-01T00:00:00Z"
STATUSES = ("created", "running", "paused", "restarting", "removing", "exited", "dead")


@dataclass
class State:
    status: str = "created"
    pid: int = 0
    exit_code: int = 0
    error: str = ""
    oom_killed: bool = False
    started_at: str = ZERO_TIME
    finished_at: str = ZERO_TIME
    supervisor_pid: int = 0
    supervisor_start: int = 0  # /proc start time of the supervisor, to detect pid reuse
    init_start: int = 0  # /proc start time of the container's init
    health: dict[str, Any] | None = None
    stopped_by_user: bool = False  # `stop`/`kill` from a user: no restart for unless-stopped

    @property
    def running(self) -> bool:
        return self.status in ("running", "paused", "restarting")


@dataclass
class Container:
    id: str
    name: str
    image: str  # as the user named it
    image_id: str
    created: str
    config: dict[str, Any]
    host_config: dict[str, Any]
    state: State = field(default_factory=State)
    restart_count: int = 0
    network: dict[str, Any] = field(default_factory=dict)
    mounts: list[dict[str, Any]] = field(default_factory=list)
    # the image as `create` resolved it, so starting needs no image lookup: its config's
    # `config` object and its layer chain IDs (bottom first); None in older records
    image_config: dict[str, Any] | None = None
    image_chain: list[str] | None = None

    @property
    def short_id(self) -> str:
        return self.id[:12]

    @property
    def command(self) -> list[str]:
        """Entrypoint + Cmd: what the container runs."""
        return [*(self.config.get("Entrypoint") or []), *(self.config.get("Cmd") or [])]

    def to_json(self) -> str:
        # what `dataclasses.asdict` gives, without its deep copy (json.dumps only reads)
        d = dict(vars(self))
        d["state"] = dict(vars(self.state))
        return json.dumps(d, separators=(",", ":"), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Container:
        d = json.loads(text)
        d["state"] = State(**d.get("state") or {})
        return cls(**d)
