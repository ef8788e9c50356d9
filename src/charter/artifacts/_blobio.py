"""Low-level pieces of :mod:`charter.artifacts.store`: blobs, URLs, checks, errors, local writes."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, TypeVar

import fsspec

from charter.artifacts._s3 import MIN_PART_SIZE
from charter.artifacts.hashcache import CHUNK_SIZE
from charter.domain.errors import IntegrityError, InvalidInputError, NotFoundError, StorageError

__all__ = [
    "DIGEST_RE",
    "Blob",
    "check",
    "freshen",
    "fsync_dir",
    "is_s3",
    "open_fs",
    "storage_errors",
    "validate_digest",
    "verified_chunks",
    "write_local",
]

DIGEST_RE = re.compile(r"sha256:[0-9a-f]{64}")

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class Blob:
    """A stored blob: its ``sha256:<hex>`` digest and its size in bytes."""

    digest: str
    size: int


def validate_digest(digest: str) -> str:
    """Return ``digest`` unchanged if it is ``"sha256:"`` + 64 lowercase hex chars.

    Raises:
        InvalidInputError: if it is not a well-formed sha256 digest.
    """
    if not isinstance(digest, str) or not DIGEST_RE.fullmatch(digest):
        shown = str(digest)[:80]
        valid = "sha256:<64 lowercase hex>"
        msg = f"malformed digest {shown!r}: expected {valid}"
        raise InvalidInputError(msg, field="digest", value=shown, valid=valid)
    return digest


def open_fs(
    url: str, storage_options: Mapping[str, Any] | None, part_size: int, max_concurrency: int
) -> tuple[Any, str]:
    """Return the fsspec filesystem and root path of a store URL.

    Raises:
        InvalidInputError: if the URL is empty, its protocol unavailable or an S3
            option out of range.
    """
    options = dict(storage_options or {})
    try:
        if not url:
            raise ValueError("the URL is empty")
        if fsspec.core.split_protocol(url)[0] in ("s3", "s3a"):
            # Cached listings go stale when other processes write: always ask S3.
            options["use_listings_cache"] = False
            if part_size < MIN_PART_SIZE or max_concurrency < 1:
                raise ValueError("part_size must be >= 5 MiB and max_concurrency >= 1")
        fs, root = fsspec.core.url_to_fs(url, **options)
    except (ImportError, ValueError, TypeError) as exc:
        valid = "file:///abs/path, a local path, memory://…, s3://… (needs s3fs)"
        raise InvalidInputError(
            f"cannot open artifact store {url!r}: {exc}", field="url", valid=valid
        ) from exc
    return fs, str(root).rstrip("/")


def is_s3(fs: Any) -> bool:
    """True for s3fs filesystems."""
    protocol = fs.protocol
    return "s3" in (protocol if isinstance(protocol, tuple | list) else (protocol,))


def write_local(tmp: str, final: str, data: bytes, *, fsync: bool) -> None:
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
        _in_folder(final, lambda: os.replace(tmp, final))  # noqa: PTH105 (no Path per blob)
        if fsync:
            fsync_dir(Path(final).parent)  # make the rename itself durable
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
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


def _in_folder(path: str, action: Callable[[], _T]) -> _T:
    """Run ``action`` on ``path``, creating its folder if missing: no ``mkdir`` per call."""
    try:
        return action()
    except FileNotFoundError:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
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


def freshen(path: str | Path) -> bool:
    """Tell whether a local blob exists, bumping its mtime so GC sees it in use.

    Same cost as the ``stat`` it replaces (one syscall).
    """
    try:
        os.utime(path)
    except FileNotFoundError:
        return False
    except OSError:
        return Path(path).exists()  # not ours to touch (read-only store, other owner)
    return True
