from __future__ import annotations

import pytest

from dockyard.errors import InvalidArgument
from dockyard.image.changes import apply_changes
from dockyard.units import human_duration, human_size, parse_size, rfc3339, since


@pytest.mark.parametrize(
    ("size", "text"),
    [(0, "0B"), (999, "999B"), (1000, "1kB"), (4261550, "4.26MB"), (1_500_000_000, "1.5GB")],
)
def test_human_size(size: int, text: str) -> None:
    assert human_size(size) == text


@pytest.mark.parametrize(
    ("secs", "text"),
    [
        (0.5, "Less than a second"),
        (1, "1 second"),
        (59, "59 seconds"),
        (60, "About a minute"),
        (150, "2 minutes"),
        (3600, "About an hour"),
        (3 * 3600, "3 hours"),
        (3 * 86400, "3 days"),
        (20 * 86400, "2 weeks"),
        (90 * 86400, "3 months"),
        (800 * 86400, "2 years"),
    ],
)
def test_human_duration(secs: float, text: str) -> None:
    assert human_duration(secs) == text


def test_since_and_rfc3339() -> None:
    ts = rfc3339(1_700_000_000)
    assert ts == "2023-11-14T22:13:20.000000000Z"
    assert since(ts, now=1_700_000_000 + 120) == "2 minutes ago"
    assert since("", now=0) == "N/A"


def test_parse_size() -> None:
    assert parse_size("512m") == 512 << 20
    assert parse_size("1g") == 1 << 30
    with pytest.raises(ValueError):
        parse_size("lots")


def test_changes_exec_and_shell_forms() -> None:
    cfg = apply_changes(
        {},
        [
            'CMD ["sh", "-c", "echo hi"]',
            "ENTRYPOINT /bin/app --flag",
            "ENV A=1 B='two words'",
            "ENV C 3",
            "LABEL a=b",
            "EXPOSE 3000 53/udp",
            "WORKDIR /app",
            "WORKDIR sub",
            "USER 1000:1000",
            "VOLUME /data",
            "STOPSIGNAL SIGINT",
        ],
    )
    assert cfg["Cmd"] == ["sh", "-c", "echo hi"]
    assert cfg["Entrypoint"] == ["/bin/sh", "-c", "/bin/app --flag"]
    assert cfg["Env"] == ["A=1", "B=two words", "C=3"]
    assert cfg["Labels"] == {"a": "b"}
    assert cfg["ExposedPorts"] == {"3000/tcp": {}, "53/udp": {}}
    assert cfg["WorkingDir"] == "/app/sub"
    assert cfg["User"] == "1000:1000"
    assert cfg["Volumes"] == {"/data": {}}
    assert cfg["StopSignal"] == "SIGINT"


def test_changes_refuse_other_instructions() -> None:
    with pytest.raises(InvalidArgument, match="RUN is not a valid change command"):
        apply_changes({}, ["RUN echo"])
