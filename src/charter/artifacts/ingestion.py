"""Storing a source's files: streamed into the store now, or staged for later.

:func:`ingest` stores every file of a source and returns its manifest; large
files stream through the store while hashed, unchanged ones known to the hash
cache are not read at all.

:func:`stage` is the road for small sources (a few files, :data:`STAGED_MAX_BYTES`
in all): their bytes are read and hashed into memory and stored only when the
caller says so. The registry uses it to check a registration and store its
files under one writer lock, so a refused registration stores nothing without
a separate read transaction to check first (the check costs more than storing
a small source's files).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from charter.artifacts.hashcache import CACHED_MIN_BYTES, HashCache, Progress
from charter.artifacts.paths import Manifest, ManifestEntry, SourceFile, scan_source
from charter.artifacts.store import ArtifactStore
from charter.domain.canonical import sha256_hex
from charter.domain.errors import InvalidInputError, NotFoundError

__all__ = ["STAGED_MAX_BYTES", "STAGED_MAX_FILES", "StagedSource", "ingest", "stage"]

#: A source is staged when it has at most this many files and bytes: small
#: enough to hold in memory, and to store while the writer lock is held.
STAGED_MAX_FILES = 16
STAGED_MAX_BYTES = CACHED_MIN_BYTES


def ingest(
    store: ArtifactStore,
    source: Path,
    *,
    sources: Sequence[SourceFile] | None = None,
    cache: HashCache | None = None,
    progress: Progress | None = None,
) -> Manifest:
    """Scan ``source``, store every file, and return its manifest.

    Files whose (path, inode, size, mtime) the cache knows, and whose blob is
    already stored, are not read at all. Files under :data:`CACHED_MIN_BYTES`
    are simply hashed again: cheaper than asking the cache.

    Args:
        store: where the blobs go.
        source: a file or folder (see :func:`scan_source`).
        sources: the result of ``scan_source(source)`` when the caller has it
            already (the scan is then not repeated).
        cache: optional stat cache mapping unchanged files to known digests.
        progress: called with byte increments over all files.

    Returns:
        The :class:`Manifest` of the stored files.

    Raises:
        NotFoundError: if ``source`` does not exist.
        InvalidInputError: if the source is invalid, or a file changed while it
            was being read (a torn copy must not be registered).
        StorageError: if the store cannot be written.
    """
    entries = []
    for file in scan_source(source) if sources is None else sources:
        before = _stat(file)
        cached = cache if before.st_size >= CACHED_MIN_BYTES else None
        known = cached.lookup(file.abspath, before) if cached is not None else None
        blob = store.put_file(file.abspath, progress=progress, known_digest=known)
        if known != blob.digest:
            _check_unchanged(file, before, blob.size)
            if cached is not None:
                cached.record(file.abspath, before, blob.digest)
        entries.append(ManifestEntry(file.relpath, blob.digest, blob.size))
    return Manifest(tuple(entries))


@dataclass(frozen=True)
class StagedSource:
    """A small source, read and hashed but not stored yet.

    Attributes:
        manifest: what its files will be once stored.
        payloads: their bytes, one per manifest entry.
    """

    manifest: Manifest
    payloads: tuple[bytes, ...]

    def store(self, store: ArtifactStore) -> None:
        """Store the files (a blob already stored is only freshened).

        Raises:
            StorageError: if the store cannot be written.
        """
        for data in self.payloads:
            store.put_bytes(data)


def stage(
    sources: Sequence[SourceFile], *, progress: Progress | None = None
) -> StagedSource | None:
    """Read and hash a small source, or return None when it is not small.

    Args:
        sources: the result of :func:`scan_source`.
        progress: called once with the bytes read.

    Raises:
        NotFoundError: a file vanished. InvalidInputError: a file cannot be
            read, or changed while it was read.
    """
    if len(sources) > STAGED_MAX_FILES or sum(f.size for f in sources) > STAGED_MAX_BYTES:
        return None
    entries, payloads = [], []
    for file in sources:
        before = _stat(file)
        try:
            with open(file.abspath, "rb") as handle:  # noqa: PTH123 (no Path per file)
                data = handle.read(STAGED_MAX_BYTES + 1)
        except OSError as exc:
            raise InvalidInputError(
                f"cannot read {file.abspath}: {exc}", path=str(file.abspath)
            ) from None
        _check_unchanged(file, before, len(data))
        entries.append(ManifestEntry(file.relpath, "sha256:" + sha256_hex(data), len(data)))
        payloads.append(data)
    if progress is not None:
        progress(sum(len(data) for data in payloads))
    return StagedSource(Manifest(tuple(entries)), tuple(payloads))


def _stat(file: SourceFile) -> os.stat_result:
    try:
        return file.abspath.stat()
    except FileNotFoundError:
        raise NotFoundError(f"file vanished: {file.abspath}", path=str(file.abspath)) from None


def _check_unchanged(file: SourceFile, before: os.stat_result, size: int) -> None:
    """Refuse a file whose stat changed (or whose size differs) since ``before``."""
    after = _stat(file)
    if _stat_key(after) != _stat_key(before) or after.st_size != size:
        raise InvalidInputError(
            f"{file.abspath} changed while it was being stored; "
            "register it again once it is no longer being written",
            path=str(file.abspath),
        )


def _stat_key(st: os.stat_result) -> tuple[int, int, int]:
    return (st.st_ino, st.st_size, st.st_mtime_ns)
