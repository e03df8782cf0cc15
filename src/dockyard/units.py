"""Human-readable sizes and durations exactly as Docker's CLI prints them (go-units).

Pure functions, layer L0. `human_size` is decimal (kB = 1000 B) with 3 significant digits
(`4.26MB`), `human_duration` is go-units' HumanDuration ("About a minute", "3 days").
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

_UNITS = ("B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB")
_BIN_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB")


def _go_g(value: float, precision: int) -> str:
    s = f"{value:.{precision}g}"
    return s


def human_size(size: float, precision: int = 3) -> str:
    i = 0
    while size >= 1000.0 and i < len(_UNITS) - 1:
        size /= 1000.0
        i += 1
    return f"{_go_g(size, precision)}{_UNITS[i]}"


def bytes_size(size: float) -> str:
    """go-units BytesSize: binary units with 4 significant digits (`1.5GiB`)."""
    i = 0
    while size >= 1024.0 and i < len(_BIN_UNITS) - 1:
        size /= 1024.0
        i += 1
    return f"{_go_g(size, 4)}{_BIN_UNITS[i]}"


def human_duration(seconds: float) -> str:
    s = int(seconds)
    if s < 1:
        return "Less than a second"
    if s == 1:
        return "1 second"
    if s < 60:
        return f"{s} seconds"
    minutes = int(seconds / 60)
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = int(seconds / 3600 + 0.5)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{int(seconds / 3600 / 24 / 365)} years"


_SIZE_RE = re.compile(r"^(\d+(?:\.\d+)?)\s*([kmgtp]?)(i?b?)$", re.IGNORECASE)


def parse_size(text: str) -> int:
    """Parse `512m`, `1g`, `100MB`, `2GiB` as go-units RAMInBytes does (binary multiples)."""
    m = _SIZE_RE.match(text.strip())
    if not m:
        raise ValueError(f"invalid size: '{text}'")
    mult = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}
    return int(float(m.group(1)) * mult[m.group(2).lower()])


def parse_time(value: str) -> datetime | None:
    """Parse an RFC 3339 timestamp as Go writes them (nanoseconds allowed)."""
    if not value:
        return None
    v = value.strip()
    if v.endswith("Z"):
        v = v[:-1] + "+00:00"
    m = re.match(r"^(.*?T\d\d:\d\d:\d\d)(\.\d+)?(.*)$", v)
    if m:
        frac = (m.group(2) or "")[:7].ljust(7, "0") if m.group(2) else ""
        v = m.group(1) + frac + m.group(3)
    try:
        dt = datetime.fromisoformat(v)
    except ValueError:
        return None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def rfc3339(ts: float | None = None) -> str:
    """A UTC timestamp as Docker writes them: 2024-01-02T03:04:05.123456789Z."""
    dt = datetime.fromtimestamp(ts if ts is not None else datetime.now(UTC).timestamp(), UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond:06d}000Z"


def since(value: str | float, now: float | None = None) -> str:
    """`2 days ago` for an RFC 3339 string or unix time; `N/A` when unknown."""
    ts: float | None
    if isinstance(value, str):
        dt = parse_time(value)
        ts = dt.timestamp() if dt else None
    else:
        ts = value
    if ts is None or ts <= 0:
        return "N/A"
    n = now if now is not None else datetime.now(UTC).timestamp()
    return human_duration(max(0.0, n - ts)) + " ago"
