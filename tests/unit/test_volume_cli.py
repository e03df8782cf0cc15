"""The volume commands as a user types them, against a temporary state root."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests.cli import dy


def test_create_ls_inspect_rm(tmp_path: Path) -> None:
    root = tmp_path / "root"
    assert dy(root, "volume", "create", "web-data").out == "web-data\n"
    assert dy(root, "volume", "create", "--name", "db", "--label", "tier=db", "--label", "x").out
    anon = dy(root, "volume", "create").out.strip()
    assert re.fullmatch(r"[0-9a-f]{64}", anon)
    out = dy(root, "volume", "ls").out.splitlines()
    assert out[0].split() == ["DRIVER", "VOLUME", "NAME"]
    from dockyard.volume.model import natural_key

    names = sorted([anon, "db", "web-data"], key=natural_key)  # the anonymous name is random
    assert [line.split() for line in out[1:]] == [["local", n] for n in names]
    assert dy(root, "volume", "ls", "-q").out == "".join(f"{n}\n" for n in names)

    info = json.loads(dy(root, "volume", "inspect", "db").out)
    assert info == [
        {
            "CreatedAt": info[0]["CreatedAt"],
            "Driver": "local",
            "Labels": {"tier": "db", "x": ""},
            "Mountpoint": str(root.absolute() / "volumes" / "db" / "_data"),
            "Name": "db",
            "Options": {},
            "Scope": "local",
        }
    ]
    assert Path(info[0]["Mountpoint"]).is_dir()
    assert dy(root, "volume", "inspect", "-f", "{{.Name}} {{.Labels.tier}}", "db").out == (
        "db db\n"
    )
    r = dy(root, "volume", "inspect", "db", "nope", check=False)
    assert r.rc == 1 and len(json.loads(r.out)) == 1
    assert r.err == "Error response from daemon: get nope: no such volume\n"

    r = dy(root, "volume", "rm", "web-data", "nope", check=False)
    assert r.rc == 1 and r.out == "web-data\n"
    assert "get nope: no such volume" in r.err
    assert dy(root, "volume", "rm", "-f", "nope").out == "nope\n"
    assert "web-data" not in dy(root, "volume", "ls", "-q").out


def test_ls_filters_and_formats(tmp_path: Path) -> None:
    root = tmp_path / "root"
    dy(root, "volume", "create", "--label", "env=prod", "app1")
    dy(root, "volume", "create", "--label", "env=dev", "app2")
    dy(root, "volume", "create", "other")

    def q(*args: str) -> list[str]:
        return dy(root, "volume", "ls", "-q", *args).out.split()

    assert q("--filter", "label=env") == ["app1", "app2"]
    assert q("--filter", "label=env=prod") == ["app1"]
    assert q("--filter", "name=app") == ["app1", "app2"]
    assert q("--filter", "name=app", "--filter", "name=oth") == ["app1", "app2", "other"]
    assert q("--filter", "dangling=true") == ["app1", "app2", "other"]
    assert q("-f", "dangling=false") == []
    assert q("-f", "driver=local", "-f", "label=env=dev") == ["app2"]
    r = dy(root, "volume", "ls", "-f", "colour=red", check=False)
    assert r.rc == 1 and "invalid filter 'colour'" in r.err
    r = dy(root, "volume", "ls", "-f", "dangling=maybe", check=False)
    assert r.rc == 1 and "invalid filter 'dangling=maybe'" in r.err

    out = dy(root, "volume", "ls", "--format", '{{.Name}}:{{.Label "env"}}:{{.Labels}}').out
    assert out == "app1:prod:env=prod\napp2:dev:env=dev\nother::\n"
    table = dy(root, "volume", "ls", "--format", "table {{.Name}}\t{{.Scope}}\t{{.Mountpoint}}")
    lines = table.out.splitlines()
    assert lines[0].split() == ["VOLUME", "NAME", "SCOPE", "MOUNTPOINT"]
    assert lines[1].split()[:2] == ["app1", "local"]
    rows = [json.loads(x) for x in dy(root, "volume", "ls", "--format", "json").out.splitlines()]
    assert rows[0]["Name"] == "app1" and rows[0]["Labels"] == "env=prod"
    assert rows[0]["Driver"] == "local" and rows[0]["Links"] == "N/A"


def test_create_errors_and_options(tmp_path: Path) -> None:
    root = tmp_path / "root"
    r = dy(root, "volume", "create", "bad name", check=False)
    assert r.rc == 1 and "includes invalid characters for a local volume name" in r.err
    r = dy(root, "volume", "create", "-o", "type=tmpfs", "v1", check=False)
    assert r.rc == 1 and 'missing required option: "device"' in r.err
    r = dy(root, "volume", "create", "-o", "colour=red", "v1", check=False)
    assert r.rc == 1 and 'invalid option: "colour"' in r.err
    r = dy(root, "volume", "create", "-d", "nfs", "v1", check=False)
    assert r.rc == 1 and 'plugin "nfs" not found' in r.err
    r = dy(root, "volume", "create", "--name", "a1", "b1", check=False)
    assert r.rc == 1 and "conflicting options" in r.err
    dy(root, "volume", "create", "-o", "type=tmpfs", "-o", "device=tmpfs", "-o", "o=size=1m", "t1")
    info = json.loads(dy(root, "volume", "inspect", "t1").out)[0]
    assert info["Options"] == {"device": "tmpfs", "o": "size=1m", "type": "tmpfs"}
    assert dy(root, "volume", "ls", "-q").out == "t1\n"  # failed creates left nothing


def test_prune(tmp_path: Path) -> None:
    root = tmp_path / "root"
    anon = dy(root, "volume", "create").out.strip()
    dy(root, "volume", "create", "named")
    data = Path(json.loads(dy(root, "volume", "inspect", anon).out)[0]["Mountpoint"])
    (data / "blob").write_bytes(b"z" * 2000)

    r = dy(root, "volume", "prune", input=b"n\n")
    assert "anonymous local volumes not used by at least one container" in r.out
    assert dy(root, "volume", "ls", "-q").out.split() == [anon, "named"]

    r = dy(root, "volume", "prune", "-f")
    assert r.out == f"Deleted Volumes:\n{anon}\n\nTotal reclaimed space: 2kB\n"
    assert dy(root, "volume", "prune", "-f").out == "Total reclaimed space: 0B\n"
    r = dy(root, "volume", "prune", "-a", input=b"y\n")
    assert "WARNING! This will remove all local volumes" in r.out
    assert r.out.endswith("Deleted Volumes:\nnamed\n\nTotal reclaimed space: 0B\n")
    assert dy(root, "volume", "ls", "-q").out == ""
