"""Storing sources: streamed ingestion (with the hash cache) and staging of small ones."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from charter.artifacts import ArtifactStore, HashCache, ingest, ingestion, scan_source, stage
from charter.artifacts.hashcache import CACHED_MIN_BYTES
from charter.artifacts.ingestion import STAGED_MAX_BYTES, STAGED_MAX_FILES
from charter.domain.canonical import sha256_hex
from charter.domain.errors import InvalidInputError


def age(*paths: Path, seconds: float = 3600) -> None:
    """Backdate mtimes past the hash cache's racy window."""
    when = time.time() - seconds
    for path in paths:
        os.utime(path, (when, when))


def test_ingest_stores_every_file_and_dedupes(store: ArtifactStore, model: Path) -> None:
    seen: list[int] = []
    manifest = ingest(store, model, progress=seen.append)
    assert [e.path for e in manifest] == [f.relpath for f in scan_source(model)]
    assert sum(seen) == manifest.total_size == 5000 + 4 + 4 + len('{"layers": 2}')
    by_path = {e.path: e for e in manifest}
    assert by_path["weights/shards/0.bin"].digest == by_path["weights/shards/1.bin"].digest
    assert len(list(store.iter_digests())) == 4  # five files, two identical
    for entry in manifest:
        assert store.verify(entry.digest)


def test_ingest_single_file(store: ArtifactStore, tmp_path: Path) -> None:
    path = tmp_path / "clf.joblib"
    path.write_bytes(b"model bytes")
    manifest = ingest(store, path)
    assert manifest.to_list() == [
        {"path": "clf.joblib", "digest": "sha256:" + sha256_hex(b"model bytes"), "size": 11}
    ]


def test_ingest_with_cache_does_not_reread_unchanged_files(
    store: ArtifactStore, model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (model / "weights" / "big.bin").write_bytes(os.urandom(CACHED_MIN_BYTES))
    age(*(f.abspath for f in scan_source(model)))
    with HashCache(tmp_path / "cache.sqlite") as cache:
        first = ingest(store, model, cache=cache)
        read: list[str] = []
        put_file = store.put_file

        def spy(path: Path, *, progress: object = None, known_digest: str | None = None) -> object:
            if known_digest is None:
                read.append(Path(path).name)  # no digest to trust: the file is read
            return put_file(path, known_digest=known_digest)

        monkeypatch.setattr(store, "put_file", spy)
        assert ingest(store, model, cache=cache) == first
        # Files under the threshold are hashed again (cheaper than the cache); the
        # large one is not read.
        assert sorted(read) == ["0.bin", "1.bin", "EMPTY", "a.bin", "config.json"]

        monkeypatch.undo()
        (model / "weights" / "big.bin").write_bytes(os.urandom(CACHED_MIN_BYTES))
        third = ingest(store, model, cache=cache)
    assert first.diff(third).changed == ("weights/big.bin",)


@pytest.mark.parametrize("change", [b"appended", b""])
def test_ingest_refuses_a_file_that_changes_while_read(
    store: ArtifactStore, tmp_path: Path, change: bytes
) -> None:
    path = tmp_path / "checkpoint.bin"
    path.write_bytes(b"first version")
    age(path)
    changed: list[bool] = []

    def writer_meanwhile(_: int) -> None:
        if not changed:  # once: appending, or rewriting with the same size
            changed.append(True)
            with path.open("ab" if change else "r+b") as out:
                out.write(change or b"FIRST")

    with pytest.raises(InvalidInputError, match="changed while"):
        ingest(store, path, progress=writer_meanwhile)


def test_ingest_of_invalid_source_stores_nothing(store: ArtifactStore, model: Path) -> None:
    (model / "weights" / "escape").symlink_to("/etc/hostname")
    with pytest.raises(InvalidInputError):
        ingest(store, model)
    assert list(store.iter_digests()) == []


# -- staging -----------------------------------------------------------------


def test_stage_reads_a_small_source_and_stores_only_when_asked(
    store: ArtifactStore, model: Path
) -> None:
    seen: list[int] = []
    staged = stage(scan_source(model), progress=seen.append)
    assert staged is not None
    assert list(store.iter_digests()) == []  # read and hashed, nothing stored yet
    streamed = ingest(ArtifactStore(f"file://{model.parent / 'other'}"), model)
    assert staged.manifest == streamed
    assert seen == [staged.manifest.total_size]
    staged.store(store)
    staged.store(store)  # again: the blobs are there already
    assert sorted(store.iter_digests()) == sorted({e.digest for e in staged.manifest})
    for entry in staged.manifest:
        assert store.verify(entry.digest)


@pytest.mark.parametrize(
    ("files", "size"),
    [(1, STAGED_MAX_BYTES + 1), (STAGED_MAX_FILES + 1, 1)],
    ids=["too-many-bytes", "too-many-files"],
)
def test_stage_declines_a_source_that_is_not_small(tmp_path: Path, files: int, size: int) -> None:
    for i in range(files):
        (tmp_path / f"f{i}").write_bytes(os.urandom(size))
    assert stage(scan_source(tmp_path)) is None


@pytest.mark.parametrize("change", [b"appended", b""])
def test_stage_refuses_a_file_that_changes_while_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, change: bytes
) -> None:
    path = tmp_path / "checkpoint.bin"
    path.write_bytes(b"first version")
    age(path)
    real_open = open

    def open_then_write(file: Path, mode: str) -> object:
        handle = real_open(file, mode)
        with real_open(path, "ab" if change else "r+b") as out:  # a writer, meanwhile
            out.write(change or b"FIRST")
        return handle

    monkeypatch.setattr(ingestion, "open", open_then_write, raising=False)
    with pytest.raises(InvalidInputError, match="changed while"):
        stage(scan_source(path))
