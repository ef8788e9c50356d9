"""Hashing files: one streaming pass, and a stat cache to skip even that.

:func:`copy_and_hash` copies a stream while hashing it, overlapping reading and
hashing (caller thread) with writing (a writer thread); the artifact store uses it
for puts and verified gets.

:class:`HashCache`: like git's index and DVC's state database, the cache maps a file's
``(absolute path, inode, size, mtime_ns)`` to the sha256 digest computed the last
time it was stored. Re-registering an unchanged 1 GiB checkpoint then costs a
``stat`` and a lookup instead of a second of hashing.

Why trusting the stat key is acceptable: any ordinary write changes ``mtime_ns``
(and usually the size); a replaced file (``mv``, rsync, checkout) gets a new inode.
The remaining hole is a file rewritten with the same size within one timestamp
tick of when it was cached ("racy git"); :meth:`HashCache.record` refuses to cache
files modified within :data:`RACY_WINDOW_NS` of now, which closes it for writes
that happen after the stat. Tools that deliberately restore an old mtime on
same-size content defeat it, exactly as they defeat git and DVC. A false hit
would record the file's *previous* content (stored and verifiable), never corrupt
bytes: blobs are still verified against their digest on every read (invariant 4).

Concurrency: several processes may share the file. It runs in WAL mode (readers
never block the writer) with a busy timeout, and every write is one short
autocommit statement. ``synchronous=NORMAL`` may lose the last records on power
loss, which only costs a re-hash. A corrupted or foreign file is deleted and
recreated; any other sqlite failure degrades to a cache miss. The cache is never
fatal.
"""

from __future__ import annotations

import hashlib
import os
import queue
import re
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import IO

__all__ = [
    "CACHED_MIN_BYTES",
    "CHUNK_SIZE",
    "RACY_WINDOW_NS",
    "HashCache",
    "Progress",
    "copy_and_hash",
]

#: Bytes per read/hash/write step: per-chunk Python overhead is negligible.
CHUNK_SIZE = 4 * 1024 * 1024
# Buffers per pipelined copy: memory stays at _POOL_SIZE * CHUNK_SIZE, whatever the
# file size, and the reader may run that far ahead of the writer.
_POOL_SIZE = 6

Progress = Callable[[int], None]
"""Called with the number of bytes just processed (an increment, not a total)."""

#: Files modified less than this long ago are not cached: covers coarse kernel
#: timestamp ticks, 2-second FAT timestamps and modest clock skew on network mounts.
RACY_WINDOW_NS = 2_000_000_000
#: Smaller files are hashed rather than looked up: measured here, a lookup costs
#: about what hashing 4 KiB does and recording an entry (a commit) about 40 KiB
#: of hashing (64 KiB: 35 µs), so below this the cache costs more than it saves.
CACHED_MIN_BYTES = 64 * 1024
_SCHEMA_VERSION = 1
_BUSY_TIMEOUT_S = 5.0
# sqlite primary result codes meaning "this file is not a sound database".
_CORRUPT_CODES = {sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB}
_DIGEST_RE = re.compile(r"sha256:[0-9a-f]{64}")


