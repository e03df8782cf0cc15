"""`RegistryClient`: one registry host spoken to over the OCI distribution API (`/v2/`).

Responsibilities: the `/v2/` probe and auth (through `Authorizer`), https by default and plain
http for loopback hosts and registries marked insecure, bounded retries with exponential
backoff on 429/5xx and connection errors, redirects (an Authorization header never follows a
redirect to another host), typed errors for 4xx, and the endpoint calls pull/push need:
manifests (GET/HEAD/PUT, digest-verified), blobs (GET with Range, HEAD) and uploads
(POST/PATCH/PUT, cross-repository mount).

Invariants: a manifest returned by `get_manifest` hashes to the digest asked for (by digest) or
to the registry's `Docker-Content-Digest` (by tag); the client holds no per-request state, so
threads may share it.
"""

from __future__ import annotations

import hashlib
import http.client
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import urlencode, urljoin, urlsplit

from dockyard.digest import Digest, is_digest
from dockyard.errors import DigestMismatch
from dockyard.oci import mediatypes
from dockyard.oci.types import Descriptor
from dockyard.registry.auth import Authorizer, basic_header, fetch_token, repository_scope
from dockyard.registry.credentials import Credentials, CredentialStore
from dockyard.registry.errors import (
    RegistryError,
    RegistryUnavailable,
    Unauthorized,
    error_from_response,
)
from dockyard.registry.transport import Response, Transport

MANIFEST_ACCEPT = ", ".join(
    [
        mediatypes.OCI_INDEX,
        mediatypes.DOCKER_MANIFEST_LIST,
        mediatypes.OCI_MANIFEST,
        mediatypes.DOCKER_MANIFEST,
    ]
)
MAX_MANIFEST_SIZE = 4 << 20
DOCKER_HUB_HOST = "registry-1.docker.io"
_HUB_NAMES = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})
_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_CONN_ERRORS = (OSError, http.client.HTTPException)


def registry_host(domain: str) -> str:
    """The host to contact for a reference domain (`docker.io` → registry-1.docker.io)."""
    return DOCKER_HUB_HOST if domain.lower() in _HUB_NAMES else domain


def is_loopback(host: str) -> bool:
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    if host.startswith("["):
        name = host[: host.index("]") + 1]
    return name.lower() in ("localhost", "127.0.0.1", "[::1]", "::1") or name.startswith("127.")


def clients_for(
    domain: str,
    *,
    credentials: CredentialStore | None = None,
    mirrors: Sequence[str] = (),
    insecure_registries: Sequence[str] = (),
    user_agent: str = "dockyard/0.1",
) -> list[RegistryClient]:
    """Clients to try, in order, for a reference domain: for docker.io its mirrors (URLs such
    as `https://mirror.example`) first, then the registry itself (Docker's daemon.json
    `registry-mirrors` and `insecure-registries`)."""
    insecure = {h.lower() for h in insecure_registries}
    host = registry_host(domain)
    out = []
    if host == DOCKER_HUB_HOST:
        out = [RegistryClient(m, credentials=credentials, user_agent=user_agent) for m in mirrors]
    is_insecure = domain.lower() in insecure or host.lower() in insecure
    out.append(
        RegistryClient(host, insecure=is_insecure, credentials=credentials, user_agent=user_agent)
    )
    return out


@dataclass(frozen=True)
class FetchedManifest:
    data: bytes
    media_type: str
    digest: Digest


