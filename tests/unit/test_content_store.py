from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from dockyard.digest import Digest, VerifyingReader
from dockyard.errors import DigestMismatch, InvalidArgument, NotFound
from dockyard.store.content import ContentStore


@pytest.fixture
def store(tmp_path: Path) -> ContentStore:
    return ContentStore(tmp_path / "content")


def test_put_and_read(store: ContentStore) -> None:
    d = store.put_bytes(b"hello")
    assert d == Digest.of(b"hello")
    assert store.has(d) and store.size(d) == 5
    assert store.read_bytes(d) == b"hello"
    assert [x for x, _ in store.walk()] == [d]


def test_expected_digest_mismatch_leaves_nothing(store: ContentStore) -> None:
    wrong = Digest.of(b"other")
    with pytest.raises(DigestMismatch):
        store.put_bytes(b"hello", expected=wrong)
    with pytest.raises(DigestMismatch), store.writer(expected=wrong, size=5) as w:
        w.write(b"hello")
        w.commit()
    assert list(store.walk()) == []
    assert not any((store.root / "ingest").iterdir())


def test_size_mismatch_refused(store: ContentStore) -> None:
    with pytest.raises(DigestMismatch, match="expected 4"), store.writer(size=4) as w:
        w.write(b"hello")
        w.commit()


def test_read_verifies_content_on_disk(store: ContentStore) -> None:
    d = store.put_bytes(b"hello")
    p = store.path(d)
    os.chmod(p, 0o644)
    p.write_bytes(b"HELLO")
    with pytest.raises(DigestMismatch):
        store.read_bytes(d)


def test_missing_blob(store: ContentStore) -> None:
    with pytest.raises(NotFound):
        store.read_bytes(Digest.of(b"x"))
    with pytest.raises(InvalidArgument):
        store.has("sha256:short")


def test_resume_by_ref(store: ContentStore) -> None:
    data = os.urandom(3 << 20)
    d = Digest.of(data)
    w = store.writer("pull-1", expected=d, size=len(data))
    w.write(data[:1000])
    w.close()  # interrupted: keeps partial bytes
    with store.writer("pull-1", expected=d, size=len(data)) as w2:
        assert w2.offset == 1000
        w2.write(data[1000:])
        assert w2.commit() == d
    assert store.read_bytes(d) == data


def test_concurrent_writers_of_same_blob(store: ContentStore) -> None:
    data = os.urandom(1 << 20)
    errors: list[BaseException] = []

    def write() -> None:
        try:
            for _ in range(5):
                store.put_file(_Chunks(data), expected=Digest.of(data))
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=write) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert store.read_bytes(Digest.of(data)) == data


def test_clean_ingests_drops_abandoned(store: ContentStore) -> None:
    w = store.writer("abandoned")
    w.write(b"partial")
    w.close()
    store.clean_ingests()
    assert not any((store.root / "ingest").iterdir())


def test_verifying_reader_detects_tamper() -> None:
    import io

    r = VerifyingReader(io.BytesIO(b"abc"), Digest.of(b"abd"))
    with pytest.raises(DigestMismatch):
        r.read()


class _Chunks:
    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    def read(self, n: int = -1) -> bytes:
        n = len(self._data) if n < 0 else n
        b = self._data[self._pos : self._pos + n]
        self._pos += len(b)
        return b


def test_writer_waiting_on_a_committed_ingest_starts_over(store: ContentStore) -> None:
    data = b"same blob"
    first = store.writer("ref-1", expected=Digest.of(data))
    first.write(data)
    got: list[Digest] = []

    def second() -> None:
        with store.writer("ref-1", expected=Digest.of(data)) as w:
            if w.offset == 0:
                w.write(data)
            got.append(w.commit())

    t = threading.Thread(target=second)
    t.start()
    first.commit()
    t.join(10)
    assert got == [Digest.of(data)]