class HashCache:
    """Maps ``(abspath, inode, size, mtime_ns)`` to a known ``sha256:`` digest.

    Example:
        >>> import os, tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> cache = HashCache(folder / "hashes.sqlite")
        >>> cache.lookup(folder, os.stat(folder)) is None
        True
    """

    def __init__(self, path: Path) -> None:
        """Open or create the cache file at ``path`` (parent folders are created).

        Args:
            path: the sqlite file; a corrupted one is replaced.
        """
        self.path = Path(path)
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        try:
            self._conn = self._connect()
        except sqlite3.Error as exc:
            if _is_corrupt(exc):
                self._reset()
        except OSError:
            pass  # unwritable location: run without a cache (``enabled`` is False)

    def __enter__(self) -> HashCache:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the database connection (further calls become misses / no-ops)."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    @property
    def enabled(self) -> bool:
        """False when the cache file could not be opened; it then never hits."""
        return self._conn is not None

    def lookup(self, abspath: Path, stat: os.stat_result) -> str | None:
        """Return the cached digest of ``abspath`` if its stat key is unchanged.

        Args:
            abspath: absolute path of the file.
            stat: a fresh ``os.stat`` of it.

        Returns:
            The ``sha256:<hex>`` digest, or None on a miss (or any cache failure).
        """
        row = self._run(
            "SELECT digest FROM entries WHERE path = ? AND inode = ? AND size = ? AND mtime_ns = ?",
            (str(abspath), stat.st_ino, stat.st_size, stat.st_mtime_ns),
        )
        if row is None or not isinstance(row[0], str) or not _DIGEST_RE.fullmatch(row[0]):
            return None
        return row[0]

    def record(self, abspath: Path, stat: os.stat_result, digest: str) -> None:
        """Remember that the file with this stat key hashes to ``digest``.

        ``stat`` must be taken *before* the file was read, so that a write during
        hashing makes the entry miss. Recently modified files are not recorded
        (see :data:`RACY_WINDOW_NS`). Failures are ignored.

        Args:
            abspath: absolute path of the file.
            stat: the ``os.stat`` taken before hashing.
            digest: ``sha256:<hex>`` of the bytes read.
        """
        if not _DIGEST_RE.fullmatch(digest):
            return
        if stat.st_mtime_ns > time.time_ns() - RACY_WINDOW_NS:
            return
        self._run(
            "INSERT OR REPLACE INTO entries (path, inode, size, mtime_ns, digest) "
            "VALUES (?, ?, ?, ?, ?)",
            (str(abspath), stat.st_ino, stat.st_size, stat.st_mtime_ns, digest),
        )

    # -- internals ----------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: each statement is its own short transaction.
        conn = sqlite3.connect(
            self.path, timeout=_BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
        )
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(_BUSY_TIMEOUT_S * 1000)}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version not in (0, _SCHEMA_VERSION):
                # Written by an incompatible Charter: treat as foreign and start over.
                raise sqlite3.DatabaseError("unknown hash cache schema")
            conn.execute(
                "CREATE TABLE IF NOT EXISTS entries (path TEXT PRIMARY KEY, inode INTEGER "
                "NOT NULL, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, digest TEXT "
                "NOT NULL) WITHOUT ROWID"
            )
            conn.execute(f"PRAGMA user_version = {_SCHEMA_VERSION}")
        except BaseException:
            conn.close()
            raise
        return conn

    def _reset(self) -> None:
        """Discard the cache file and start empty; disable the cache if even that fails."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        try:
            for suffix in ("", "-wal", "-shm", "-journal"):
                Path(f"{self.path}{suffix}").unlink(missing_ok=True)
            self._conn = self._connect()
        except (OSError, sqlite3.Error):
            self._conn = None

    def _run(self, sql: str, params: tuple[object, ...]) -> tuple[object, ...] | None:
        with self._lock:
            if self._conn is None:
                return None
            try:
                row: tuple[object, ...] | None = self._conn.execute(sql, params).fetchone()
                return row
            except sqlite3.DatabaseError as exc:
                if _is_corrupt(exc):
                    self._reset()
                return None  # busy, read-only, disk full…: a miss, never an error
            except sqlite3.Error:
                return None


def _is_corrupt(exc: sqlite3.Error) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if code is None:  # raised by us (unknown schema) or without a code: treat as foreign
        return isinstance(exc, sqlite3.DatabaseError) and not isinstance(
            exc, sqlite3.OperationalError
        )
    return (code & 0xFF) in _CORRUPT_CODES


def copy_and_hash(
    src: IO[bytes], sink: IO[bytes], progress: Progress | None = None
) -> tuple[str, int]:
    """Copy ``src`` to ``sink`` in one pass while hashing it with sha256.

    Small files (one chunk) are copied inline. Larger ones are pipelined: the caller
    thread reads into a small pool of reusable buffers and hashes them, a writer
    thread writes them; hashlib and file I/O release the GIL, so a copy costs about
    as much as hashing alone. Reusing buffers matters: a fresh multi-MiB ``bytes``
    per chunk costs page faults and ``munmap`` TLB shootdowns that cut throughput
    by a third. ``sink.write`` must not keep the buffer after it returns (the
    :mod:`io` contract, honoured by files, ``BytesIO`` and fsspec files).

    Args:
        src: a binary stream, read until EOF.
        sink: a binary stream receiving the same bytes.
        progress: called with byte increments as chunks are hashed.

    Returns:
        ``("sha256:<hex>", size)`` of the bytes copied.

    Raises:
        OSError: whatever reading ``src`` or writing ``sink`` raised.
    """
    hasher = hashlib.sha256()
    size = 0
    while chunk := src.read(CHUNK_SIZE):
        hasher.update(chunk)
        sink.write(chunk)
        size += len(chunk)
        if progress is not None:
            progress(len(chunk))
        if len(chunk) == CHUNK_SIZE:
            size += _pipeline(src, sink, hasher.update, progress)
            break
    return "sha256:" + hasher.hexdigest(), size


def _pipeline(
    src: IO[bytes],
    sink: IO[bytes],
    update: Callable[[memoryview], object],
    progress: Progress | None,
) -> int:
    free: queue.SimpleQueue[bytearray] = queue.SimpleQueue()
    full: queue.SimpleQueue[tuple[bytearray, int] | None] = queue.SimpleQueue()
    failures: list[BaseException] = []
    allocated = 0
    writer: threading.Thread | None = None

    def drain() -> None:
        # Always hand buffers back, even after a failure, so the reader never blocks.
        while (item := full.get()) is not None:
            buf, n = item
            if not failures:
                try:
                    sink.write(memoryview(buf)[:n])
                except BaseException as exc:
                    failures.append(exc)
            free.put(buf)

    size = 0
    try:
        while not failures:
            if allocated < _POOL_SIZE and free.empty():
                buf, allocated = bytearray(CHUNK_SIZE), allocated + 1
            else:
                buf = free.get()
            n = _fill(src, buf)
            if not n:
                break
            update(memoryview(buf)[:n])
            if writer is None:
                writer = threading.Thread(target=drain, name="charter-writer", daemon=True)
                writer.start()
            full.put((buf, n))
            size += n
            if progress is not None:
                progress(n)
    finally:
        if writer is not None:
            full.put(None)
            writer.join()
    if failures:
        raise failures[0]
    return size


def _fill(src: IO[bytes], buf: bytearray) -> int:
    readinto = getattr(src, "readinto", None)
    if readinto is not None:
        return int(readinto(buf) or 0)
    data = src.read(len(buf))
    buf[: len(data)] = data
    return len(data)