class RegistryClient:
    def __init__(
        self,
        host: str,
        *,
        insecure: bool = False,
        credentials: CredentialStore | Credentials | None = None,
        user_agent: str = "dockyard/0.1",
        timeout: float = 60.0,
        retries: int = 3,
        backoff: float = 0.25,
    ) -> None:
        scheme, _, rest = host.rpartition("://")
        self.host = registry_host(rest.rstrip("/").split("/", 1)[0])
        self.insecure = insecure
        self.scheme = scheme or ("http" if insecure or is_loopback(self.host) else "https")
        self.base = f"{self.scheme}://{self.host}"
        self.user_agent = user_agent
        self.retries = retries
        self.backoff = backoff
        self.transport = Transport(timeout=timeout)
        self._auth = Authorizer(self.transport, self._lookup(credentials), user_agent)
        self._pinged = False
        self._ping_lock = threading.Lock()

    def _lookup(
        self, credentials: CredentialStore | Credentials | None
    ) -> Callable[[], Credentials | None]:
        host = self.host

        def lookup() -> Credentials | None:
            if isinstance(credentials, CredentialStore):
                return credentials.get("docker.io" if host == DOCKER_HUB_HOST else host)
            return credentials

        return lookup

    def close(self) -> None:
        self.transport.close()

    # --- core request machinery -----------------------------------------------------------
    def ping(self) -> None:
        """`GET /v2/`: learn the auth scheme. Raises when the host is not a registry."""
        resp = self._send("GET", self.base + "/v2/", {})
        body = _read_some(resp)
        if resp.status == 401:
            self._auth.set_challenge(resp.header("WWW-Authenticate"))
        elif resp.status != 200:
            raise error_from_response(resp.status, body, f"{self.host}/v2/")
        self._pinged = True

    def _ensure_ping(self) -> None:
        if self._pinged:
            return
        with self._ping_lock:
            if not self._pinged:
                self._with_retries(self.ping)

    def _with_retries(self, fn: Callable[[], None]) -> None:
        for attempt in range(self.retries + 1):
            try:
                fn()
                return
            except _CONN_ERRORS as e:
                if attempt == self.retries:
                    raise RegistryUnavailable(f"cannot reach registry {self.host}: {e}") from e
                time.sleep(self.backoff * 2**attempt)

    def request(
        self,
        method: str,
        url: str,
        *,
        scopes: tuple[str, ...],
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
        ok: tuple[int, ...] = (200,),
        what: str = "",
    ) -> Response:
        """Send with auth, retries and redirects; return a response whose status is in `ok`
        (404 too when it is listed). Anything else raises a typed `RegistryError`."""
        self._ensure_ping()
        if not url.startswith(("http://", "https://")):
            url = self.base + url
        auth_retried = False
        attempt = 0
        while True:
            hdrs = dict(headers or {})
            authz = self._auth.header(scopes)
            if authz:
                hdrs["Authorization"] = authz
            try:
                resp = self._send(method, url, hdrs, body)
            except _CONN_ERRORS as e:
                if attempt >= self.retries:
                    raise RegistryUnavailable(f"cannot reach registry {self.host}: {e}") from e
                time.sleep(self.backoff * 2**attempt)
                attempt += 1
                continue
            if resp.status in ok:
                return resp
            if resp.status == 401 and not auth_retried:
                _read_some(resp)
                resp.close()
                new_scopes = self._auth.refresh(resp.header("WWW-Authenticate"), scopes)
                if new_scopes is not None:
                    scopes, auth_retried = new_scopes, True
                    continue
            if resp.status in _RETRY_STATUSES and attempt < self.retries:
                _read_some(resp)
                resp.close()
                time.sleep(self._retry_delay(resp, attempt))
                attempt += 1
                continue
            err_body = b"" if method == "HEAD" else _read_some(resp)
            resp.close()
            raise error_from_response(resp.status, err_body, what)

    def _retry_delay(self, resp: Response, attempt: int) -> float:
        after = resp.header("Retry-After")
        if after and after.isdigit():
            return min(float(after), 10.0)
        return float(self.backoff * 2**attempt)

    def _send(
        self, method: str, url: str, headers: dict[str, str], body: bytes | None = None
    ) -> Response:
        """One request, following up to 5 redirects; Authorization stays on this host."""
        headers = {"User-Agent": self.user_agent, **headers}
        origin = urlsplit(url).netloc
        for _ in range(6):
            resp = self.transport.request(method, url, headers, body)
            location = resp.header("Location")
            if resp.status not in _REDIRECTS or not location:
                return resp
            _read_some(resp)
            resp.close()
            url = urljoin(url, location)
            if urlsplit(url).netloc != origin:
                headers.pop("Authorization", None)
            if resp.status == 303:
                method, body = "GET", None
                headers.pop("Content-Length", None)
        raise RegistryError(f"too many redirects from {self.host}")

    # --- manifests ----------------------------------------------------------------------------
    def get_manifest(self, repo: str, reference: str) -> FetchedManifest:
        """GET a manifest or index by tag or digest, verifying its digest."""
        resp = self.request(
            "GET",
            f"/v2/{repo}/manifests/{reference}",
            scopes=(repository_scope(repo),),
            headers={"Accept": MANIFEST_ACCEPT},
            what=f"manifest for {self.host}/{repo}:{reference}",
        )
        try:
            data = resp.read_all(MAX_MANIFEST_SIZE)
        except ValueError:
            raise RegistryError(f"manifest {repo}:{reference} is larger than 4 MiB") from None
        finally:
            resp.close()
        media_type = (resp.header("Content-Type") or "").split(";")[0].strip()
        expected = reference if is_digest(reference) else resp.header("Docker-Content-Digest")
        digest = _verify(data, expected, f"manifest {repo}@{reference}")
        if media_type not in mediatypes.MANIFESTS | mediatypes.INDEXES:
            media_type = _sniff_media_type(data)
        return FetchedManifest(data, media_type, digest)

    def head_manifest(self, repo: str, reference: str) -> Descriptor | None:
        """The manifest's descriptor if it exists, else None."""
        resp = self.request(
            "HEAD",
            f"/v2/{repo}/manifests/{reference}",
            scopes=(repository_scope(repo),),
            headers={"Accept": MANIFEST_ACCEPT},
            ok=(200, 404),
        )
        resp.close()
        if resp.status == 404:
            return None
        dgst = resp.header("Docker-Content-Digest") or (reference if is_digest(reference) else None)
        if dgst is None:
            fetched = self.get_manifest(repo, reference)
            return Descriptor(fetched.media_type, fetched.digest, len(fetched.data))
        return Descriptor(
            media_type=(resp.header("Content-Type") or "").split(";")[0].strip(),
            digest=Digest.parse(dgst),
            size=int(resp.header("Content-Length") or 0),
        )

    def put_manifest(self, repo: str, reference: str, data: bytes, media_type: str) -> Digest:
        resp = self.request(
            "PUT",
            f"/v2/{repo}/manifests/{reference}",
            scopes=(repository_scope(repo, ("pull", "push")),),
            headers={"Content-Type": media_type},
            body=data,
            ok=(200, 201, 202),
            what=f"manifest {repo}:{reference}",
        )
        _read_some(resp)
        resp.close()
        return Digest.of(data)

    # --- blobs ----------------------------------------------------------------------------
    def blob_exists(self, repo: str, digest: str, *, push: bool = False) -> bool:
        actions = ("pull", "push") if push else ("pull",)
        resp = self.request(
            "HEAD",
            f"/v2/{repo}/blobs/{digest}",
            scopes=(repository_scope(repo, actions),),
            ok=(200, 404),
        )
        resp.close()
        return resp.status == 200

    def open_blob(self, repo: str, digest: str, offset: int = 0) -> Response:
        """GET a blob from `offset` (a Range request when > 0). Status 206 means the range was
        honoured, 200 that the body starts at byte 0. The caller verifies and closes."""
        headers = {"Range": f"bytes={offset}-"} if offset else {}
        return self.request(
            "GET",
            f"/v2/{repo}/blobs/{digest}",
            scopes=(repository_scope(repo),),
            headers=headers,
            ok=(200, 206),
            what=f"blob {digest} in {self.host}/{repo}",
        )

    def start_upload(
        self, repo: str, *, mount: str | None = None, from_repo: str | None = None
    ) -> str | None:
        """POST an upload session; its Location, or None when a mount made it unnecessary."""
        scopes = [repository_scope(repo, ("pull", "push"))]
        path = f"/v2/{repo}/blobs/uploads/"
        if mount and from_repo:
            path += "?" + urlencode({"mount": mount, "from": from_repo})
            scopes.append(repository_scope(from_repo))
        resp = self.request(
            "POST", path, scopes=tuple(scopes), ok=(201, 202), what=f"upload to {repo}"
        )
        _read_some(resp)
        resp.close()
        if resp.status == 201:
            return None
        return self._location(resp)

    def upload_chunk(self, repo: str, location: str, data: bytes, start: int) -> str:
        resp = self.request(
            "PATCH",
            location,
            scopes=(repository_scope(repo, ("pull", "push")),),
            headers={
                "Content-Type": "application/octet-stream",
                "Content-Range": f"{start}-{start + len(data) - 1}",
            },
            body=data,
            ok=(202,),
            what=f"upload to {repo}",
        )
        _read_some(resp)
        resp.close()
        return self._location(resp)

    def finish_upload(self, repo: str, location: str, digest: str, data: bytes = b"") -> None:
        sep = "&" if "?" in location else "?"
        resp = self.request(
            "PUT",
            location + sep + urlencode({"digest": digest}),
            scopes=(repository_scope(repo, ("pull", "push")),),
            headers={"Content-Type": "application/octet-stream"},
            body=data,
            ok=(201, 204),
            what=f"upload of {digest} to {repo}",
        )
        _read_some(resp)
        resp.close()

    def _location(self, resp: Response) -> str:
        loc = resp.header("Location")
        if not loc:
            raise RegistryError(f"registry {self.host} sent no upload Location")
        return urljoin(resp.url, loc)

    # --- login ----------------------------------------------------------------------------
    def check_credentials(self, creds: Credentials) -> None:
        """Verify `creds` against /v2/ (basic) or the token server (bearer)."""
        self._with_retries(self.ping)
        resp = self._send("GET", self.base + "/v2/", {"Authorization": basic_header(creds)})
        body = _read_some(resp)
        resp.close()
        if resp.status == 200:
            return
        if resp.status != 401:
            raise error_from_response(resp.status, body, f"{self.host}/v2/")
        ch = self._auth.set_challenge(resp.header("WWW-Authenticate"))
        if ch is None or ch.scheme != "bearer":
            raise Unauthorized("unauthorized: incorrect username or password", status=401)
        fetch_token(self.transport, ch, (), creds, self.user_agent)


def _read_some(resp: Response) -> bytes:
    try:
        return resp.read_all(1 << 16)
    except ValueError:
        return b""


def _verify(data: bytes, expected: str | None, what: str) -> Digest:
    if expected is None:
        return Digest.of(data)
    want = Digest.parse(expected)
    got = Digest(f"{want.algorithm}:{hashlib.new(want.algorithm, data).hexdigest()}")
    if got != want:
        raise DigestMismatch(f"{what}: content digest {got} does not match {want}")
    return Digest.of(data)


def _sniff_media_type(data: bytes) -> str:
    import json

    try:
        obj = json.loads(data)
    except ValueError:
        return mediatypes.OCI_MANIFEST
    mt = obj.get("mediaType") if isinstance(obj, dict) else None
    if isinstance(mt, str) and mt:
        return mt
    if isinstance(obj, dict) and "manifests" in obj:
        return mediatypes.OCI_INDEX
    return mediatypes.OCI_MANIFEST
