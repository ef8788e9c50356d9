"""The stat cache of file digests, and the one-pass copy-and-hash pipeline."""

from __future__ import annotations

import hashlib
import io
import os
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from charter.artifacts import hashcache
from charter.artifacts.hashcache import HashCache, copy_and_hash

DIGEST = "sha256:" + "ab" * 32
OTHER = "sha256:" + "cd" * 32


@pytest.fixture
def cache(tmp_path: Path) -> Iterator[HashCache]:
    with HashCache(tmp_path / "state" / "hashes.sqlite") as opened:
        yield opened


@pytest.fixture
def weights(tmp_path: Path) -> Path:
    """A file last written an hour ago (outside the racy window)."""
    path = tmp_path / "weights.bin"
    path.write_bytes(b"w" * 1000)
    backdate(path)
    return path


def backdate(path: Path, seconds: float = 3600) -> None:
    when = time.time() - seconds
    os.utime(path, (when, when))


def test_miss_then_hit(cache: HashCache, weights: Path) -> None:
    assert cache.enabled
    assert cache.lookup(weights, weights.stat()) is None
    cache.record(weights, weights.stat(), DIGEST)
    assert cache.lookup(weights, weights.stat()) == DIGEST


def test_touch_makes_it_miss(cache: HashCache, weights: Path) -> None:
    cache.record(weights, weights.stat(), DIGEST)
    backdate(weights, 1800)  # same bytes, other mtime
    assert cache.lookup(weights, weights.stat()) is None


def test_modification_makes_it_miss(cache: HashCache, weights: Path) -> None:
    cache.record(weights, weights.stat(), DIGEST)
    weights.write_bytes(b"v" * 1000)  # same size, new content
    assert cache.lookup(weights, weights.stat()) is None


def test_replacement_with_new_inode_makes_it_miss(
    cache: HashCache, weights: Path, tmp_path: Path
) -> None:
    cache.record(weights, weights.stat(), DIGEST)
    before = weights.stat()
    twin = tmp_path / "twin"
    twin.write_bytes(weights.read_bytes())
    os.utime(twin, ns=(before.st_atime_ns, before.st_mtime_ns))  # even with the same mtime
    twin.replace(weights)
    assert weights.stat().st_ino != before.st_ino
    assert cache.lookup(weights, weights.stat()) is None


def test_other_path_misses(cache: HashCache, weights: Path, tmp_path: Path) -> None:
    cache.record(weights, weights.stat(), DIGEST)
    assert cache.lookup(tmp_path / "elsewhere.bin", weights.stat()) is None


def test_recently_modified_files_are_not_cached(cache: HashCache, tmp_path: Path) -> None:
    fresh = tmp_path / "fresh.bin"
    fresh.write_bytes(b"just written")
    cache.record(fresh, fresh.stat(), DIGEST)
    assert cache.lookup(fresh, fresh.stat()) is None


def test_record_replaces_and_ignores_malformed_digests(cache: HashCache, weights: Path) -> None:
    cache.record(weights, weights.stat(), DIGEST)
    cache.record(weights, weights.stat(), OTHER)
    cache.record(weights, weights.stat(), "not-a-digest")
    assert cache.lookup(weights, weights.stat()) == OTHER


def test_entries_persist_across_instances(tmp_path: Path, weights: Path) -> None:
    path = tmp_path / "hashes.sqlite"
    with HashCache(path) as first:
        first.record(weights, weights.stat(), DIGEST)
    with HashCache(path) as second:
        assert second.lookup(weights, weights.stat()) == DIGEST
    assert second.lookup(weights, weights.stat()) is None  # closed: a miss, not an error


@pytest.mark.parametrize(
    "garbage",
    [b"this is not a database at all" * 100, b"SQLite format 3\x00" + b"\xff" * 4000, b""],
)
def test_corrupted_cache_file_is_discarded_and_recreated(
    tmp_path: Path, weights: Path, garbage: bytes
) -> None:
    path = tmp_path / "hashes.sqlite"
    with HashCache(path) as cache:
        cache.record(weights, weights.stat(), DIGEST)
    path.write_bytes(garbage)
    with HashCache(path) as cache:
        assert cache.enabled
        assert cache.lookup(weights, weights.stat()) is None
        cache.record(weights, weights.stat(), OTHER)
        assert cache.lookup(weights, weights.stat()) == OTHER


