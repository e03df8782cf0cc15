"""Registry credentials as Docker keeps them: `$DOCKER_CONFIG/config.json` (default ~/.docker).

The file's `auths` maps a server to `{"auth": base64("user:password")}` (or `identitytoken`);
`credHelpers` names a helper per server and `credsStore` a default helper: the program
`docker-credential-<name>` speaks `get`/`store`/`erase` on stdin/stdout. Docker Hub is keyed
as `https://index.docker.io/v1/`; other servers as `host[:port]` (an `https://` prefix or a
path on a key is tolerated when reading).

Invariants: the file is rewritten atomically (temp file in the same directory, mode 0600,
fsync, rename) and keys this module does not know are kept as they were.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dockyard.errors import DockyardError, InvalidArgument

DOCKER_HUB_KEY = "https://index.docker.io/v1/"
_HUB_ALIASES = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})
_TOKEN_USER = "<token>"


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str = ""
    identity_token: str | None = None

    def __repr__(self) -> str:  # never show secrets in logs or tracebacks
        return f"Credentials(username={self.username!r}, password=***)"


def server_key(server: str) -> str:
    """The key Docker files `server` under: Hub's legacy URL, else the bare host[:port]."""
    host = _host_of(server)
    return DOCKER_HUB_KEY if host in _HUB_ALIASES else host


def _host_of(server: str) -> str:
    s = server.strip()
    for prefix in ("https://", "http://"):
        if s.startswith(prefix):
            s = s[len(prefix) :]
    return s.split("/", 1)[0].lower()


class CredentialHelperError(DockyardError):
    """A `docker-credential-*` helper failed or is not installed."""


class CredentialStore:
    """Reads and writes credentials the way the docker CLI does."""

    def __init__(self, config_dir: Path | None = None) -> None:
        if config_dir is None:
            env = os.environ.get("DOCKER_CONFIG")
            config_dir = Path(env) if env else Path.home() / ".docker"
        self.config_dir = Path(config_dir)
        self.path = self.config_dir / "config.json"

    # --- the file -------------------------------------------------------------------------
    def _load(self) -> dict[str, Any]:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return {}
        if not data.strip():
            return {}
        try:
            obj = json.loads(data)
        except ValueError as e:
            raise InvalidArgument(f"{self.path}: invalid JSON: {e}") from None
        if not isinstance(obj, dict):
            raise InvalidArgument(f"{self.path}: not a JSON object")
        return obj

    def _save(self, obj: dict[str, Any]) -> None:
        self.config_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(prefix=".config.json.", dir=self.config_dir)
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w") as f:
                json.dump(obj, f, indent="\t")
                f.write("\n")
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    def _helper_for(self, obj: dict[str, Any], key: str) -> str | None:
        helpers = obj.get("credHelpers") or {}
        host = _host_of(key)
        for k, v in helpers.items():
            if server_key(k) == key or _host_of(k) == host:
                return str(v)
        store = obj.get("credsStore")
        return str(store) if store else None

    @staticmethod
    def _find_auth(auths: dict[str, Any], key: str) -> dict[str, Any] | None:
        if key in auths:
            entry = auths[key]
            return entry if isinstance(entry, dict) else None
        for k, entry in auths.items():
            if server_key(k) == key and isinstance(entry, dict):
                return entry
        return None

    # --- public API -----------------------------------------------------------------------
    def get(self, server: str) -> Credentials | None:
        """Credentials for `server` (a host, `docker.io`, or a URL), or None."""
        obj = self._load()
        key = server_key(server)
        helper = self._helper_for(obj, key)
        if helper:
            return _helper_get(helper, key)
        entry = self._find_auth(obj.get("auths") or {}, key)
        if not entry:
            return None
        return _decode_entry(entry, key)

    def store(self, server: str, creds: Credentials) -> None:
        obj = self._load()
        key = server_key(server)
        auths = obj.setdefault("auths", {})
        for k in [k for k in auths if k != key and server_key(k) == key]:
            del auths[k]
        helper = self._helper_for(obj, key)
        if helper:
            _helper_store(helper, key, creds)
            auths[key] = {}
        else:
            entry: dict[str, Any] = {}
            if creds.identity_token:
                entry["identitytoken"] = creds.identity_token
                entry["auth"] = _b64(f"{creds.username}:")
            else:
                entry["auth"] = _b64(f"{creds.username}:{creds.password}")
            auths[key] = entry
        self._save(obj)

    def erase(self, server: str) -> bool:
        """Forget `server`'s credentials; False when there were none."""
        obj = self._load()
        key = server_key(server)
        auths = obj.get("auths") or {}
        found = [k for k in auths if server_key(k) == key]
        helper = self._helper_for(obj, key)
        erased = False
        if helper:
            erased = _helper_erase(helper, key)
        for k in found:
            del auths[k]
        if found:
            self._save(obj)
        return erased or bool(found)

    def login(
        self,
        server: str,
        username: str,
        password: str,
        *,
        insecure: bool = False,
        user_agent: str = "dockyard",
    ) -> None:
        """Check the credentials against the registry's /v2/ (and its token server), then
        store them. Raises `Unauthorized` (and stores nothing) when the registry refuses."""
        from dockyard.registry.client import RegistryClient

        creds = Credentials(username, password)
        client = RegistryClient(
            _host_of(server), insecure=insecure, credentials=None, user_agent=user_agent
        )
        try:
            client.check_credentials(creds)
        finally:
            client.close()
        self.store(server, creds)

    def logout(self, server: str) -> bool:
        return self.erase(server)


