"""Independent stages in parallel (layer L4): one forked worker process per stage of a level.

`run_level(builder, stages)` runs the stages of one `BuildPlan.levels` group (they depend only on
earlier levels, whose states the workers inherit) at the same time and returns their states.
A stage whose every step is a cache hit is first resolved in the parent (a cache-only pass:
its progress is recorded and replayed), so a cached rebuild forks nothing.

Why processes, not threads: a RUN forks its container straight from the calling process
(`runtime.launch`, a raw clone(2) through ctypes), which is only safe from a single-threaded
process; and SQLite connections must not be shared between threads. So the parent stays
single-threaded and only multiplexes pipes; each worker is a fork of it that opens its own
`Engine` (fresh SQLite connections; the content and snapshot stores are process-safe; the build's
GC lock and lease are inherited) and runs exactly one stage.

Protocol: a worker writes JSON lines to its pipe — progress events (`vertex`, `log`, `cached`,
`note`, `done`, `error`, `write`) with the worker's own vertex numbers, which the parent maps to
the build's numbers as it replays them on the real `Progress` (so the output reads like
BuildKit's: every line carries its step number, lines of concurrent steps interleave whole), and
finally `result` (the stage's `State`, its stats, new file-hash cache rows) or `fail`.

Invariants: a worker never returns into the parent's code (everything runs under `os._exit`);
when one stage fails the others are cancelled (SIGTERM: the running RUN container is killed, the
worker unwinds through its cleanups) and the first failure is raised; every worker is reaped
before `run_level` returns or raises, also on KeyboardInterrupt.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import select
import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dockyard import errors
from dockyard.build import run as runmod
from dockyard.build.cache import BuildCache, State
from dockyard.build.output import Progress

if TYPE_CHECKING:
    from dockyard.build.executor import Builder


_KEEP: list[object] = []


class Cancelled(errors.DockyardError):
    """A worker stopped because another stage failed (or the build was interrupted)."""


# ---- worker side -------------------------------------------------------------------------


class WorkerProgress(Progress):
    """Hands progress events to `sink` (a worker: its pipe to the parent; the parent's
    cache-only pass: a list); a vertex after a cancel request raises."""

    def __init__(self, sink: Callable[[dict[str, Any]], None]) -> None:
        super().__init__()
        self.sink = sink

    def send(self, **msg: Any) -> None:
        self.sink(msg)

    def vertex(self, name: str) -> int:
        if runmod.RUNNING.cancelled:
            raise Cancelled("cancelled")
        self._n += 1
        self.send(t="vertex", v=self._n, name=name)
        return self._n

    def cached(self, v: int) -> None:
        self.send(t="cached", v=v)

    def log(self, v: int, line: str) -> None:
        self.send(t="log", v=v, line=line)

    def note(self, v: int, text: str) -> None:
        self.send(t="note", v=v, text=text)

    def done(self, v: int) -> None:
        self.send(t="done", v=v)

    def error(self, v: int, message: str) -> None:
        if runmod.RUNNING.cancelled:
            self.send(t="canceled", v=v)
        else:
            self.send(t="error", v=v, message=message)

    def write(self, text: str, flush: bool = False) -> None:
        self.send(t="write", text=text)


def _worker(b: Builder, index: int, fd: int) -> int:
    """The body of a worker process: run stage `index`, report, return the exit status."""
    from dockyard.engine import Engine

    signal.signal(signal.SIGTERM, runmod.cancel)
    signal.signal(signal.SIGINT, runmod.cancel)
    runmod.RUNNING.worker = True
    out = os.fdopen(fd, "w", encoding="utf-8", errors="surrogateescape")

    def sink(msg: dict[str, Any]) -> None:
        out.write(json.dumps(msg) + "\n")
        out.flush()

    progress = WorkerProgress(sink)
    try:
        hc = b.context.hash_cache
        before = dict(hc.rows)
        _KEEP.append(b.engine)  # the parent's (its DB closed before the fork): left alone
        b.engine = Engine(b.engine.config)  # never the parent's SQLite connections
        b.cache = BuildCache(b.engine.meta, enabled=b.cache.enabled)
        b.progress = progress
        zero = (b.stats.containers, b.stats.cached, b.stats.executed)
        state = b._stage(b.stages[index])
        stats = [b.stats.containers - zero[0], b.stats.cached - zero[1],
                 b.stats.executed - zero[2]]  # fmt: skip
        rows = [[k, list(v[0]), v[1], v[2]] for k, v in hc.rows.items() if before.get(k) != v]
        progress.send(t="result", state=state.to_json(), stats=stats, rows=rows)
        return 0
    except BaseException as e:  # everything goes to the parent, nothing escapes the fork
        progress.send(t="fail", **_error_fields(e))
        return 1


def _error_fields(e: BaseException) -> dict[str, Any]:
    from dockyard.build.executor import BuildError

    out: dict[str, Any] = {"cls": type(e).__name__, "message": str(e)}
    if isinstance(e, errors.DockyardError):
        out["message"] = e.message
    if isinstance(e, BuildError):
        out.update(step=e.step, file=e.file, line=e.line)
    return out


def _rebuild_error(msg: dict[str, Any]) -> errors.DockyardError:
    from dockyard.build.executor import BuildError

    if msg.get("cls") == "BuildError":
        return BuildError(msg["message"], msg.get("step", ""), msg.get("file", ""),
                          int(msg.get("line", 0)))  # fmt: skip
    cls = getattr(errors, str(msg.get("cls")), None)
    if isinstance(cls, type) and issubclass(cls, errors.DockyardError):
        return cls(msg["message"])
    return errors.DockyardError(f"{msg.get('cls')}: {msg['message']}")


# ---- parent side -------------------------------------------------------------------------


@dataclass
class _Child:
    index: int
    pid: int
    fd: int
    buf: bytes = b""
    vertices: dict[int, int] = field(default_factory=dict)
    result: dict[str, Any] | None = None
    failure: dict[str, Any] | None = None


def run_level(b: Builder, indices: Sequence[int]) -> dict[int, State]:
    """Run the stages `indices` (one level of the plan): those fully in the cache right here
    (no process costs a fork), the others in worker processes (one left: right here too)."""
    out: dict[int, State] = {}
    todo: list[int] = []
    for i in indices:
        st = _from_cache(b, i)
        if st is None:
            todo.append(i)
        else:
            out[i] = st
    if len(todo) == 1:
        out[todo[0]] = b._stage(b.stages[todo[0]])
    elif todo:
        out.update(_in_workers(b, todo))
    return out


def _from_cache(b: Builder, index: int) -> State | None:
    """The stage's state if every step is a usable cache hit (its progress is then
    replayed); None, with nothing reported or counted, at the first miss."""
    from dockyard.build.executor import CacheMiss

    events: list[dict[str, Any]] = []
    saved = (b.progress, dataclasses.replace(b.stats))
    b.progress, b.cache_only = WorkerProgress(events.append), True
    try:
        state = b._stage(b.stages[index])
    except CacheMiss:
        b.stats = saved[1]
        return None
    except BaseException:  # a real failure (a missing COPY source): show its steps too
        _replay(saved[0], index, events)
        raise
    finally:
        b.progress, b.cache_only = saved[0], False
    _replay(b.progress, index, events)
    return state


def _replay(p: Progress, index: int, events: list[dict[str, Any]]) -> None:
    replay = _Child(index, 0, -1)
    for e in events:
        _event(p, replay, e)


def _in_workers(b: Builder, indices: Sequence[int]) -> dict[int, State]:
    _ = b.context.hash_cache  # loaded once here, so workers report only the rows they add
    nets = b.engine.__dict__.pop("networks", None)  # reopened on demand, after the forks
    if nets is not None:
        nets.close()
    children: list[_Child] = []
    try:
        with b.engine.meta.closed_for_fork():  # workers open their own (see `_worker`)
            for i in indices:
                children.append(_fork(b, i))
        first = _pump(b, children)
    finally:
        _stop(children)
    if first is not None:
        raise _rebuild_error(first)
    return _collect(b, children)


def _fork(b: Builder, index: int) -> _Child:
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the worker: never returns
        code = 1
        try:
            os.close(r)
            code = _worker(b, index, w)
        finally:
            os._exit(code)
    os.close(w)
    return _Child(index, pid, r)


def _pump(b: Builder, children: list[_Child]) -> dict[str, Any] | None:
    """Replay the workers' events until every pipe is closed; return the first failure.
    On a failure, the other workers are asked to stop."""
    first: dict[str, Any] | None = None
    open_fds = {c.fd: c for c in children}
    while open_fds:
        ready, _, _ = select.select(list(open_fds), [], [])
        for fd in ready:
            c = open_fds[fd]
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                del open_fds[fd]
                continue
            c.buf += chunk
            *lines, c.buf = c.buf.split(b"\n")
            for line in lines:
                _event(b.progress, c, json.loads(line))
            if c.failure is not None and first is None and c.failure["cls"] != "Cancelled":
                first = c.failure
                _signal_all(children, signal.SIGTERM)
    if first is None:  # a worker that died without a word (killed) counts as a failure
        for c in children:
            if c.result is None:
                first = c.failure or {"cls": "DockyardError",
                                      "message": f"build worker {c.pid} died"}  # fmt: skip
                break
    return first


def _event(p: Progress, c: _Child, msg: dict[str, Any]) -> None:
    t = msg["t"]
    if t == "vertex":
        c.vertices[msg["v"]] = p.vertex(msg["name"])
    elif t == "write":
        p.write(msg["text"])
    elif t == "result":
        c.result = msg
    elif t == "fail":
        c.failure = msg
    else:
        v = c.vertices[msg["v"]]
        if t == "log":
            p.log(v, msg["line"])
        elif t == "cached":
            p.cached(v)
        elif t == "note":
            p.note(v, msg["text"])
        elif t == "done":
            p.done(v)
        elif t == "error":
            p.error(v, msg["message"])
        elif t == "canceled":
            p.write(f"#{v} CANCELED\n", flush=True)


def _signal_all(children: list[_Child], sig: int) -> None:
    for c in children:
        with contextlib.suppress(ProcessLookupError):
            os.kill(c.pid, sig)


def _stop(children: list[_Child]) -> None:
    """Reap every worker; on the way out of an exception, cancel the ones still running
    (their pipes are closed first, so none blocks writing to us)."""
    for c in children:
        os.close(c.fd)
        try:
            pid, _ = os.waitpid(c.pid, os.WNOHANG)
        except ChildProcessError:
            continue
        if pid == 0:
            _signal_all([c], signal.SIGTERM)
    for c in children:
        while True:
            try:
                os.waitpid(c.pid, 0)
                break
            except ChildProcessError:
                break
            except KeyboardInterrupt:
                _signal_all([c], signal.SIGTERM)


def _collect(b: Builder, children: list[_Child]) -> dict[int, State]:
    out: dict[int, State] = {}
    hc = b.context.hash_cache
    for c in children:
        assert c.result is not None
        out[c.index] = State.from_json(c.result["state"])
        containers, cached, executed = c.result["stats"]
        b.stats.containers += containers
        b.stats.cached += cached
        b.stats.executed += executed
        hc.merge({r[0]: (tuple(r[1]), r[2], r[3]) for r in c.result["rows"]})
    return out
