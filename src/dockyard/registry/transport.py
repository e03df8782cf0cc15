"""HTTP/1.1 transport for the registry client: keep-alive connection pool over `http.client`.

Only this module talks to sockets. A `Transport` keeps idle connections per (scheme, host:port)
and hands one to each request; a `Response` gives its connection back to the pool once its body
was read to the end (and closes it otherwise), so a many-layer pull reuses a few connections.

Invariants:
- A connection is in the pool only when idle with no unread response bytes.
- A request that fails on a *reused* connection before any response arrived (the server closed
  an idle keep-alive connection) is sent once more on a fresh connection; other errors propagate
  as `OSError` / `http.client.HTTPException` for the caller's retry policy.
- Thread-safe: many threads may share one Transport.
"""

from __future__ import annotations

import http.client
import threading
from collections.abc import Mapping
from email.message import Message
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    import ssl

_MAX_IDLE_PER_HOST = 8


class Response:
    """A response whose body is read on demand; `close()` releases its connection."""

    def __init__(
        self,
        transport: Transport,
        key: tuple[str, str],
        conn: http.client.HTTPConnection,
        raw: http.client.HTTPResponse,
        url: str,
        method: str,
    ) -> None:
        self._transport = transport
        self._key = key
        self._conn: http.client.HTTPConnection | None = conn
        self._raw = raw
        self.url = url
        self.method = method
        self.status = raw.status
        self.headers: Message = raw.headers
        if method == "HEAD" or self.status in (204, 304):
            raw.read()  # no body: marks the response complete so the connection is reused
            self._release()

    def header(self, name: str) -> str | None:
        return self.headers.get(name)

    def read(self, n: int = -1) -> bytes:
        if self._conn is None:
            return b""
        data = self._raw.read() if n < 0 else self._raw.read(n)
        if n < 0 or not data or self._raw.isclosed():
            self._release()
        return data

    def read_all(self, limit: int) -> bytes:
        """The whole body; raises ValueError when it is longer than `limit`."""
        buf = bytearray()
        while True:
            b = self.read(min(1 << 20, limit + 1 - len(buf)))
            if not b:
                return bytes(buf)
            buf += b
            if len(buf) > limit:
                self.close()
                raise ValueError(f"response body larger than {limit} bytes")

    def _release(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        truncated = self._raw.length not in (None, 0)
        if self._raw.will_close or not self._raw.isclosed() or truncated:
            self._raw.close()
            conn.close()
        else:
            self._transport._put(self._key, conn)

    def close(self) -> None:
        """Release the connection: pooled when the body was fully read, closed otherwise."""
        if self._conn is not None and not self._raw.isclosed():
            conn, self._conn = self._conn, None
            self._raw.close()
            conn.close()
        self._release()

    def __enter__(self) -> Response:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Transport:
    def __init__(self, *, timeout: float = 60.0, verify_tls: bool = True) -> None:
        self.timeout = timeout
        self.verify_tls = verify_tls
        self._idle: dict[tuple[str, str], list[http.client.HTTPConnection]] = {}
        self._lock = threading.Lock()
        self._ssl: ssl.SSLContext | None = None

    def _ssl_context(self) -> ssl.SSLContext:
        import ssl

        with self._lock:
            if self._ssl is None:
                ctx = ssl.create_default_context()
                if not self.verify_tls:
                    ctx.check_hostname = False
                    ctx.verify_mode = ssl.CERT_NONE
                self._ssl = ctx
            return self._ssl

    def _new(self, key: tuple[str, str]) -> http.client.HTTPConnection:
        scheme, netloc = key
        if scheme == "https":
            return http.client.HTTPSConnection(
                netloc, timeout=self.timeout, context=self._ssl_context()
            )
        if scheme != "http":
            raise ValueError(f"unsupported URL scheme {scheme!r}")
        return http.client.HTTPConnection(netloc, timeout=self.timeout)

    def _get(self, key: tuple[str, str]) -> http.client.HTTPConnection | None:
        with self._lock:
            idle = self._idle.get(key)
            return idle.pop() if idle else None

    def _put(self, key: tuple[str, str], conn: http.client.HTTPConnection) -> None:
        with self._lock:
            idle = self._idle.setdefault(key, [])
            if len(idle) < _MAX_IDLE_PER_HOST:
                idle.append(conn)
                return
        conn.close()

    def request(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
    ) -> Response:
        """Send one request (no redirects followed); the caller must close the response."""
        parts = urlsplit(url)
        key = (parts.scheme, parts.netloc)
        target = parts.path or "/"
        if parts.query:
            target += "?" + parts.query
        hdrs = dict(headers or {})
        if body is not None or method in ("PUT", "POST", "PATCH"):
            hdrs.setdefault("Content-Length", str(len(body or b"")))
        conn = self._get(key)
        reused = conn is not None
        while True:
            if conn is None:
                conn = self._new(key)
            try:
                conn.request(method, target, body=body, headers=hdrs)
                raw = conn.getresponse()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                conn.close()
                if not reused:
                    raise
                conn, reused = None, False
                continue
            except BaseException:
                conn.close()
                raise
            return Response(self, key, conn, raw, url, method)

    def close(self) -> None:
        with self._lock:
            conns = [c for idle in self._idle.values() for c in idle]
            self._idle.clear()
        for c in conns:
            c.close()