def _b64(s: str) -> str:
    return base64.b64encode(s.encode()).decode()


def _decode_entry(entry: dict[str, Any], key: str) -> Credentials | None:
    token = entry.get("identitytoken") or None
    auth = entry.get("auth")
    username, password = "", ""
    if auth:
        try:
            raw = base64.b64decode(auth, validate=False).decode()
        except (ValueError, UnicodeDecodeError):
            raise InvalidArgument(f"invalid auth entry for {key} in config.json") from None
        username, sep, password = raw.partition(":")
        if not sep:
            raise InvalidArgument(f"invalid auth entry for {key}: expected user:password")
    elif entry.get("username"):
        username, password = str(entry["username"]), str(entry.get("password", ""))
    if not username and not token:
        return None
    return Credentials(username, password, str(token) if token else None)


def _run_helper(helper: str, action: str, data: str) -> subprocess.CompletedProcess[str]:
    prog = f"docker-credential-{helper}"
    try:
        return subprocess.run(
            [prog, action], input=data, capture_output=True, text=True, timeout=60, check=False
        )
    except FileNotFoundError:
        raise CredentialHelperError(
            f"credential helper {prog} not found: install it or remove it from config.json"
        ) from None


def _helper_get(helper: str, key: str) -> Credentials | None:
    p = _run_helper(helper, "get", key)
    if p.returncode != 0:
        if "credentials not found" in (p.stdout + p.stderr).lower():
            return None
        raise CredentialHelperError(
            f"docker-credential-{helper} get: {(p.stdout or p.stderr).strip()}"
        )
    try:
        obj = json.loads(p.stdout)
        user, secret = str(obj.get("Username", "")), str(obj.get("Secret", ""))
    except (ValueError, AttributeError):
        raise CredentialHelperError(f"docker-credential-{helper} get: invalid output") from None
    if user == _TOKEN_USER:
        return Credentials("", "", secret)
    return Credentials(user, secret) if user or secret else None


def _helper_store(helper: str, key: str, creds: Credentials) -> None:
    user, secret = creds.username, creds.password
    if creds.identity_token:
        user, secret = _TOKEN_USER, creds.identity_token
    payload = json.dumps({"ServerURL": key, "Username": user, "Secret": secret})
    p = _run_helper(helper, "store", payload)
    if p.returncode != 0:
        raise CredentialHelperError(
            f"docker-credential-{helper} store: {(p.stdout or p.stderr).strip()}"
        )


def _helper_erase(helper: str, key: str) -> bool:
    p = _run_helper(helper, "erase", key)
    if p.returncode != 0:
        if "credentials not found" in (p.stdout + p.stderr).lower():
            return False
        raise CredentialHelperError(
            f"docker-credential-{helper} erase: {(p.stdout or p.stderr).strip()}"
        )
    return True
