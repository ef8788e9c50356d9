"""Artifact sources: scanning and validating files, and manifests.

A version's files are described by a :class:`Manifest` of ``(path, digest, size)``
entries. Its digest is the canonical-JSON (RFC 8785) digest of exactly::

    {"files": [{"path": "<relpath>", "digest": "sha256:<hex>", "size": <int>}, ...]}

with the entries sorted ascending by ``path`` (Unicode code points, which is the
same order as comparing the UTF-8 bytes). The ledger records that digest, and
auditors recompute it from the manifest alone.

Symlinks: a symlink inside a registered folder whose target is a regular file
inside that folder is followed and stored as a regular file under the link's
path. Links to anything outside the folder, links to folders (cycles, duplicate
trees) and broken links are rejected: a registered folder is self-contained.
"""

from __future__ import annotations

import itertools
import os
import stat as stat_mod
import unicodedata
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import cached_property, lru_cache
from json.encoder import encode_basestring as _json_string
from pathlib import Path
from typing import Any

from charter.artifacts.store import validate_digest
from charter.domain.canonical import canonical_digest, sha256_hex
from charter.domain.errors import InvalidInputError, NotFoundError

__all__ = [
    "MAX_RELPATH_CHARS",
    "MAX_SEGMENT_BYTES",
    "Manifest",
    "ManifestDiff",
    "ManifestEntry",
    "SourceFile",
    "manifest_digest",
    "scan_source",
    "validate_relpath",
]

MAX_RELPATH_CHARS = 1024
MAX_SEGMENT_BYTES = 255  # the common NAME_MAX of Linux, macOS and Windows filesystems
_JSON_INT_MAX = 2**53 - 1  # RFC 8785 (I-JSON) integers
_VALID = (
    "a relative POSIX path: '/'-separated names, no leading '/', no '.' or '..' or "
    f"empty names, no backslashes or control characters, at most {MAX_RELPATH_CHARS} "
    f"characters, each name at most {MAX_SEGMENT_BYTES} UTF-8 bytes"
)


def _bad_path(relpath: object, why: str) -> InvalidInputError:
    shown = str(relpath)[:200]
    message = f"invalid artifact path {shown!r}: {why}; expected {_VALID}"
    return InvalidInputError(message, field="path", path=shown, valid=_VALID)


def validate_relpath(relpath: str) -> str:
    """Check that ``relpath`` is a safe relative artifact path (traversal protection).

    Args:
        relpath: a file name as it will appear in a manifest (e.g. ``weights/model.bin``).

    Returns:
        The path, unchanged.

    Raises:
        InvalidInputError: naming the rule it breaks and what is valid.
    """
    if not isinstance(relpath, str) or not relpath:
        raise _bad_path(relpath, "it is empty or not a string")
    _check_relpath(relpath)
    return relpath


# Memoised: manifests repeat the same paths version after version, and ``audit
# verify`` checks every row. A rejected path raises, which lru_cache never stores.
@lru_cache(maxsize=4096)
def _check_relpath(relpath: str) -> None:
    if len(relpath) > MAX_RELPATH_CHARS:
        raise _bad_path(relpath, f"it is longer than {MAX_RELPATH_CHARS} characters")
    if relpath.startswith("/"):
        raise _bad_path(relpath, "it is absolute")
    if "\\" in relpath:
        raise _bad_path(relpath, "it contains a backslash")
    if any(unicodedata.category(ch) == "Cc" for ch in relpath):
        raise _bad_path(relpath, "it contains a NUL or control character")
    if len(relpath) >= 2 and relpath[1] == ":" and relpath[0].isascii() and relpath[0].isalpha():
        raise _bad_path(relpath, "it starts with a drive letter")
    for segment in relpath.split("/"):
        if segment in ("", ".", ".."):
            raise _bad_path(relpath, f"it has an empty, '.' or '..' name ({segment!r})")
        try:
            encoded = segment.encode("utf-8")
        except UnicodeEncodeError:  # undecodable file-name bytes surface as surrogates
            raise _bad_path(relpath, "it is not valid UTF-8") from None
        if len(encoded) > MAX_SEGMENT_BYTES:
            raise _bad_path(relpath, f"a name is longer than {MAX_SEGMENT_BYTES} bytes")


