"""CredentialStore: config.json round trips, Hub key normalisation, credential helpers."""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path

import pytest

from dockyard.registry.credentials import (
    DOCKER_HUB_KEY,
    CredentialHelperError,
    Credentials,
    CredentialStore,
    server_key,
)


@pytest.fixture
def docker_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "docker"
    monkeypatch.setenv("DOCKER_CONFIG", str(d))
    return d


def test_server_key() -> None:
    for s in (
        "docker.io",
        "index.docker.io",
        "https://index.docker.io/v1/",
        "registry-1.docker.io",
    ):
        assert server_key(s) == DOCKER_HUB_KEY
    assert server_key("https://Reg.example:5000/v2/") == "reg.example:5000"


def test_round_trip(docker_config: Path) -> None:
    cs = CredentialStore()
    assert cs.path == docker_config / "config.json"
    assert cs.get("reg.example") is None
    cs.store("reg.example", Credentials("alice", "s3:cret"))
    cs.store("docker.io", Credentials("bob", "pw"))
    assert stat.S_IMODE(os.stat(cs.path).st_mode) == 0o600
    obj = json.loads(cs.path.read_text())
    assert base64.b64decode(obj["auths"]["reg.example"]["auth"]) == b"alice:s3:cret"
    assert DOCKER_HUB_KEY in obj["auths"]
    again = CredentialStore()
    assert again.get("https://reg.example") == Credentials("alice", "s3:cret")
    assert again.get("index.docker.io") == Credentials("bob", "pw")
    assert "s3:cret" not in repr(again.get("reg.example"))
    assert again.logout("reg.example") is True
    assert again.get("reg.example") is None
    assert again.logout("reg.example") is False
    assert list(docker_config.iterdir()) == [cs.path]  # no temp files left


def test_keeps_unknown_keys_and_reads_url_keys(docker_config: Path) -> None:
    docker_config.mkdir()
    auth = base64.b64encode(b"u:p").decode()
    (docker_config / "config.json").write_text(
        json.dumps({"auths": {"https://reg.example:5000": {"auth": auth}}, "psFormat": "x"})
    )
    cs = CredentialStore()
    assert cs.get("reg.example:5000") == Credentials("u", "p")
    cs.store("other.example", Credentials("v", "q"))
    obj = json.loads(cs.path.read_text())
    assert obj["psFormat"] == "x"
    assert set(obj["auths"]) == {"https://reg.example:5000", "other.example"}


def test_identity_token(docker_config: Path) -> None:
    docker_config.mkdir()
    (docker_config / "config.json").write_text(
        json.dumps(
            {
                "auths": {
                    "r.example": {"auth": base64.b64encode(b"u:").decode(), "identitytoken": "tok"}
                }
            }
        )
    )
    assert CredentialStore().get("r.example") == Credentials("u", "", "tok")


def _helper(bin_dir: Path, store_file: Path) -> None:
    """A docker-credential-test helper keeping credentials in a JSON file."""
    script = bin_dir / "docker-credential-test"
    script.write_text(
        f"""#!/usr/bin/env python3
import json, sys
path = {str(store_file)!r}
try:
    db = json.load(open(path))
except FileNotFoundError:
    db = {{}}
action, data = sys.argv[1], sys.stdin.read()
if action == "get":
    if data.strip() not in db:
        print("credentials not found in native keychain"); sys.exit(1)
    u, s = db[data.strip()]
    print(json.dumps({{"ServerURL": data.strip(), "Username": u, "Secret": s}}))
elif action == "store":
    o = json.loads(data); db[o["ServerURL"]] = [o["Username"], o["Secret"]]
    json.dump(db, open(path, "w"))
elif action == "erase":
    if data.strip() not in db:
        print("credentials not found in native keychain"); sys.exit(1)
    del db[data.strip()]; json.dump(db, open(path, "w"))
"""
    )
    script.chmod(0o755)


def test_creds_store_helper(
    docker_config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    db = tmp_path / "db.json"
    _helper(bin_dir, db)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    docker_config.mkdir()
    (docker_config / "config.json").write_text(json.dumps({"credsStore": "test"}))
    cs = CredentialStore()
    assert cs.get("reg.example") is None
    cs.store("docker.io", Credentials("bob", "pw"))
    assert json.loads(db.read_text()) == {DOCKER_HUB_KEY: ["bob", "pw"]}
    obj = json.loads(cs.path.read_text())
    assert obj["auths"] == {DOCKER_HUB_KEY: {}}  # docker keeps an empty entry
    assert cs.get("docker.io") == Credentials("bob", "pw")
    assert cs.erase("docker.io") is True
    assert json.loads(db.read_text()) == {}
    assert json.loads(cs.path.read_text())["auths"] == {}


def test_cred_helpers_per_registry(
    docker_config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    db = tmp_path / "db.json"
    _helper(bin_dir, db)
    db.write_text(json.dumps({"reg.example": ["<token>", "idtok"]}))
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    docker_config.mkdir()
    auth = base64.b64encode(b"plain:pw").decode()
    (docker_config / "config.json").write_text(
        json.dumps(
            {
                "credHelpers": {"reg.example": "test", "gone.example": "missing"},
                "auths": {"other.example": {"auth": auth}},
            }
        )
    )
    cs = CredentialStore()
    assert cs.get("reg.example") == Credentials("", "", "idtok")
    assert cs.get("other.example") == Credentials("plain", "pw")
    with pytest.raises(CredentialHelperError, match="docker-credential-missing not found"):
        cs.get("gone.example")
