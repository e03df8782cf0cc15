"""JSON for the runtime's hot path, without importing `json` (which drags in `re` and `enum`).

Responsibility: `loads` and `dumps` (compact) built directly on CPython's `_json` accelerator,
the same C scanner and encoder `json` uses, so `dockyard-runtime run` does not pay ~10 ms of
imports. Falls back to `json` when `_json` is unavailable. `dumps_pretty` uses `json` (cold path).
Invariant: results are identical to `json.loads` / `json.dumps(separators=(",", ":"))`.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (startup time)
if TYPE_CHECKING:
    from typing import Any, ClassVar


_WS = " \t\n\r"


def _raise_default(obj: object) -> Any:
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


def _constant(name: str) -> float:
    return {"NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf")}[name]


class _Context:
    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = staticmethod(_constant)
    memo: ClassVar[dict[str, str]] = {}


try:
    import _json

    _scan: Any = _json.make_scanner(_Context())  # type: ignore[arg-type]
    _encode: Any = _json.make_encoder(
        None, _raise_default, _json.encode_basestring_ascii, None, ":", ",", False, False, True
    )
except (ImportError, AttributeError, TypeError):  # pragma: no cover - non-CPython
    _scan = None
    _encode = None


def loads(text: str) -> Any:
    """Parse one JSON document (ValueError on malformed input)."""
    if _scan is None:  # pragma: no cover
        import json

        return json.loads(text)
    idx = len(text) - len(text.lstrip(_WS))
    try:
        obj, end = _scan(text, idx)
    except StopIteration as e:
        raise ValueError(f"malformed JSON at offset {e.value}") from None
    rest = text[end:].strip(_WS)
    if rest:
        raise ValueError(f"malformed JSON: extra data at offset {end}")
    return obj


def dumps(obj: Any) -> str:
    """Compact JSON (ASCII, no spaces)."""
    if _encode is None:  # pragma: no cover
        import json

        return json.dumps(obj, separators=(",", ":"))
    return "".join(_encode(obj, 0))


def dumps_pretty(obj: Any) -> str:
    import json

    return json.dumps(obj, indent="\t") + "\n"