@dataclass(frozen=True, slots=True)
class SourceFile:
    """A regular file found by :func:`scan_source`.

    Attributes:
        relpath: validated POSIX path relative to the registered folder.
        abspath: absolute path to read (the resolved target for followed symlinks).
        size: size in bytes at scan time.
    """

    relpath: str
    abspath: Path
    size: int


def scan_source(path: Path) -> list[SourceFile]:
    """List the files of an artifact source, validated.

    Args:
        path: a regular file (one entry, named by its basename) or a folder (every
            regular file under it, sorted by relpath). See the module docstring for
            how symlinks are treated.

    Returns:
        The files, sorted by ``relpath``.

    Raises:
        NotFoundError: if ``path`` does not exist.
        InvalidInputError: on special files, escaping or broken symlinks, links to
            folders, an empty folder, or names that :func:`validate_relpath` rejects.
    """
    path = Path(path)
    try:
        root = path.resolve(strict=True)  # naming a link is fine: its target is the source
        info = root.stat()
    except PermissionError as exc:
        raise _bad_source(path, f"it cannot be read ({exc})") from None
    except (OSError, RuntimeError):  # missing, or a dangling or looping link (3.11: RuntimeError)
        raise NotFoundError(f"artifact source not found: {path}", path=str(path)) from None
    mode = info.st_mode
    if stat_mod.S_ISREG(mode):
        # Named as the user named it (a link keeps its own name, not its target's).
        name = path.name or root.name
        return [SourceFile(validate_relpath(name), root, info.st_size)]
    if not stat_mod.S_ISDIR(mode):
        raise _bad_source(path, "it is a special file (fifo, socket or device)")
    files: list[SourceFile] = []
    try:
        _scan_dir(root, root, "", files)
    except OSError as exc:
        raise _bad_source(path, f"it cannot be read ({exc})") from exc
    if not files:
        raise _bad_source(path, "the folder contains no files")
    files.sort(key=lambda f: f.relpath)
    return files


def _bad_source(path: Path, why: str) -> InvalidInputError:
    return InvalidInputError(
        f"cannot register {path}: {why}; a source is a regular file or a folder of "
        "regular files (symlinks only to files inside that folder)",
        path=str(path),
    )


def _scan_dir(root: Path, folder: Path, prefix: str, out: list[SourceFile]) -> None:
    with os.scandir(folder) as entries:
        for entry in entries:
            relpath = validate_relpath(prefix + entry.name)
            where = folder / entry.name
            if entry.is_symlink():
                out.append(_follow_link(root, where, relpath))
            elif entry.is_dir(follow_symlinks=False):
                _scan_dir(root, where, relpath + "/", out)
            elif entry.is_file(follow_symlinks=False):
                out.append(SourceFile(relpath, where, entry.stat(follow_symlinks=False).st_size))
            else:
                raise _bad_source(where, "it is a special file (fifo, socket or device)")


def _follow_link(root: Path, link: Path, relpath: str) -> SourceFile:
    target = Path(os.path.realpath(link))
    if not target.is_relative_to(root):
        raise _bad_source(link, f"the symlink points outside {root} (to {target})")
    try:
        mode = target.stat().st_mode
    except OSError:
        raise _bad_source(link, "the symlink is broken") from None
    if not stat_mod.S_ISREG(mode):
        raise _bad_source(link, "the symlink points to a folder or special file")
    return SourceFile(relpath, target, target.stat().st_size)


@dataclass(frozen=True, slots=True)
class ManifestEntry:
    """One file of a version: its relative path, content digest and size."""

    path: str
    digest: str
    size: int

    def __post_init__(self) -> None:
        validate_relpath(self.path)
        validate_digest(self.digest)
        if isinstance(self.size, bool) or not isinstance(self.size, int) or self.size < 0:
            raise InvalidInputError(
                f"invalid size {self.size!r} for {self.path!r}: expected an integer >= 0",
                field="size",
                path=self.path,
            )

    def to_dict(self) -> dict[str, Any]:
        """Return ``{"path", "digest", "size"}`` (the shape hashed into the manifest)."""
        return {"path": self.path, "digest": self.digest, "size": self.size}


@dataclass(frozen=True, slots=True)
class ManifestDiff:
    """Paths that differ between two manifests (each tuple sorted)."""

    added: tuple[str, ...]
    removed: tuple[str, ...]
    changed: tuple[str, ...]

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.changed)


