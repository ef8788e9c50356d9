"""Low-level blob I/O for :mod:`charter.artifacts.store`: checks, errors, local writes."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TypeVar

from charter.artifacts.hashcache import CHUNK_SIZE
from charter.domain.errors import IntegrityError, NotFoundError, StorageError

__all__ = ["check", "fsync_dir", "storage_errors", "verified_chunks", "write_local"]

_T = TypeVar("_T")


def write_local(tmp: Path, final: Path, data: bytes, *, fsync: bool) -> None:
    """Publish ``data`` at ``final`` through the temporary ``tmp``, atomically.

    The temporary is created exclusive (never clobbers) and read-only from birth
    (blobs are immutable), then moved with ``os.replace``: readers see no blob or
    the whole blob, and a concurrent put of the same content at worst replaces it
    with identical bytes. Folders are created only when found missing, which
    saves two ``mkdir`` calls per blob. On any failure the temporary is removed.

    Raises:
        OSError: whatever the filesystem raised.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    try:
        with os.fdopen(_in_folder(tmp, lambda: os.open(tmp, flags, 0o444)), "wb") as sink:
            sink.write(data)
            if fsync:
                sink.flush()
                os.fsync(sink.fileno())
        _in_folder(final, lambda: tmp.replace(final))
        if fsync:
            fsync_dir(final.parent)  # make the rename itself durable
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def check(digest: str, key: str, actual: str | None, size: int, expected: int | None) -> None:
    """Raise :class:`IntegrityError` if the size or the recomputed digest disagree."""
    if expected is not None and size != expected:
        msg = f"blob {digest} has {size} bytes, expected {expected}"
        raise IntegrityError(msg, digest=digest, path=key, size=size, expected_size=expected)
    if actual is not None and actual != digest:
        msg = f"blob {digest} is corrupted: its bytes hash to {actual}"
        raise IntegrityError(msg, digest=digest, actual=actual, path=key)


def verified_chunks(
    handle: IO[bytes], digest: str, key: str, expected_size: int | None
) -> Iterator[bytes]:
    """Yield ``handle``'s chunks; at the end, raise :class:`IntegrityError` on a mismatch."""
    hasher = hashlib.sha256()
    size = 0
    while chunk := handle.read(CHUNK_SIZE):
        hasher.update(chunk)
        size += len(chunk)
        yield chunk
    check(digest, key, "sha256:" + hasher.hexdigest(), size, expected_size)


def _in_folder(path: Path, action: Callable[[], _T]) -> _T:
    """Run ``action`` on ``path``, creating its folder if missing: no ``mkdir`` per call."""
    try:
        return action()
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        return action()


def fsync_dir(folder: Path) -> None:
    """Flush a folder's entries (a rename in it) to disk."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def storage_errors(action: str, key: str, *, digest: str | None = None) -> Iterator[None]:
    """Turn filesystem errors into the Charter error tree."""
    try:
        yield
    except FileNotFoundError as exc:
        if digest is not None:
            raise NotFoundError(f"no blob {digest} in the store", digest=digest) from exc
        raise StorageError(f"cannot {action} {key}: {exc}", path=key) from exc
    except OSError as exc:
        raise StorageError(f"cannot {action} {key}: {exc}", path=key) from exc
