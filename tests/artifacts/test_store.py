"""The content-addressed store, on a local folder, memory:// and S3 (moto) alike.

S3-only behaviour (multipart uploads, aborts, garbage collection) is in test_s3.py.
"""

from __future__ import annotations

import hashlib
import io
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fsspec
import pytest

import charter.artifacts
from charter.artifacts import ArtifactStore, validate_digest
from charter.artifacts import store as store_module
from charter.domain.errors import (
    IntegrityError,
    InvalidInputError,
    NotFoundError,
    StorageError,
)

MiB = 1024 * 1024


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.fixture(params=["file", "memory", "s3"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh store URL: a file:// folder, a unique memory:// prefix or an S3 bucket."""
    if request.param == "file":
        yield f"file://{tmp_path / 'store'}"
        return
    if request.param == "s3":
        yield f"s3://{request.getfixturevalue('s3_bucket')}/store"
        return
    prefix = f"memory://charter-tests-{uuid.uuid4().hex}/store"
    yield prefix
    fs, root = fsspec.core.url_to_fs(prefix)
    if fs.exists(root):
        fs.rm(root, recursive=True)


@pytest.fixture
def store(url: str) -> ArtifactStore:
    # S3's smallest part size: big_file then goes up as a multipart upload.
    return ArtifactStore(url, part_size=5 * MiB)


def url_to_fs(url: str) -> tuple[Any, str]:
    """(fs, root) of a store URL; S3 listings are never answered from a cache."""
    options = {"use_listings_cache": False} if url.startswith("s3://") else {}
    fs, root = fsspec.core.url_to_fs(url, **options)
    return fs, str(root)


@pytest.fixture
def big_file(tmp_path: Path) -> Path:
    """A few MiB of incompressible bytes: several chunks, exercises the pipeline."""
    path = tmp_path / "big.bin"
    path.write_bytes(os.urandom(9 * MiB + 12345))
    return path


def blob_key(url: str, digest: str) -> tuple[object, str]:
    """(fs, key) of a blob, from the documented layout ``sha256/ab/cdef…``."""
    fs, root = url_to_fs(url)
    hexdigest = digest.removeprefix("sha256:")
    return fs, f"{root.rstrip('/')}/sha256/{hexdigest[:2]}/{hexdigest[2:]}"


def overwrite_blob(url: str, digest: str, data: bytes) -> None:
    fs, key = blob_key(url, digest)
    if url.startswith("file://"):
        os.chmod(key, 0o644)  # blobs are stored read-only
    fs.pipe_file(key, data)  # type: ignore[attr-defined]


def temporaries(url: str) -> list[str]:
    fs, root = url_to_fs(url)
    tmp = f"{root.rstrip('/')}/tmp"
    return list(fs.ls(tmp, detail=False)) if fs.exists(tmp) else []


def test_public_api_names_exist_and_are_sorted() -> None:
    names = charter.artifacts.__all__
    assert names == sorted(names)
    for name in names:
        assert getattr(charter.artifacts, name) is not None


def test_put_file_then_get_file_round_trips(
    store: ArtifactStore, big_file: Path, tmp_path: Path
) -> None:
    data = big_file.read_bytes()
    blob = store.put_file(big_file)
    assert blob.digest == digest_of(data)
    assert blob.size == len(data)
    assert store.exists(blob.digest)
    assert store.size(blob.digest) == len(data)

    dest = tmp_path / "out" / "deep" / "copy.bin"
    assert store.get_file(blob.digest, dest, expected_size=len(data)) == blob
    assert dest.read_bytes() == data
    assert list(dest.parent.iterdir()) == [dest]  # no .part file left behind


def test_put_bytes_and_open_verified_round_trip(store: ArtifactStore) -> None:
    blob = store.put_bytes(b"hello charter")
    with store.open_verified(blob.digest, expected_size=13) as chunks:
        assert b"".join(chunks) == b"hello charter"
    assert store.verify(blob.digest)


@pytest.mark.parametrize("size", [0, 100, 9 * MiB + 1])
def test_put_stream_reads_once_and_round_trips(store: ArtifactStore, size: int) -> None:
    data = os.urandom(size)
    seen: list[int] = []
    blob = store.put_stream(io.BufferedReader(io.BytesIO(data)), progress=seen.append)
    assert blob == store_module.Blob(digest_of(data), size)
    assert sum(seen) == size
    with store.open_verified(blob.digest, expected_size=size) as chunks:
        assert b"".join(chunks) == data
    assert store.put_stream(io.BytesIO(data)) == blob  # dedupe


@pytest.mark.parametrize("size", [100, 9 * MiB + 1])
def test_put_stream_checks_the_expected_digest_before_publishing(
    store: ArtifactStore, size: int
) -> None:
    # An upload names its digest; the store's one hashing pass checks it.
    data = os.urandom(size)
    claimed = digest_of(b"something else")
    with pytest.raises(IntegrityError, match="nothing was stored") as caught:
        store.put_stream(io.BytesIO(data), expected_digest=claimed)
    assert caught.value.details["actual"] == digest_of(data)
    assert not store.exists(claimed)
    if store.is_local:  # the temporary went too (S3's stray blob is gc's: see the store)
        assert not store.exists(digest_of(data))
        assert not any((Path(store.url.removeprefix("file://")) / "tmp").glob("*"))
    ok = store.put_stream(io.BytesIO(data), expected_digest=digest_of(data))
    assert ok == store_module.Blob(digest_of(data), size)


def test_empty_file_round_trips(store: ArtifactStore, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.touch()
    blob = store.put_file(empty)
    assert blob == store_module.Blob(digest_of(b""), 0)
    store.get_file(blob.digest, tmp_path / "back")
    assert (tmp_path / "back").read_bytes() == b""


@pytest.mark.parametrize("size", [1, 4 * MiB - 1, 4 * MiB, 4 * MiB + 1, 8 * MiB])
def test_chunk_boundaries_hash_correctly(store: ArtifactStore, tmp_path: Path, size: int) -> None:
    data = os.urandom(size)
    path = tmp_path / "f"
    path.write_bytes(data)
    assert store.put_file(path).digest == digest_of(data)
    with store.open_verified(digest_of(data)) as chunks:
        assert b"".join(chunks) == data


def test_progress_reports_increments_summing_to_the_size(
    store: ArtifactStore, big_file: Path, tmp_path: Path
) -> None:
    seen: list[int] = []
    blob = store.put_file(big_file, progress=seen.append)
    assert sum(seen) == blob.size and len(seen) > 1
    seen.clear()
    store.get_file(blob.digest, tmp_path / "copy", progress=seen.append)
    assert sum(seen) == blob.size


def test_second_put_of_same_content_stores_nothing_new(
    store: ArtifactStore, url: str, big_file: Path, tmp_path: Path
) -> None:
    twin = tmp_path / "twin.bin"
    twin.write_bytes(big_file.read_bytes())
    first = store.put_file(big_file)
    second = store.put_file(twin)
    assert first == second
    assert list(store.iter_digests()) == [first.digest]
    assert temporaries(url) == []


def test_known_digest_skips_reading_the_file(store: ArtifactStore, tmp_path: Path) -> None:
    original = tmp_path / "a"
    original.write_bytes(b"x" * 100)
    blob = store.put_file(original)
    # Same size, other bytes: if the file were read, the digest would differ.
    decoy = tmp_path / "b"
    decoy.write_bytes(b"y" * 100)
    seen: list[int] = []
    assert store.put_file(decoy, known_digest=blob.digest, progress=seen.append) == blob
    assert seen == [100]


def test_stale_known_digest_falls_back_to_hashing(store: ArtifactStore, tmp_path: Path) -> None:
    path = tmp_path / "a"
    path.write_bytes(b"new content")
    absent = digest_of(b"something never stored")
    assert store.put_file(path, known_digest=absent).digest == digest_of(b"new content")
    stored = store.put_bytes(b"short")  # exists, but the size disagrees with the file
    assert store.put_file(path, known_digest=stored.digest).digest == digest_of(b"new content")


def test_local_blobs_are_read_only_and_at_the_documented_key(tmp_path: Path) -> None:
    url = f"file://{tmp_path / 'store'}"
    blob = ArtifactStore(url).put_bytes(b"layout")
    _, key = blob_key(url, blob.digest)
    assert Path(key).read_bytes() == b"layout"
    assert Path(key).stat().st_mode & 0o222 == 0


def test_plain_path_url_and_fsync_mode_work(tmp_path: Path) -> None:
    store = ArtifactStore(str(tmp_path / "plain"), fsync=True)
    blob = store.put_bytes(b"durable")
    assert store.verify(blob.digest)
    assert (tmp_path / "plain" / "sha256").is_dir()


@pytest.mark.parametrize("bad", ["", "nosuchprotocol://bucket/x"])
def test_bad_store_url_is_rejected(bad: str) -> None:
    with pytest.raises(InvalidInputError):
        ArtifactStore(bad)


def test_flipped_byte_is_detected_on_read(
    store: ArtifactStore, url: str, big_file: Path, tmp_path: Path
) -> None:
    data = bytearray(big_file.read_bytes())
    blob = store.put_file(big_file)
    data[len(data) // 2] ^= 0x01
    overwrite_blob(url, blob.digest, bytes(data))

    assert store.verify(blob.digest) is False
    with pytest.raises(IntegrityError) as caught, store.open_verified(blob.digest) as chunks:
        for _ in chunks:
            pass
    assert caught.value.details["digest"] == blob.digest
    assert caught.value.details["path"].endswith(blob.digest[len("sha256:") + 2 :])

    dest = tmp_path / "out.bin"
    with pytest.raises(IntegrityError):
        store.get_file(blob.digest, dest)
    assert not dest.exists()
    assert not any(name.endswith(".part") for name in os.listdir(tmp_path))


def test_truncated_blob_is_detected_and_never_replaces_dest(
    store: ArtifactStore, url: str, big_file: Path, tmp_path: Path
) -> None:
    blob = store.put_file(big_file)
    overwrite_blob(url, blob.digest, big_file.read_bytes()[: blob.size // 3])
    dest = tmp_path / "keep.bin"
    dest.write_bytes(b"previous good content")

    with pytest.raises(IntegrityError) as caught:
        store.get_file(blob.digest, dest)
    assert dest.read_bytes() == b"previous good content"
    assert not list(tmp_path.glob(".keep.bin.*"))
    assert caught.value.details["digest"] == blob.digest

    # With the manifest's size, the mismatch is caught before any byte is read.
    with pytest.raises(IntegrityError) as early:
        store.get_file(blob.digest, dest, expected_size=blob.size)
    assert early.value.details["expected_size"] == blob.size
    assert store.verify(blob.digest) is False


MALFORMED = [
    "",
    "sha256:",
    "sha256:" + "0" * 63,
    "sha256:" + "0" * 65,
    "sha256:" + "A" * 64,
    "sha256:" + "g" * 64,
    "SHA256:" + "0" * 64,
    "md5:" + "0" * 32,
    "0" * 64,
    "sha256:" + "0" * 64 + "\n",
    "sha256:../../../../etc/passwd" + "0" * 36,
    "sha256:" + "0" * 62 + "/x",
]


@pytest.mark.parametrize("bad", MALFORMED)
def test_malformed_digests_are_rejected_everywhere(
    store: ArtifactStore, bad: str, tmp_path: Path
) -> None:
    with pytest.raises(InvalidInputError):
        validate_digest(bad)
    for call in (
        lambda: store.exists(bad),
        lambda: store.size(bad),
        lambda: store.verify(bad),
        lambda: store.delete(bad),
        lambda: store.get_file(bad, tmp_path / "x"),
        lambda: store.put_file(tmp_path, known_digest=bad),
    ):
        with pytest.raises(InvalidInputError):
            call()
    with pytest.raises(InvalidInputError), store.open_verified(bad):
        pass


def test_missing_blob_and_missing_source_are_not_found(
    store: ArtifactStore, tmp_path: Path
) -> None:
    absent = digest_of(b"absent")
    assert not store.exists(absent)
    with pytest.raises(NotFoundError):
        store.size(absent)
    with pytest.raises(NotFoundError):
        store.verify(absent)
    with pytest.raises(NotFoundError):
        store.get_file(absent, tmp_path / "x")
    assert not (tmp_path / "x").exists()
    with pytest.raises(NotFoundError):
        store.put_file(tmp_path / "no-such-file")


def test_delete_and_iter_digests(store: ArtifactStore, url: str) -> None:
    blobs = [store.put_bytes(bytes([i]) * (i + 1)) for i in range(5)]
    assert list(store.iter_digests()) == sorted(b.digest for b in blobs)
    assert store.delete(blobs[0].digest) is True
    assert store.delete(blobs[0].digest) is False
    assert not store.exists(blobs[0].digest)
    assert len(list(store.iter_digests())) == 4
    # A stray file in the blob tree is not a blob.
    fs, root = url_to_fs(url)
    fs.makedirs(f"{root.rstrip('/')}/sha256/zz", exist_ok=True)
    fs.pipe_file(f"{root.rstrip('/')}/sha256/zz/not-a-blob", b"junk")
    assert len(list(store.iter_digests())) == 4


def test_empty_store_lists_nothing(store: ArtifactStore) -> None:
    assert list(store.iter_digests()) == []
    assert store.clean_temporaries(0) == 0


def test_leftover_temporary_is_invisible_and_cleaned(store: ArtifactStore, url: str) -> None:
    content = b"partial bytes of a crashed put"
    fs, root = url_to_fs(url)
    fs.makedirs(f"{root.rstrip('/')}/tmp", exist_ok=True)
    fs.pipe_file(f"{root.rstrip('/')}/tmp/{uuid.uuid4().hex}", content)

    assert not store.exists(digest_of(content))
    assert list(store.iter_digests()) == []
    assert store.clean_temporaries() == 0  # too young: may be a put in progress
    assert len(temporaries(url)) == 1
    assert store.clean_temporaries(older_than_seconds=0) == 1
    assert temporaries(url) == []
    with pytest.raises(InvalidInputError):
        store.clean_temporaries(-1)


def test_clean_temporaries_honours_age_on_local_stores(tmp_path: Path) -> None:
    store = ArtifactStore(str(tmp_path / "s"))
    store.put_bytes(b"creates the folders")
    old, young = tmp_path / "s" / "tmp" / "old", tmp_path / "s" / "tmp" / "young"
    old.write_bytes(b"o")
    young.write_bytes(b"y")
    two_hours_ago = time.time() - 7200
    os.utime(old, (two_hours_ago, two_hours_ago))
    assert store.clean_temporaries(3600) == 1
    assert not old.exists() and young.exists()


def test_failed_put_leaves_no_temporary_and_no_blob(
    store: ArtifactStore, url: str, big_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if url.startswith("s3://"):
        pytest.skip("S3 puts do not write through copy_and_hash: see test_s3.py")

    def explode(src: object, sink: object, progress: object = None) -> tuple[str, int]:
        sink.write(b"half a blob")  # type: ignore[attr-defined]
        raise OSError("disk full")

    monkeypatch.setattr(store_module, "copy_and_hash", explode)
    with pytest.raises(StorageError):
        store.put_file(big_file)
    assert temporaries(url) == []
    assert list(store.iter_digests()) == []


CRASHING_PUT = """
import sys
from pathlib import Path
from charter.artifacts import ArtifactStore
ArtifactStore(sys.argv[1]).put_file(Path(sys.argv[2]))
"""


def test_killed_writer_leaves_only_an_invisible_temporary(tmp_path: Path) -> None:
    """A real crash: SIGKILL a process mid-put (fed through a fifo, so it is mid-way)."""
    url, fifo = f"file://{tmp_path / 'store'}", tmp_path / "fifo"
    os.mkfifo(fifo)
    child = subprocess.Popen([sys.executable, "-c", CRASHING_PUT, url, str(fifo)])
    try:
        with fifo.open("wb") as feed:
            feed.write(os.urandom(6 * MiB))  # more than a chunk: the writer is running
            feed.flush()
            deadline = time.monotonic() + 20
            while not any(Path(p).stat().st_size for p in temporaries(url)):
                assert time.monotonic() < deadline, "the put never started writing"
                time.sleep(0.02)
            child.send_signal(signal.SIGKILL)
            child.wait(timeout=20)
    except BrokenPipeError:  # the reader died first: fine
        pass
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    store = ArtifactStore(url)
    assert list(store.iter_digests()) == []
    assert len(temporaries(url)) == 1
    assert store.clean_temporaries(older_than_seconds=0) == 1
    assert temporaries(url) == []