def test_cache_from_an_unknown_schema_is_replaced(tmp_path: Path, weights: Path) -> None:
    path = tmp_path / "hashes.sqlite"
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA user_version = 99")
    with HashCache(path) as cache:
        cache.record(weights, weights.stat(), DIGEST)
        assert cache.lookup(weights, weights.stat()) == DIGEST


def test_unusable_location_disables_the_cache_without_failing(
    tmp_path: Path, weights: Path
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with HashCache(blocker / "hashes.sqlite") as cache:
        assert not cache.enabled
        cache.record(weights, weights.stat(), DIGEST)
        assert cache.lookup(weights, weights.stat()) is None


WRITER = """
import os, sys
from pathlib import Path
from charter.artifacts.hashcache import HashCache
cache_path, folder, tag = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
with HashCache(cache_path) as cache:
    for _ in range(4):  # long enough for the writers to overlap
        for path in sorted(folder.iterdir()):
            cache.record(path, path.stat(), "sha256:" + tag * 64)
"""


def test_several_processes_can_write_at_once(tmp_path: Path) -> None:
    folder = tmp_path / "files"
    folder.mkdir()
    for i in range(400):
        (folder / f"f{i}").write_text(str(i))
        backdate(folder / f"f{i}")
    path = tmp_path / "shared.sqlite"
    writers = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(folder), tag])
        for tag in "0123"
    ]
    assert [w.wait(timeout=60) for w in writers] == [0, 0, 0, 0]
    with HashCache(path) as cache:
        found = {cache.lookup(p, p.stat()) for p in folder.iterdir()}
    # Every file is cached, each with one of the writers' digests: no lost writes.
    assert None not in found
    assert found <= {"sha256:" + tag * 64 for tag in "0123"}


# -- copy_and_hash ---------------------------------------------------------------


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> int:
    """Shrink chunks so a small payload crosses many chunk boundaries."""
    monkeypatch.setattr(hashcache, "CHUNK_SIZE", 1024)
    return 1024


@pytest.mark.parametrize("size", [0, 1, 1023, 1024, 1025, 2048, 100_000])
def test_copy_and_hash_copies_and_hashes(small_chunks: int, size: int) -> None:
    data = os.urandom(size)
    sink = io.BytesIO()
    seen: list[int] = []
    digest, copied = copy_and_hash(io.BytesIO(data), sink, seen.append)
    assert digest == "sha256:" + hashlib.sha256(data).hexdigest()
    assert copied == size == sum(seen)
    assert sink.getvalue() == data
    assert max(seen, default=0) <= small_chunks


class ReadOnly:
    """A stream without ``readinto``: the pipeline must fall back to ``read``."""

    def __init__(self, data: bytes) -> None:
        self._inner = io.BytesIO(data)

    def read(self, n: int = -1) -> bytes:
        return self._inner.read(n)


def test_copy_and_hash_works_without_readinto(small_chunks: int) -> None:
    data = os.urandom(50_000)
    sink = io.BytesIO()
    digest, size = copy_and_hash(ReadOnly(data), sink)  # type: ignore[arg-type]
    assert (digest, size) == ("sha256:" + hashlib.sha256(data).hexdigest(), 50_000)
    assert sink.getvalue() == data


class FailingSink(io.BytesIO):
    def __init__(self, fail_after: int) -> None:
        super().__init__()
        self.writes = 0
        self.fail_after = fail_after

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self.writes += 1
        if self.writes > self.fail_after:
            raise OSError("disk full")
        return super().write(data)


@pytest.mark.parametrize("fail_after", [0, 1, 5])
def test_copy_and_hash_raises_sink_errors_without_hanging(
    small_chunks: int, fail_after: int
) -> None:
    threads = threading.active_count()
    with pytest.raises(OSError, match="disk full"):
        copy_and_hash(io.BytesIO(os.urandom(200_000)), FailingSink(fail_after))
    assert threading.active_count() == threads  # the writer thread has ended


def test_copy_and_hash_raises_source_errors_and_stops_the_writer(small_chunks: int) -> None:
    class BrokenSource(io.BytesIO):
        def readinto(self, buf: object) -> int:
            raise OSError("read error")

    sink = io.BytesIO()
    threads = threading.active_count()
    with pytest.raises(OSError, match="read error"):
        copy_and_hash(BrokenSource(os.urandom(5000)), sink)
    assert len(sink.getvalue()) == small_chunks  # the first chunk, read with read()
    assert threading.active_count() == threads
