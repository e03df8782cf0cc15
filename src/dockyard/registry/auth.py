"""Registry authentication: `WWW-Authenticate` challenges, basic auth and bearer tokens.

A registry answers `GET /v2/` (or any request) with 401 and a challenge such as
`Bearer realm="https://auth.example/token",service="registry.example",scope="repository:x:pull"`.
For `Basic`, every request carries the user's credentials; for `Bearer`, a token is fetched from
`realm` for the request's scopes (with the user's credentials if any, anonymously otherwise),
cached per scope set until it expires, and refreshed after a 401.

Invariants: credentials are only ever sent to the registry host itself and to the realm its
challenge names; a cached token is never used past its `expires_in` (less a margin).
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from urllib.parse import urlencode, urlsplit

from dockyard.registry.credentials import Credentials
from dockyard.registry.errors import RegistryError, Unauthorized, error_from_response
from dockyard.registry.transport import Transport

_TOKEN_RE = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_PARAM_RE = re.compile(rf'\s*({_TOKEN_RE})\s*=\s*("(?:[^"\\]|\\.)*"|{_TOKEN_RE}=*)\s*(,|$)')
_SCHEME_RE = re.compile(rf"\s*,?\s*({_TOKEN_RE})(?:\s+|$)")
_EXPIRY_MARGIN = 10.0
_clock = time.monotonic  # replaceable in tests
_MIN_EXPIRES_IN = 60


@dataclass(frozen=True)
class Challenge:
    scheme: str  # lower-cased: "basic", "bearer", ...
    params: dict[str, str] = field(default_factory=dict)

    @property
    def realm(self) -> str | None:
        return self.params.get("realm")


def parse_challenges(header: str) -> list[Challenge]:
    """Parse a `WWW-Authenticate` value (RFC 7235; several challenges may share it)."""
    out: list[Challenge] = []
    pos = 0
    while pos < len(header):
        m = _SCHEME_RE.match(header, pos)
        if not m:
            break
        scheme = m.group(1).lower()
        pos = m.end()
        params: dict[str, str] = {}
        while pos < len(header):
            p = _PARAM_RE.match(header, pos)
            if not p:
                break
            value = p.group(2)
            if value.startswith('"'):
                value = re.sub(r"\\(.)", r"\1", value[1:-1])
            params[p.group(1).lower()] = value
            pos = p.end()
        out.append(Challenge(scheme, params))
        while pos < len(header) and header[pos] in " ,":
            pos += 1
    return out


def repository_scope(repo: str, actions: Iterable[str] = ("pull",)) -> str:
    return f"repository:{repo}:{','.join(actions)}"


def merge_scopes(scopes: Iterable[str]) -> tuple[str, ...]:
    """Sorted, deduplicated scopes with the actions of one resource merged into one scope."""
    merged: dict[str, set[str]] = {}
    for s in scopes:
        resource, _, actions = s.rpartition(":")
        if not resource:
            merged.setdefault(s, set())
            continue
        merged.setdefault(resource, set()).update(a for a in actions.split(",") if a)
    return tuple(sorted(f"{r}:{','.join(sorted(a))}" if a else r for r, a in merged.items()))


def basic_header(creds: Credentials) -> str:
    raw = f"{creds.username}:{creds.password}".encode()
    return "Basic " + base64.b64encode(raw).decode()


@dataclass
class _Token:
    value: str
    expires_at: float


class Authorizer:
    """Chooses the Authorization header for a request to one registry host.

    `credentials` is called at most once, lazily, to look the user's credentials up.
    """

    def __init__(
        self,
        transport: Transport,
        credentials: Callable[[], Credentials | None],
        user_agent: str,
    ) -> None:
        self._transport = transport
        self._lookup = credentials
        self._creds: Credentials | None = None
        self._looked_up = False
        self._user_agent = user_agent
        self._challenge: Challenge | None = None
        self._tokens: dict[tuple[str, ...], _Token] = {}
        self._fetching: dict[tuple[str, ...], threading.Lock] = {}
        self._lock = threading.Lock()

    def credentials(self) -> Credentials | None:
        with self._lock:
            if not self._looked_up:
                self._creds = self._lookup()
                self._looked_up = True
            return self._creds

    def set_challenge(self, header: str | None) -> Challenge | None:
        """Remember the registry's preferred challenge (bearer over basic)."""
        challenges = parse_challenges(header or "")
        by_scheme = {c.scheme: c for c in challenges}
        chosen = by_scheme.get("bearer") or by_scheme.get("basic")
        if chosen is not None:
            self._challenge = chosen
        return chosen

    def header(self, scopes: tuple[str, ...]) -> str | None:
        """The Authorization value for a request needing `scopes`, or None (anonymous)."""
        ch = self._challenge
        if ch is None:
            return None
        if ch.scheme == "basic":
            creds = self.credentials()
            return basic_header(creds) if creds and not creds.identity_token else None
        if ch.scheme == "bearer":
            return "Bearer " + self.token(merge_scopes(scopes))
        return None

    def refresh(self, header: str | None, scopes: tuple[str, ...]) -> tuple[str, ...] | None:
        """After a 401: take the new challenge, drop cached tokens for `scopes`, and return the
        scopes to retry with (adding any the challenge asked for), or None if retrying cannot
        help (basic auth already sent, or no usable challenge)."""
        before = self._challenge
        ch = self.set_challenge(header)
        if ch is None:
            return None
        if ch.scheme == "basic":
            creds = self.credentials()
            if before is not None and before.scheme == "basic":
                return None
            return scopes if creds else None
        extra = (ch.params["scope"],) if ch.params.get("scope") else ()
        new = merge_scopes((*scopes, *extra))
        with self._lock:
            self._tokens.pop(merge_scopes(scopes), None)
            self._tokens.pop(new, None)
        return new

    def _cached(self, scopes: tuple[str, ...]) -> str | None:
        with self._lock:
            t = self._tokens.get(scopes)
            return t.value if t is not None and t.expires_at > _clock() else None

    def token(self, scopes: tuple[str, ...]) -> str:
        """A valid token for `scopes`; concurrent callers for one scope share one fetch."""
        value = self._cached(scopes)
        if value is not None:
            return value
        creds = self.credentials()
        with self._lock:
            fetch_lock = self._fetching.setdefault(scopes, threading.Lock())
        with fetch_lock:
            value = self._cached(scopes)
            if value is not None:
                return value
            assert self._challenge is not None
            now = _clock()
            value, expires_in = fetch_token(
                self._transport, self._challenge, scopes, creds, self._user_agent
            )
            with self._lock:
                self._tokens[scopes] = _Token(value, now + max(expires_in - _EXPIRY_MARGIN, 1.0))
            return value


