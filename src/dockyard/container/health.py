"""Healthchecks (layer L4): HEALTHCHECK of the image or `--health-*` flags, run by the
supervisor. Docker's rules: probes every Interval (StartInterval during StartPeriod), each
bounded by Timeout; exit 0 is healthy, anything else a failure; Retries consecutive failures
make the container unhealthy (failures during the start period do not count); the last five
results are kept in State.Health.Log.

A probe is `dockyard exec` in a child interpreter, run from a thread: the supervisor's loop
never blocks on it, and the probe's output is captured without touching the supervisor's own
stdio. Results come back through a queue and a wake-up fd; the loop records them.
"""

from __future__ import annotations

import contextlib
import os
import queue
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dockyard.units import rfc3339

NS = 1_000_000_000
DEFAULT_INTERVAL = 30.0
DEFAULT_TIMEOUT = 30.0
DEFAULT_START_INTERVAL = 5.0
DEFAULT_RETRIES = 3
MAX_LOG = 5
MAX_OUTPUT = 4096


@dataclass
class Result:
    start: str
    end: str
    exit_code: int
    output: str


def probe_command(test: list[str]) -> list[str] | None:
    if not test or test[0] == "NONE":
        return None
    if test[0] == "CMD":
        return list(test[1:])
    if test[0] == "CMD-SHELL":
        return ["/bin/sh", "-c", " ".join(test[1:])]
    return list(test)


class HealthMonitor:
    def __init__(self, cfg: dict[str, Any], root: Path, cid: str, wake_fd: int) -> None:
        self.cmd = probe_command(list(cfg.get("Test") or []))
        self.interval = (cfg.get("Interval") or 0) / NS or DEFAULT_INTERVAL
        self.timeout = (cfg.get("Timeout") or 0) / NS or DEFAULT_TIMEOUT
        self.start_period = (cfg.get("StartPeriod") or 0) / NS
        self.start_interval = (cfg.get("StartInterval") or 0) / NS or DEFAULT_START_INTERVAL
        self.retries = int(cfg.get("Retries") or 0) or DEFAULT_RETRIES
        self.root = root
        self.cid = cid
        self.wake_fd = wake_fd
        self.started = time.monotonic()
        self.next = self.started + self._period(self.started)
        self.results: queue.Queue[Result] = queue.Queue()
        self.running = False

    @property
    def enabled(self) -> bool:
        return self.cmd is not None

    def _in_start_period(self, now: float) -> bool:
        return now - self.started < self.start_period

    def _period(self, now: float) -> float:
        return self.start_interval if self._in_start_period(now) else self.interval

    def due_in(self, now: float) -> float | None:
        if not self.enabled or self.running:
            return None
        return max(0.0, self.next - now)

    def maybe_start(self, now: float) -> None:
        if self.enabled and not self.running and now >= self.next:
            self.running = True
            threading.Thread(target=self._probe, daemon=True).start()

    def _probe(self) -> None:
        assert self.cmd is not None
        start = rfc3339()
        argv = [sys.executable, "-m", "dockyard", "--root", str(self.root), "exec", self.cid]
        try:
            p = subprocess.run(
                [*argv, *self.cmd],
                capture_output=True,
                timeout=self.timeout,
                stdin=subprocess.DEVNULL,
            )
            code, out = p.returncode, (p.stdout + p.stderr)
        except subprocess.TimeoutExpired as e:
            code = -1
            out = f"Health check exceeded timeout ({self.timeout:g}s)".encode() + (e.output or b"")
        self.results.put(
            Result(start, rfc3339(), code, out[:MAX_OUTPUT].decode("utf-8", "replace"))
        )
        with contextlib.suppress(OSError):
            os.write(self.wake_fd, b"h")

    def collect(self, health: dict[str, Any] | None) -> dict[str, Any] | None:
        """Fold finished probes into State.Health; None when nothing changed."""
        changed = False
        h = dict(health or {"Status": "starting", "FailingStreak": 0, "Log": []})
        while True:
            try:
                r = self.results.get_nowait()
            except queue.Empty:
                break
            changed = True
            self.running = False
            now = time.monotonic()
            self.next = now + self._period(now)
            log = list(h.get("Log") or [])
            log.append(
                {"Start": r.start, "End": r.end, "ExitCode": r.exit_code, "Output": r.output}
            )
            h["Log"] = log[-MAX_LOG:]
            if r.exit_code == 0:
                h["Status"] = "healthy"
                h["FailingStreak"] = 0
            elif not (self._in_start_period(now) and h.get("Status") == "starting"):
                h["FailingStreak"] = int(h.get("FailingStreak", 0)) + 1
                if h["FailingStreak"] >= self.retries:
                    h["Status"] = "unhealthy"
        return h if changed else None
