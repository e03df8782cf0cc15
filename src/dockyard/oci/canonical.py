"""Canonical JSON: the one way Dockyard serialises the documents it creates.

Keys sorted, no insignificant whitespace, UTF-8. The same data always gives the same bytes, so
digests of documents we write are stable. Documents we read keep their original bytes: a digest
always names bytes, never a re-serialisation.
"""

from __future__ import annotations

import json
from typing import Any


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def loads(data: bytes | str) -> Any:
    return json.loads(data)
