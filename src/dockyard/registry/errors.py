"""Registry errors: typed `DockyardError`s for each HTTP failure a registry can answer with.

The OCI distribution spec lets a registry explain a 4xx with a JSON body
`{"errors": [{"code": "MANIFEST_UNKNOWN", "message": "manifest unknown", "detail": ...}]}`.
`error_from_response` turns status + body into one of the classes below, whose message is
`<code lowercased>: <message>` the way Docker prints it (e.g. "unauthorized: authentication
required"); a body that is not such JSON falls back to a message per status.
"""

from __future__ import annotations

import json
from typing import Any

from dockyard.errors import DockyardError, InvalidArgument, NotFound, Unavailable


class RegistryError(DockyardError):
    """A registry answered with an error. `status` is the HTTP status (0: no answer)."""

    def __init__(self, message: str, *, status: int = 0, codes: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.status = status
        self.codes = codes


class Unauthorized(RegistryError):
    """401: no or bad credentials."""

    http_status = 401


class Denied(RegistryError):
    """403: the credentials are valid but not allowed to do this."""

    http_status = 403


class RegistryNotFound(RegistryError, NotFound):
    """404: the repository, manifest or blob does not exist."""


class RegistryInvalid(RegistryError, InvalidArgument):
    """400-class errors other than 401/403/404: the registry refused the request's content."""


class RegistryUnavailable(RegistryError, Unavailable):
    """5xx, 429 after retries, or no connection at all."""


_DEFAULT_MESSAGES = {
    401: "unauthorized: authentication required",
    403: "denied: requested access to the resource is denied",
    404: "not found",
    405: "unsupported: the operation is unsupported",
    429: "toomanyrequests: too many requests",
}


def parse_error_body(body: bytes) -> list[tuple[str, str]]:
    """(code, message) pairs of an OCI distribution error body; [] when it is not one."""
    try:
        obj: Any = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return []
    if not isinstance(obj, dict) or not isinstance(obj.get("errors"), list):
        return []
    out: list[tuple[str, str]] = []
    for e in obj["errors"]:
        if isinstance(e, dict):
            out.append((str(e.get("code") or "UNKNOWN"), str(e.get("message") or "")))
    return out


def _class_for(status: int) -> type[RegistryError]:
    if status == 401:
        return Unauthorized
    if status == 403:
        return Denied
    if status == 404:
        return RegistryNotFound
    if status == 429 or status >= 500:
        return RegistryUnavailable
    return RegistryInvalid


def error_from_response(status: int, body: bytes, what: str = "") -> RegistryError:
    """The typed error for a failed response; `what` (e.g. a reference) is added for context."""
    pairs = parse_error_body(body)
    if pairs:
        message = "; ".join(f"{c.lower()}: {m}" if m else c.lower() for c, m in pairs)
    elif status in _DEFAULT_MESSAGES:
        message = _DEFAULT_MESSAGES[status]
    else:
        message = f"unexpected HTTP status {status}"
    if status == 404 and what and not pairs:
        message = f"{what}: not found"
    cls = _class_for(status)
    if status == 401 and not message.startswith("unauthorized"):
        message = f"unauthorized: {message}"
    return cls(message, status=status, codes=tuple(c for c, _ in pairs))
