"""Garbage collection of an artifact store: leftovers of interrupted puts, orphan blobs.

:meth:`charter.artifacts.ArtifactStore.collect_garbage` is the entry point. Everything
is judged by age (``older_than_s``), so a put in progress keeps its temporary: a
local temporary is written continuously, and an S3 multipart upload counts as
active as long as parts arrive (its age is that of its latest part, not its start).

Unreferenced blobs race with registrations: a put whose content is already stored
(dedupe) writes nothing, and its manifest commits later; if GC removes that old,
unreferenced blob in between, the manifest names a missing blob. Locally a dedupe
hit bumps the blob's mtime (``os.utime``, the same single syscall as the ``stat``
it replaces), so the blob is young again and GC keeps it, as git freshens objects.
S3 cannot touch an object without copying it, so on S3 the caller must collect
unreferenced blobs only while no registration runs (maintenance window).
"""

from __future__ import annotations

import time
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from charter.artifacts._blobio import DIGEST_RE
from charter.artifacts._s3 import S3Blobs
from charter.domain.errors import InvalidInputError, StorageError

__all__ = ["Entry", "GcReport", "blob_listing", "collect"]


def _now() -> float:
    return time.time()  # a function, so tests can move the clock


@dataclass(frozen=True, slots=True)
class GcReport:
    """What :meth:`ArtifactStore.collect_garbage` removed (or would remove, on a dry run).

    Attributes:
        temporaries: temporary files or keys of interrupted puts removed.
        uploads: incomplete S3 multipart uploads aborted.
        blobs: digests of unreferenced blobs deleted, sorted.
        freed_bytes: bytes of all of the above (upload parts included).
        dry_run: True if nothing was actually removed.
    """

    temporaries: int = 0
    uploads: int = 0
    blobs: tuple[str, ...] = ()
    freed_bytes: int = 0
    dry_run: bool = False


@dataclass(frozen=True, slots=True)
class Entry:
    """A listed file: its path, size and modification time (epoch s, if known)."""

    key: str
    size: int
    modified: float | None


def collect(
    fs: Any,
    root: str,
    s3: S3Blobs | None,
    *,
    older_than_s: float,
    referenced: Collection[str] | None,
    dry_run: bool,
) -> GcReport:
    """See :meth:`charter.artifacts.ArtifactStore.collect_garbage`."""
    if not older_than_s >= 0:  # also refuses NaN
        raise InvalidInputError("older_than_s must be >= 0", field="older_than_s")
    cutoff = _now() - older_than_s
    temporaries, freed = 0, 0
    for entry in _listing(fs, f"{root}/tmp"):  # noqa: S108 (a key inside the store)
        if entry.modified is None or entry.modified > cutoff:
            continue  # a put may still be writing it, or its age is unknown: keep
        if _remove(fs, entry.key, dry_run):
            temporaries, freed = temporaries + 1, freed + entry.size
    uploads = 0
    if s3 is not None:
        prefixes = (f"{root}/tmp", f"{root}/sha256")  # noqa: S108
        for upload in list(s3.incomplete_uploads(prefixes, cutoff)):
            if not dry_run:
                s3.abort(upload)
            uploads, freed = uploads + 1, freed + upload.size
    blobs: list[str] = []
    if referenced is not None:
        keep = set(referenced)
        for digest, entry in blob_listing(fs, root, detail=True):
            if digest in keep or entry.modified is None or entry.modified > cutoff:
                continue
            if _remove(fs, entry.key, dry_run):
                blobs.append(digest)
                freed += entry.size
    return GcReport(temporaries, uploads, tuple(blobs), freed, dry_run)


def blob_listing(fs: Any, root: str, *, detail: bool) -> Iterator[tuple[str, Entry]]:
    """Yield ``(digest, entry)`` of every blob, sorted; ages only with ``detail``.

    Raises:
        StorageError: if the store cannot be listed.
    """
    # One listing per prefix folder keeps memory flat on huge stores.
    for folder in _listing(fs, f"{root}/sha256", detail=False):
        prefix = folder.key.rsplit("/", 1)[-1]
        if len(prefix) != 2:
            continue
        for entry in _listing(fs, folder.key, detail=detail):
            candidate = "sha256:" + prefix + entry.key.rsplit("/", 1)[-1]
            if DIGEST_RE.fullmatch(candidate):
                yield candidate, entry  # stray files are never touched


def _listing(fs: Any, key: str, *, detail: bool = True) -> list[Entry]:
    try:
        infos = fs.ls(key, detail=detail)
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise StorageError(f"cannot list {key}: {exc}", path=key) from exc
    if not detail:
        return sorted((Entry(str(name).rstrip("/"), 0, None) for name in infos), key=_by_key)
    entries = [
        Entry(str(info["name"]).rstrip("/"), int(info.get("size") or 0), _modified(info))
        for info in infos
    ]
    return sorted(entries, key=_by_key)


def _by_key(entry: Entry) -> str:
    return entry.key


def _modified(info: dict[str, Any]) -> float | None:
    """Last modification time of a listing entry, in epoch seconds, if the fs tells it."""
    if info.get("type") == "directory":
        return None  # folders (and S3 prefixes) are never removed here
    for field in ("mtime", "LastModified", "created"):  # local, S3, memory
        value = info.get(field)
        if isinstance(value, datetime):
            return value.timestamp()
        if isinstance(value, int | float):
            return float(value)
    return None


def _remove(fs: Any, key: str, dry_run: bool) -> bool:
    if dry_run:
        return True
    try:
        fs.rm_file(key)
    except FileNotFoundError:
        return False  # removed meanwhile by someone else
    except OSError as exc:
        raise StorageError(f"cannot remove {key}: {exc}", path=key) from exc
    return True