def fetch_token(
    transport: Transport,
    challenge: Challenge,
    scopes: tuple[str, ...],
    creds: Credentials | None,
    user_agent: str,
) -> tuple[str, int]:
    """Get a bearer token from the challenge's realm: (token, expires_in seconds)."""
    realm = challenge.realm
    if not realm or urlsplit(realm).scheme not in ("http", "https"):
        raise RegistryError(f"registry sent a bearer challenge without a usable realm: {realm!r}")
    service = challenge.params.get("service")
    headers = {"User-Agent": user_agent, "Accept": "application/json"}
    if creds is not None and creds.identity_token:
        form: list[tuple[str, str]] = [
            ("grant_type", "refresh_token"),
            ("refresh_token", creds.identity_token),
            ("client_id", "dockyard"),
        ]
        if service:
            form.append(("service", service))
        form += [("scope", " ".join(scopes))] if scopes else []
        headers["Content-Type"] = "application/x-www-form-urlencoded"
        resp = transport.request("POST", realm, headers, urlencode(form).encode())
    else:
        query: list[tuple[str, str]] = [("service", service)] if service else []
        query += [("scope", s) for s in scopes]
        if creds is not None:
            headers["Authorization"] = basic_header(creds)
            query.append(("account", creds.username))
        sep = "&" if "?" in realm else "?"
        url = realm + (sep + urlencode(query) if query else "")
        resp = transport.request("GET", url, headers)
    try:
        body = resp.read_all(1 << 20)
    finally:
        resp.close()
    if resp.status != 200:
        err = error_from_response(resp.status, body)
        if resp.status in (401, 403):
            raise Unauthorized(
                f"unauthorized: {'incorrect username or password' if creds else err.message}",
                status=resp.status,
                codes=err.codes,
            )
        raise err
    try:
        obj = json.loads(body)
        value = obj.get("token") or obj.get("access_token")
        expires_in = int(obj.get("expires_in") or _MIN_EXPIRES_IN)
    except (ValueError, AttributeError, TypeError):
        raise RegistryError(f"invalid token response from {realm}") from None
    if not isinstance(value, str) or not value:
        raise RegistryError(f"token response from {realm} has no token")
    return value, max(expires_in, _MIN_EXPIRES_IN)