@dataclass(frozen=True)
class Manifest:
    """The files of a version, sorted by path; paths are unique and validated.

    Example:
        >>> m = Manifest((ManifestEntry("a.txt", "sha256:" + "0" * 64, 3),))
        >>> m.total_size
        3
    """

    entries: tuple[ManifestEntry, ...]

    def __post_init__(self) -> None:
        entries = tuple(sorted(self.entries, key=lambda e: e.path))
        for before, after in itertools.pairwise(entries):
            if before.path == after.path:
                raise InvalidInputError(
                    f"duplicate path {after.path!r} in manifest: each path appears once",
                    field="path",
                    path=after.path,
                )
        object.__setattr__(self, "entries", entries)

    def __iter__(self) -> Iterator[ManifestEntry]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    @cached_property
    def digest(self) -> str:
        """``sha256:<hex>`` of the canonical JSON ``{"files": [entry, ...]}``."""
        return canonical_digest({"files": self.to_list()})

    @property
    def total_size(self) -> int:
        """Sum of the sizes of all files, in bytes."""
        return sum(e.size for e in self.entries)

    def to_list(self) -> list[dict[str, Any]]:
        """Return the entries as JSON-ready dicts, sorted by path."""
        return [e.to_dict() for e in self.entries]

    @classmethod
    def from_list(cls, items: Iterable[Mapping[str, Any]]) -> Manifest:
        """Build a manifest from :meth:`to_list` output (e.g. JSON from a client).

        Raises:
            InvalidInputError: on a missing/extra key, a bad value or a duplicate path.
        """
        entries = []
        for item in items:
            if not isinstance(item, Mapping) or set(item) != {"path", "digest", "size"}:
                raise InvalidInputError(
                    "each manifest entry must be an object with exactly "
                    "'path', 'digest' and 'size'",
                    field="files",
                )
            entries.append(ManifestEntry(item["path"], item["digest"], item["size"]))
        return cls(tuple(entries))

    def diff(self, other: Manifest) -> ManifestDiff:
        """Compare this (older) manifest with ``other`` (newer).

        Returns:
            Paths only in ``other`` (added), only in ``self`` (removed), and in both
            with a different digest (changed).
        """
        old = {e.path: e.digest for e in self.entries}
        new = {e.path: e.digest for e in other.entries}
        return ManifestDiff(
            added=tuple(sorted(new.keys() - old.keys())),
            removed=tuple(sorted(old.keys() - new.keys())),
            changed=tuple(sorted(p for p in old.keys() & new.keys() if old[p] != new[p])),
        )


def manifest_digest(rows: Iterable[tuple[str, str, int]]) -> str:
    """``Manifest(...).digest`` of ``(path, digest, size)`` rows, without building entries.

    Same checks, errors and digest, several times faster (``audit verify`` needs one
    per version): the canonical JSON is written directly when RFC 8785 provably
    agrees (keys are fixed ASCII, digests checked hex, strings escaped alike).

    Raises:
        InvalidInputError: on an invalid path, digest or size, or a duplicate path.
    """
    checked, direct = [], True
    for path, digest, size in rows:
        validate_relpath(path)
        validate_digest(digest)
        if type(size) is not int or size < 0:  # exact: int subclasses take the general path
            if isinstance(size, bool) or not isinstance(size, int) or size < 0:
                ManifestEntry(path, digest, size)  # raises the usual error
            direct = False
        direct = direct and type(path) is str and size <= _JSON_INT_MAX
        checked.append((path, digest, size))
    checked.sort()  # by path: rows with equal paths are refused just below
    for before, after in itertools.pairwise(checked):
        if before[0] == after[0]:
            Manifest((ManifestEntry(*before), ManifestEntry(*after)))  # raises the usual error
    if direct:
        files = ",".join(
            f'{{"digest":"{d}","path":{_json_string(p)},"size":{n}}}' for p, d, n in checked
        )
        return "sha256:" + sha256_hex(f'{{"files":[{files}]}}'.encode())
    listed = [{"path": path, "digest": digest, "size": size} for path, digest, size in checked]
    return canonical_digest({"files": listed})  # subclasses, or sizes JSON cannot carry
