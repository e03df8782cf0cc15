"""hosts / hostname / resolv.conf rendering and in-place writes."""

from __future__ import annotations

from pathlib import Path

import pytest

from dockyard.network import dns


def test_hosts() -> None:
    text = dns.render_hosts(
        [("10.0.0.2", ["abc123", "web", "web"])],
        [("10.0.0.3", ["db", "", "database"])],
        [("gw", "10.0.0.1")],
    )
    lines = text.splitlines()
    assert lines[0] == "127.0.0.1\tlocalhost"
    assert "10.0.0.1\tgw" in lines
    assert "10.0.0.2\tabc123 web" in lines
    assert lines[-1] == "10.0.0.3\tdb database"


def test_resolv_drops_loopback() -> None:
    host = (
        "# comment\nsearch example.com\nnameserver 127.0.0.53\n"
        "nameserver 1.1.1.1\noptions ndots:2\n"
    )
    out = dns.render_resolv(host)
    assert "127.0.0.53" not in out
    assert "nameserver 1.1.1.1" in out
    assert "search example.com" in out and "options ndots:2" in out


def test_resolv_fallback_and_overrides() -> None:
    out = dns.render_resolv("nameserver 127.0.0.1\nnameserver ::1\n")
    assert out.splitlines() == ["nameserver 8.8.8.8", "nameserver 8.8.4.4"]
    out = dns.render_resolv("search a\nnameserver 9.9.9.9\n", dns=["1.0.0.1"], search=["b"])
    assert out.splitlines() == ["search b", "nameserver 1.0.0.1"]


def test_write_file_in_place(tmp_path: Path) -> None:
    p = tmp_path / "d" / "hosts"
    dns.write_file(p, "one\n")
    ino = p.stat().st_ino
    dns.write_file(p, "two\n")
    assert p.read_text() == "two\n"
    assert p.stat().st_ino == ino  # a bind mount of the file keeps seeing updates
    assert sorted(x.name for x in p.parent.iterdir()) == ["hosts"]
    assert dns.render_hostname("h") == "h\n"


def test_standalone_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("nameserver 127.0.0.53\nnameserver 10.1.2.3\n")
    monkeypatch.setattr(dns, "HOST_RESOLV", resolv)
    monkeypatch.setattr(dns, "SYSTEMD_RESOLV", tmp_path / "absent")
    assert dns.host_nameservers() == ["10.1.2.3"]
    dns.write_standalone(tmp_path / "none", "box", host_mode=False)
    assert (tmp_path / "none" / "hostname").read_text() == "box\n"
    assert "127.0.0.1\tbox" in (tmp_path / "none" / "hosts").read_text()
    assert (tmp_path / "none" / "resolv.conf").read_text() == "nameserver 10.1.2.3\n"
    dns.write_standalone(tmp_path / "host", "box", host_mode=True)
    assert (tmp_path / "host" / "resolv.conf").read_text() == resolv.read_text()
