"""The artifact store's short road for small local files, single-scan ingest, and
``manifest_digest`` (the Manifest digest without building entries)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from charter.artifacts import ArtifactStore, Manifest, ManifestEntry, ingest, scan_source
from charter.artifacts import paths as paths_module
from charter.artifacts.paths import manifest_digest
from charter.artifacts.store import SMALL_FILE_BYTES
from charter.domain.errors import InvalidInputError


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def blob_path(root: Path, digest: str) -> Path:
    hexdigest = digest.removeprefix("sha256:")
    return root / "sha256" / hexdigest[:2] / hexdigest[2:]


# -- manifest_digest -------------------------------------------------------------------

SEGMENT = st.text(
    st.characters(exclude_categories=["Cc", "Cs"], exclude_characters="/\\"), min_size=1, max_size=6
).filter(lambda s: s not in (".", ".."))
RELPATH = (
    st.lists(SEGMENT, min_size=1, max_size=3)
    .map("/".join)
    .filter(lambda p: not (len(p) >= 2 and p[1] == ":" and p[0].isascii() and p[0].isalpha()))
)
ROW = st.tuples(RELPATH, st.binary(max_size=4).map(digest_of), st.integers(0, 2**53 - 1))


@settings(max_examples=300, deadline=None)
@given(st.lists(ROW, max_size=6, unique_by=lambda row: row[0]))
def test_manifest_digest_equals_the_manifest_and_rfc8785(rows: list[tuple[str, str, int]]) -> None:
    manifest = Manifest(tuple(ManifestEntry(*row) for row in rows))
    listed: Any = {"files": [{"path": p, "digest": d, "size": n} for p, d, n in sorted(rows)]}
    expected = "sha256:" + hashlib.sha256(rfc8785.dumps(listed)).hexdigest()
    assert manifest_digest(rows) == manifest.digest == expected


@pytest.mark.parametrize(
    "rows",
    [
        [("../escape", digest_of(b"x"), 1)],
        [("a", "sha256:XYZ", 1)],
        [("a", digest_of(b"x"), -1)],
        [("a", digest_of(b"x"), True)],
        [("a", digest_of(b"x"), 1), ("a", digest_of(b"y"), 2)],
        [(None, digest_of(b"x"), 1)],
    ],
)
def test_manifest_digest_refuses_what_a_manifest_refuses(rows: list[Any]) -> None:
    with pytest.raises(InvalidInputError):
        Manifest(tuple(ManifestEntry(*row) for row in rows))
    with pytest.raises(InvalidInputError):
        manifest_digest(rows)


def test_a_size_json_cannot_carry_fails_both_ways() -> None:
    rows = [("a", digest_of(b"x"), 2**53)]
    with pytest.raises(ValueError):
        _ = Manifest(tuple(ManifestEntry(*row) for row in rows)).digest
    with pytest.raises(ValueError):
        manifest_digest(rows)


def test_a_rejected_path_is_rejected_every_time() -> None:
    """validate_relpath is memoised: a failure must never be remembered as a pass."""
    for _ in range(3):
        with pytest.raises(InvalidInputError):
            paths_module.validate_relpath("a/../b")
    assert paths_module.validate_relpath("a/b") == "a/b"


# -- small local files -----------------------------------------------------------------


def test_small_file_is_stored_read_only_at_its_key_with_no_temporary(tmp_path: Path) -> None:
    root = tmp_path / "store"
    source = tmp_path / "w.bin"
    source.write_bytes(b"small weights")
    blob = ArtifactStore(str(root)).put_file(source)
    stored = blob_path(root, blob.digest)
    assert (blob.digest, blob.size) == (digest_of(b"small weights"), 13)
    assert stored.read_bytes() == b"small weights"
    assert stored.stat().st_mode & 0o222 == 0
    assert list((root / "tmp").iterdir()) == []


def test_a_second_put_of_the_same_bytes_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = ArtifactStore(str(tmp_path / "store"))
    first = store.put_bytes(b"same")
    real_open = os.open

    def no_new_files(path: Any, flags: int, *args: Any) -> int:
        assert not flags & os.O_CREAT, f"a deduplicated put created {path}"
        return real_open(path, flags, *args)

    monkeypatch.setattr(os, "open", no_new_files)
    source = tmp_path / "twin"
    source.write_bytes(b"same")
    assert store.put_file(source) == first


def test_folders_removed_behind_the_store_are_recreated(tmp_path: Path) -> None:
    root = tmp_path / "store"
    store = ArtifactStore(str(root))
    first = store.put_bytes(b"one")
    blob_path(root, first.digest).chmod(0o644)
    for folder in (root / "sha256", root / "tmp"):
        for path in sorted(folder.rglob("*"), reverse=True):
            path.unlink() if path.is_file() else path.rmdir()
        folder.rmdir()
    second = store.put_bytes(b"two")
    assert store.verify(second.digest)


def test_fsync_mode_and_the_size_boundary(tmp_path: Path) -> None:
    store = ArtifactStore(str(tmp_path / "store"), fsync=True)
    for size in (0, SMALL_FILE_BYTES, SMALL_FILE_BYTES + 1):
        data = os.urandom(size)
        source = tmp_path / f"f{size}"
        source.write_bytes(data)
        blob = store.put_file(source)
        assert blob.digest == digest_of(data)
        assert store.verify(blob.digest)


def test_progress_is_reported_once_for_a_small_file(tmp_path: Path) -> None:
    source = tmp_path / "w.bin"
    source.write_bytes(b"x" * 1000)
    seen: list[int] = []
    ArtifactStore(str(tmp_path / "store")).put_file(source, progress=seen.append)
    assert seen == [1000]


# -- single scan -------------------------------------------------------------------------


def test_ingest_uses_the_scan_it_is_given(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "a.bin").write_bytes(b"a")
    (folder / "b.json").write_text("{}")
    scanned = scan_source(folder)
    store = ArtifactStore(str(tmp_path / "store"))
    expected = ingest(store, folder)

    def no_second_scan(path: Path) -> Any:
        raise AssertionError("ingest scanned the source again")

    monkeypatch.setattr(paths_module, "scan_source", no_second_scan)
    assert ingest(store, folder, sources=scanned) == expected


class _Size(int):
    """An int subclass, as some drivers or callers may hand over."""


def test_int_subclass_sizes_take_the_general_path_with_the_same_digest() -> None:
    rows: list[Any] = [("b", digest_of(b"b"), _Size(3)), ("a", digest_of(b"a"), 5)]
    assert manifest_digest(rows) == Manifest(tuple(ManifestEntry(*row) for row in rows)).digest
