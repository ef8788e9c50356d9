"""Content-addressed blob store on fsspec (``file://``, local path, ``memory://``, ``s3://``).

Layout: ``<root>/sha256/ab/cdef…`` (2 hex chars as folder, 62 as name) and
``<root>/tmp/<uuid>`` for blobs being written, never visible as blobs. A put
streams the source once: the caller thread reads and hashes while a writer thread
writes the temporary (hashlib and file I/O release the GIL, so they overlap); only
then is it moved to its final key, so a crash never leaves a partial blob under a
digest name. Every read hashes again (invariant 4).

Small local files take a shorter road with the same guarantees (at hundreds of
versions per second, syscalls rather than hashing are the cost): one read, and
only for new content a temporary created read-only, then the same atomic move.

Durability: locally the move is ``os.replace`` (atomic): safe against *process*
crashes. ``fsync=True`` also flushes file and folder against power loss; it is off
by default because it bounds ingest by disk write speed instead of hashing speed,
and a blob torn by power loss is never served anyway: reads verify.

S3 has no rename: :mod:`charter.artifacts._s3` says how puts there still never
expose a partial object (multipart uploads completed only once every byte matched).
Garbage (stale temporaries, aborted uploads, unreferenced blobs): :mod:`._gc`.
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
import uuid
from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO, Any

from fsspec.implementations.local import LocalFileSystem

from charter.artifacts._blobio import (
    Blob,
    check,
    freshen,
    fsync_dir,
    is_s3,
    open_fs,
    storage_errors,
    validate_digest,
    verified_chunks,
    write_local,
)
from charter.artifacts._gc import GcReport, blob_listing, collect
from charter.artifacts._s3 import S3Blobs
from charter.artifacts.hashcache import Progress, copy_and_hash
from charter.domain.errors import IntegrityError, InvalidInputError, NotFoundError

__all__ = [
    "DEFAULT_PART_SIZE",
    "SMALL_FILE_BYTES",
    "ArtifactStore",
    "Blob",
    "GcReport",
    "validate_digest",
]

#: Local files up to this size are read in one call and stored without the
#: writer thread and fsspec calls (see the module docstring).
SMALL_FILE_BYTES = 1024 * 1024
#: S3 multipart part size: memory per upload is about ``(max_concurrency + 1)`` parts.
DEFAULT_PART_SIZE = 16 * 1024 * 1024


class ArtifactStore:
    """A content-addressed store of immutable blobs, chosen by URL.

    Example:
        >>> store = ArtifactStore("memory://doc-example/artifacts")
        >>> blob = store.put_bytes(b"hello")
        >>> blob.size, store.exists(blob.digest)
        (5, True)
    """

    def __init__(
        self,
        url: str,
        *,
        fsync: bool = False,
        part_size: int = DEFAULT_PART_SIZE,
        max_concurrency: int = 4,
        storage_options: Mapping[str, Any] | None = None,
    ) -> None:
        """Open the store at ``url``; folders are created on first write.

        S3 credentials, region and endpoint come from botocore's usual sources
        (``AWS_*`` variables, ``~/.aws/config``) or ``storage_options``.

        Args:
            url: an fsspec URL or a plain local path.
            fsync: flush local blobs to disk before publishing them (power-loss safety).
            part_size: S3 multipart part size in bytes (at least 5 MiB).
            max_concurrency: S3 parts uploaded at once per put.
            storage_options: extra arguments for the fsspec filesystem.

        Raises:
            InvalidInputError: if the URL is empty, its protocol unavailable or an
                S3 option out of range.
        """
        fs, root = open_fs(url, storage_options, part_size, max_concurrency)
        self.url = url
        self._fs: Any = fs
        self._root: str = root
        self._local = isinstance(fs, LocalFileSystem)
        self._fsync = fsync
        self._s3 = (
            S3Blobs(fs, self._blob_key, root, part_size, max_concurrency) if is_s3(fs) else None
        )

    def _blob_key(self, digest: str) -> str:
        # Keys are only ever built from validated digests: no traversal possible.
        hexdigest = validate_digest(digest)[len("sha256:") :]
        return f"{self._root}/sha256/{hexdigest[:2]}/{hexdigest[2:]}"

    def put_bytes(self, data: bytes) -> Blob:
        """Store a small in-memory payload and return its :class:`Blob`.

        Raises:
            StorageError: if the store cannot be written.
        """
        if self._local and len(data) <= SMALL_FILE_BYTES:
            return self._put_small(bytes(data), None)
        return self._put(io.BytesIO(data), len(data), None)

    @property
    def is_local(self) -> bool:
        """True for a store on the local filesystem (blobs are plain files)."""
        return self._local

    def put_stream(
        self,
        src: IO[bytes],
        *,
        progress: Progress | None = None,
        expected_digest: str | None = None,
    ) -> Blob:
        """Store a binary stream, read once to its end (e.g. an upload request body).

        Memory stays bounded: the stream is never held whole.

        Args:
            src: the stream.
            progress: called with byte increments.
            expected_digest: the digest the bytes must have (an upload names it).
                Checked in the store's own hashing pass, before anything is published.

        Raises:
            IntegrityError: the bytes do not hash to ``expected_digest``; nothing stored.
            StorageError: if reading ``src`` or writing the store fails (other
                exceptions from ``src`` propagate as they are); nothing is stored then.
        """
        return self._put(src, None, progress, expected_digest)

    def _put(
        self,
        src: IO[bytes],
        size: int | None,
        progress: Progress | None,
        expected: str | None = None,
    ) -> Blob:
        """Store ``src``, seekable with ``size`` bytes if the size is given."""
        if self._s3 is not None:
            with storage_errors("write blob", self.url):
                blob = Blob(*self._s3.put(src, size, progress))
            if expected is not None and blob.digest != expected:
                # Stored under the digest of its real bytes, a blob nothing names yet.
                raise _mismatch(blob.digest, expected)
            return blob
        return self._store(src, progress, expected)

    def put_file(
        self, path: Path, *, progress: Progress | None = None, known_digest: str | None = None
    ) -> Blob:
        """Store a file in one streaming pass and return its :class:`Blob`.

        Args:
            path: the file to store.
            progress: called with byte increments; a dedupe hit reports the whole size.
            known_digest: digest from the hash cache; if stored with the file's size,
                the file is not read at all.

        Raises:
            NotFoundError: if ``path`` does not exist.
            InvalidInputError: if ``path`` cannot be read or ``known_digest`` is malformed.
            StorageError: if the store cannot be written.
        """
        if known_digest is not None:
            # The size check guards cheaply against a stale cache entry; the
            # content itself is verified whenever the blob is read back.
            with suppress(NotFoundError, OSError):
                size = self.size(known_digest)
                if Path(path).stat().st_size == size:
                    if self._local:
                        freshen(self._blob_key(known_digest))
                    if progress is not None:
                        progress(size)
                    return Blob(known_digest, size)
        try:
            src = open(path, "rb", buffering=0)  # noqa: SIM115, PTH123 (unbuffered: no extra copy)
        except FileNotFoundError as exc:
            raise NotFoundError(f"file not found: {path}", path=str(path)) from exc
        except OSError as exc:
            raise InvalidInputError(f"cannot read {path}: {exc}", path=str(path)) from exc
        with src:
            info = os.fstat(src.fileno())
            regular = stat.S_ISREG(info.st_mode)
            if self._local and regular and info.st_size <= SMALL_FILE_BYTES:
                with storage_errors("read", str(path)):
                    data = src.read()
                return self._put_small(data, progress)
            return self._put(src, info.st_size if regular else None, progress)

    def _put_small(self, data: bytes, progress: Progress | None) -> Blob:
        """Store bytes in a local store: the short road of the module docstring."""
        digest, size = "sha256:" + hashlib.sha256(data).hexdigest(), len(data)
        if progress is not None:
            progress(size)
        final = self._blob_key(digest)  # str paths: this road runs per small file
        if freshen(final):
            return Blob(digest, size)  # dedupe: these bytes are stored already
        tmp = f"{self._root}/tmp/{uuid.uuid4().hex}"  # noqa: S108 (a key inside the store)
        with storage_errors("write blob", tmp):
            write_local(tmp, final, data, fsync=self._fsync)
        return Blob(digest, size)

    def _store(self, src: IO[bytes], progress: Progress | None, expected: str | None) -> Blob:
        tmp_dir = f"{self._root}/tmp"  # noqa: S108 (a key inside the store, not /tmp)
        tmp = f"{tmp_dir}/{uuid.uuid4().hex}"
        try:
            with storage_errors("write blob", tmp):
                self._fs.makedirs(tmp_dir, exist_ok=True)
                # Local: a real file ("x": never clobber) so fsync and rename apply.
                sink = Path(tmp).open("xb") if self._local else self._fs.open(tmp, "wb")  # noqa: SIM115
                with sink:
                    digest, size = copy_and_hash(src, sink, progress)
                    if self._local and self._fsync:
                        sink.flush()
                        os.fsync(sink.fileno())
            if expected is not None and digest != expected:
                raise _mismatch(digest, expected)
            with storage_errors("write blob", tmp):
                self._publish(tmp, digest)
        except BaseException:
            with suppress(OSError):
                self._fs.rm(tmp)
            raise
        return Blob(digest, size)

    def _publish(self, tmp: str, digest: str) -> None:
        final = self._blob_key(digest)
        if freshen(final) if self._local else self._fs.exists(final):
            self._fs.rm(tmp)  # dedupe: these bytes are stored already
        elif self._local:
            folder = Path(final).parent
            folder.mkdir(parents=True, exist_ok=True)
            Path(tmp).chmod(0o444)  # blobs are immutable; guard against in-place edits
            # Atomic: readers see no blob or the whole blob. A concurrent put of the
            # same content at worst replaces it with identical bytes.
            Path(tmp).replace(final)
            if self._fsync:
                fsync_dir(folder)  # make the rename itself durable
        else:
            self._fs.makedirs(self._fs._parent(final), exist_ok=True)
            self._fs.mv(tmp, final)

    def exists(self, digest: str) -> bool:
        """Tell whether a blob is stored.

        Raises:
            InvalidInputError: if the digest is malformed (as for every method).
            StorageError: if the store cannot be queried.
        """
        key = self._blob_key(digest)
        if self._s3 is not None:
            return self._s3.exists(key)
        with storage_errors("check blob", key):
            return bool(self._fs.exists(key))

    def size(self, digest: str) -> int:
        """Return the stored size of a blob in bytes.

        Raises:
            NotFoundError: if no such blob is stored.
        """
        key = self._blob_key(digest)
        with storage_errors("stat blob", key, digest=digest):
            return int(self._fs.size(key))

    def _open_blob(self, digest: str, expected_size: int | None) -> tuple[str, IO[bytes]]:
        key = self._blob_key(digest)
        with storage_errors("open blob", key, digest=digest):
            if self._s3 is not None:  # one streaming GET, its size checked before reading
                return key, self._s3.open(key, lambda n: check(digest, key, None, n, expected_size))
            if expected_size is not None:
                check(digest, key, None, int(self._fs.size(key)), expected_size)
            if self._local:
                return key, Path(key).open("rb", buffering=0)
            return key, self._fs.open(key, "rb")

    @contextmanager
    def open_verified(
        self, digest: str, *, expected_size: int | None = None
    ) -> Iterator[Iterator[bytes]]:
        """Open a blob as a context manager yielding chunks, verified as they are read.

        The digest is only known at the end: treat the bytes as untrusted until the
        iterator is exhausted without raising (:meth:`get_file` does that for you).

        Args:
            digest: ``sha256:<hex>`` of the blob.
            expected_size: if given (from a manifest), the blob must have this size.

        Raises:
            InvalidInputError: if the digest is malformed.
            NotFoundError: if no such blob is stored.
            IntegrityError: (from the iterator) if bytes or size disagree.
        """
        key, handle = self._open_blob(digest, expected_size)
        with handle:
            yield verified_chunks(handle, digest, key, expected_size)

    def get_file(
        self,
        digest: str,
        dest: Path,
        *,
        progress: Progress | None = None,
        expected_size: int | None = None,
    ) -> Blob:
        """Copy a blob to ``dest`` (parents created) and return it, verified.

        Bytes go to a temporary file next to ``dest`` that is renamed into place only
        after the digest matched: a corrupt blob never reaches ``dest``.

        Args:
            digest: ``sha256:<hex>`` of the blob.
            dest: the file to create or replace.
            progress: called with byte increments.
            expected_size: if given (from a manifest), the blob must have this size.

        Raises:
            NotFoundError: if no such blob is stored.
            IntegrityError: if the stored bytes disagree with the digest or size.
            StorageError: if reading the blob or writing ``dest`` fails.
        """
        dest = Path(dest)
        part = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:12]}.part")
        key, src = self._open_blob(digest, expected_size)
        try:
            with src, storage_errors("write file", str(dest)):
                dest.parent.mkdir(parents=True, exist_ok=True)
                with part.open("xb") as sink:
                    actual, size = copy_and_hash(src, sink, progress)
                check(digest, key, actual, size, expected_size)
                part.replace(dest)
        except BaseException:
            part.unlink(missing_ok=True)
            raise
        return Blob(digest, size)

    def verify(self, digest: str) -> bool:
        """Re-hash a stored blob: True if its bytes match the digest, else False.

        Raises:
            NotFoundError: if no such blob is stored.
        """
        try:
            with self.open_verified(digest) as chunks:
                for _ in chunks:
                    pass
        except IntegrityError:
            return False
        return True

    def delete(self, digest: str) -> bool:
        """Remove a blob (GC and draft deletion only); False if none was stored.

        Raises:
            StorageError: if the store refuses the removal.
        """
        key = self._blob_key(digest)
        if self._s3 is not None and not self._s3.exists(key):
            return False  # S3 deletes of absent keys succeed silently
        try:
            with storage_errors("delete blob", key, digest=digest):
                self._fs.rm(key)
        except NotFoundError:
            return False
        return True

    def iter_digests(self) -> Iterator[str]:
        """Yield the digest of every stored blob, sorted; temporaries never appear.

        Raises:
            StorageError: if the store cannot be listed.
        """
        for digest, _ in blob_listing(self._fs, self._root, detail=False):
            yield digest

    def clean_temporaries(self, older_than_seconds: float = 3600) -> int:
        """Remove leftovers of crashed puts (:meth:`collect_garbage` without blobs).

        Returns:
            How many temporaries (and, on S3, incomplete uploads) were removed.
        """
        report = self.collect_garbage(older_than_s=older_than_seconds)
        return report.temporaries + report.uploads

    def collect_garbage(
        self,
        *,
        older_than_s: float,
        referenced: Collection[str] | None = None,
        dry_run: bool = False,
    ) -> GcReport:
        """Remove what interrupted puts left behind and, optionally, unreferenced blobs.

        Only what is unmodified for ``older_than_s`` seconds goes (puts in progress
        are safe); what the filesystem cannot date is kept. Removed: temporaries in
        ``tmp/``; on S3, incomplete multipart uploads (dated by their latest part);
        if ``referenced`` is given, every blob not in it (on S3, only while no put
        runs: :mod:`charter.artifacts._gc` says why).

        Args:
            older_than_s: minimum age in seconds (an hour or more is sensible).
            referenced: every digest any record (manifests, model cards…) still needs;
                ``None`` leaves blobs alone, an empty set removes them all.
            dry_run: only report what would be removed.

        Returns:
            A :class:`GcReport` of what was (or would be) removed.

        Raises:
            InvalidInputError: if ``older_than_s`` is negative.
            StorageError: if the store cannot be listed or an item cannot be removed.
        """
        with storage_errors("collect garbage in", self.url):
            return collect(
                self._fs,
                self._root,
                self._s3,
                older_than_s=older_than_s,
                referenced=referenced,
                dry_run=dry_run,
            )


def _mismatch(actual: str, expected: str) -> IntegrityError:
    return IntegrityError(
        f"the bytes hash to {actual}, not to {expected}: nothing was stored under {expected}",
        digest=expected,
        actual=actual,
    )
