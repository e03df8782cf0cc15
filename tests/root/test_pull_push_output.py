"""The pull/push output as Docker prints it: the progress printer (plain lines when not on a
terminal, lines redrawn in place with ANSI codes on one) and the daemon's error wording.
No registry and no root needed; kept next to the pull/push tests they belong to."""

from __future__ import annotations

import io
import threading

from dockyard.cli._progress import ProgressPrinter, event_text, progress_bar
from dockyard.image.distribution import docker_wording, pull_error
from dockyard.reference import parse_reference
from dockyard.registry import progress as pg
from dockyard.registry.errors import RegistryNotFound, Unauthorized, error_from_response

ID = "0123456789ab"


def _ev(status: str, cur: int = 0, total: int = 0, detail: str = "") -> pg.ProgressEvent:
    return pg.ProgressEvent(ID, status, cur, total, detail)


def test_progress_bar_is_dockers() -> None:
    assert progress_bar(0, 100) == "[>" + " " * 50 + "]       0B/100B"
    half = progress_bar(1_150_000, 2_300_000)
    assert half == "[" + "=" * 25 + ">" + " " * 25 + "]   1.15MB/2.3MB"
    assert progress_bar(5, 5).startswith("[" + "=" * 50 + ">]")
    assert event_text(_ev(pg.DOWNLOADING, 1, 2)).startswith(f"{ID}: Downloading [")
    assert event_text(_ev(pg.MOUNTED_FROM, detail="lib/x")) == f"{ID}: Mounted from lib/x"


def test_plain_output_prints_status_changes_only() -> None:
    out = io.StringIO()
    p = ProgressPrinter(out, tty=False)
    p.line("latest: Pulling from library/busybox")
    for ev in (
        _ev(pg.PULLING_FS_LAYER),
        _ev(pg.DOWNLOADING, 10, 100),
        _ev(pg.DOWNLOADING, 50, 100),
        _ev(pg.DOWNLOAD_COMPLETE),
        _ev(pg.DOWNLOAD_COMPLETE),
        _ev(pg.PULL_COMPLETE),
    ):
        p(ev)
    assert out.getvalue() == (
        "latest: Pulling from library/busybox\n"
        f"{ID}: Pulling fs layer\n{ID}: Download complete\n{ID}: Pull complete\n"
    )


def test_terminal_output_redraws_each_layer_in_place() -> None:
    out = io.StringIO()
    p = ProgressPrinter(out, tty=True)
    other = "ba9876543210"
    p(_ev(pg.PULLING_FS_LAYER))
    p(pg.ProgressEvent(other, pg.PULLING_FS_LAYER))
    p(_ev(pg.PULL_COMPLETE))
    text = out.getvalue()
    assert text.startswith(f"\x1b[2K{ID}: Pulling fs layer\n\x1b[2K{other}: Pulling fs layer\n")
    # the first layer's line is two rows up: cursor up 2, clear, write, back down 2
    assert text.endswith(f"\x1b[2A\r\x1b[2K{ID}: Pull complete\r\x1b[2B")


def test_printer_is_thread_safe() -> None:
    out = io.StringIO()
    p = ProgressPrinter(out, tty=False)

    def work(n: int) -> None:
        for s in (pg.PULLING_FS_LAYER, pg.DOWNLOAD_COMPLETE, pg.PULL_COMPLETE):
            p(pg.ProgressEvent(f"{n:012d}", s))

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lines = out.getvalue().splitlines()
    assert len(lines) == 24 and all(len(x.split(": ")[0]) == 12 for x in lines)


def test_daemon_wording_of_pull_errors() -> None:
    ref = parse_reference("localhost:5000/x:nope")
    body = b'{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}'
    err = error_from_response(404, body)
    assert isinstance(err, RegistryNotFound)
    assert docker_wording(err) == "manifest unknown: manifest unknown"
    assert str(pull_error(ref, err)) == (
        "manifest for localhost:5000/x:nope not found: manifest unknown: manifest unknown"
    )
    body = b'{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}'
    err = error_from_response(401, body)
    mapped = pull_error(parse_reference("nosuch"), err)
    assert isinstance(mapped, Unauthorized)
    assert str(mapped) == (
        "pull access denied for nosuch, repository does not exist or may require "
        "'docker login': unauthorized: authentication required"
    )
