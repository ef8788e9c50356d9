"""ArtifactStore.collect_garbage: leftovers of interrupted puts and unreferenced blobs.

Ages are judged against ``charter.artifacts._gc._now``; tests move that clock
forward instead of waiting (S3 stamps objects with the server's real time).
"""

from __future__ import annotations

import hashlib
import os
import time
import uuid
from pathlib import Path
from typing import Any

import fsspec
import pytest

from _s3 import s3_fs
from charter.artifacts import ArtifactStore
from charter.artifacts import _gc as gc_module
from charter.artifacts.store import GcReport
from charter.domain.errors import InvalidInputError

MiB = 1024 * 1024
HOUR = 3600.0


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.fixture(params=["file", "s3"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "s3":
        return f"s3://{request.getfixturevalue('s3_bucket')}/store"
    return f"file://{tmp_path / 'store'}"


@pytest.fixture
def store(url: str) -> ArtifactStore:
    return ArtifactStore(url, part_size=5 * MiB)


def url_to_fs(url: str) -> tuple[Any, str]:
    options = {"use_listings_cache": False} if url.startswith("s3://") else {}
    fs, root = fsspec.core.url_to_fs(url, **options)
    return fs, str(root).rstrip("/")


def later(monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
    """Make the collector believe ``seconds`` have passed."""
    monkeypatch.setattr(gc_module, "_now", lambda: time.time() + seconds)


def leave_temporary(url: str, data: bytes = b"half a blob") -> str:
    fs, root = url_to_fs(url)
    fs.makedirs(f"{root}/tmp", exist_ok=True)
    key = f"{root}/tmp/{uuid.uuid4().hex}"
    fs.pipe_file(key, data)
    return key


def test_fresh_leftovers_are_kept_and_stale_ones_removed(
    store: ArtifactStore, url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    fs, _ = url_to_fs(url)
    key = leave_temporary(url, b"x" * 100)
    assert store.collect_garbage(older_than_s=HOUR) == GcReport()
    assert fs.exists(key)

    later(monkeypatch, 2 * HOUR)
    assert store.collect_garbage(older_than_s=HOUR, dry_run=True) == GcReport(
        temporaries=1, freed_bytes=100, dry_run=True
    )
    assert fs.exists(key)
    assert store.collect_garbage(older_than_s=HOUR) == GcReport(temporaries=1, freed_bytes=100)
    assert not fs.exists(key)


def test_unreferenced_blobs_go_only_when_asked_and_old(
    store: ArtifactStore, url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    kept, orphan = store.put_bytes(b"in a manifest"), store.put_bytes(b"orphan")
    assert store.collect_garbage(older_than_s=HOUR, referenced={kept.digest}).blobs == ()

    later(monkeypatch, 2 * HOUR)
    assert store.collect_garbage(older_than_s=HOUR).blobs == ()  # blobs left alone
    dry = store.collect_garbage(older_than_s=HOUR, referenced={kept.digest}, dry_run=True)
    assert dry.blobs == (orphan.digest,) and dry.freed_bytes == orphan.size
    assert store.exists(orphan.digest)

    report = store.collect_garbage(older_than_s=HOUR, referenced=[kept.digest])
    assert report == GcReport(blobs=(orphan.digest,), freed_bytes=orphan.size)
    assert list(store.iter_digests()) == [kept.digest]
    assert store.verify(kept.digest)


def test_stray_files_in_the_blob_tree_are_never_collected(
    store: ArtifactStore, url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    fs, root = url_to_fs(url)
    fs.makedirs(f"{root}/sha256/zz", exist_ok=True)
    fs.pipe_file(f"{root}/sha256/zz/not-a-blob", b"junk")
    later(monkeypatch, 2 * HOUR)
    assert store.collect_garbage(older_than_s=0, referenced=set()) == GcReport()
    assert fs.exists(f"{root}/sha256/zz/not-a-blob")


@pytest.mark.parametrize("bad", [-1.0, float("nan")])
def test_a_negative_age_is_refused(store: ArtifactStore, bad: float) -> None:
    with pytest.raises(InvalidInputError):
        store.collect_garbage(older_than_s=bad)


def test_local_ages_come_from_mtimes(tmp_path: Path) -> None:
    store = ArtifactStore(str(tmp_path / "s"))
    young_blob, old_blob = store.put_bytes(b"young"), store.put_bytes(b"old")
    tmp = tmp_path / "s" / "tmp"
    (tmp / "old").write_bytes(b"o")
    (tmp / "young").write_bytes(b"y")
    two_hours_ago = time.time() - 2 * HOUR
    hexdigest = old_blob.digest.removeprefix("sha256:")
    for path in (tmp / "old", tmp_path / "s" / "sha256" / hexdigest[:2] / hexdigest[2:]):
        os.utime(path, (two_hours_ago, two_hours_ago))

    report = store.collect_garbage(older_than_s=HOUR, referenced=set())
    assert report == GcReport(temporaries=1, blobs=(old_blob.digest,), freed_bytes=1 + 3)
    assert sorted(p.name for p in tmp.iterdir()) == ["young"]
    assert list(store.iter_digests()) == [young_blob.digest]


@pytest.mark.parametrize("size", [10, 2 * MiB], ids=["small", "large"])
def test_a_dedupe_hit_freshens_an_old_local_orphan(tmp_path: Path, size: int) -> None:
    """A registration reusing an orphan blob must not lose it to a concurrent GC."""
    store = ArtifactStore(str(tmp_path / "s"))
    source = tmp_path / "weights"
    source.write_bytes(os.urandom(size))
    blob = store.put_file(source)
    hexdigest = blob.digest.removeprefix("sha256:")
    stored = tmp_path / "s" / "sha256" / hexdigest[:2] / hexdigest[2:]
    long_ago = time.time() - 10 * HOUR
    os.utime(stored, (long_ago, long_ago))

    assert store.put_file(source) == blob  # dedupe: nothing written, but freshened
    assert store.collect_garbage(older_than_s=HOUR, referenced=set()).blobs == ()
    os.utime(stored, (long_ago, long_ago))
    assert store.put_file(source, known_digest=blob.digest) == blob  # hash-cache hit too
    assert store.collect_garbage(older_than_s=HOUR, referenced=set()).blobs == ()
    assert stored.stat().st_mode & 0o222 == 0  # still read-only


def test_clean_temporaries_is_garbage_collection_without_blobs(
    store: ArtifactStore, url: str
) -> None:
    store.put_bytes(b"unreferenced but kept")
    leave_temporary(url)
    assert store.clean_temporaries(older_than_seconds=0) == 1
    assert len(list(store.iter_digests())) == 1


# -- S3: incomplete multipart uploads ---------------------------------------------------


def start_upload(bucket: str, key: str, parts: int = 1) -> str:
    """An upload as a crashed put leaves it: started, some parts sent, never completed."""
    fs = s3_fs()
    upload_id = str(fs.call_s3("create_multipart_upload", Bucket=bucket, Key=key)["UploadId"])
    for number in range(1, parts + 1):
        fs.call_s3(
            "upload_part",
            Bucket=bucket,
            Key=key,
            UploadId=upload_id,
            PartNumber=number,
            Body=b"p" * (5 * MiB),
        )
    return upload_id


def uploads(bucket: str) -> list[str]:
    listed = s3_fs().call_s3("list_multipart_uploads", Bucket=bucket)
    return sorted(item["Key"] for item in listed.get("Uploads", []))


def test_stale_multipart_uploads_are_aborted_but_not_fresh_ones(
    s3_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = ArtifactStore(f"s3://{s3_bucket}/store")
    start_upload(s3_bucket, "store/sha256/ab/" + "c" * 62)  # a direct put that died
    start_upload(s3_bucket, "store/tmp/0123", parts=2)  # a streamed put that died
    start_upload(s3_bucket, "elsewhere/big.bin")  # not the store's: never touched
    assert store.collect_garbage(older_than_s=HOUR) == GcReport()
    assert len(uploads(s3_bucket)) == 3

    later(monkeypatch, 2 * HOUR)
    dry = store.collect_garbage(older_than_s=HOUR, dry_run=True)
    assert (dry.uploads, dry.freed_bytes) == (2, 15 * MiB)
    assert len(uploads(s3_bucket)) == 3
    assert store.collect_garbage(older_than_s=HOUR) == GcReport(uploads=2, freed_bytes=15 * MiB)
    assert uploads(s3_bucket) == ["elsewhere/big.bin"]


def test_an_upload_still_sending_parts_is_not_stale(s3_bucket: str) -> None:
    """Age is the latest part's, not the start's.

    moto dates every upload's start in 2010, so this upload looks started long ago:
    what keeps it is its part, sent just now.
    """
    store = ArtifactStore(f"s3://{s3_bucket}/store")
    start_upload(s3_bucket, "store/tmp/long-running")
    assert store.collect_garbage(older_than_s=HOUR).uploads == 0
    assert uploads(s3_bucket) == ["store/tmp/long-running"]


def test_a_bucket_root_store_collects_too(s3_bucket: str, monkeypatch: pytest.MonkeyPatch) -> None:
    store = ArtifactStore(f"s3://{s3_bucket}")
    blob = store.put_bytes(b"at the bucket root")
    start_upload(s3_bucket, "tmp/crashed")
    later(monkeypatch, 2 * HOUR)
    report = store.collect_garbage(older_than_s=HOUR, referenced=set())
    assert report == GcReport(uploads=1, blobs=(blob.digest,), freed_bytes=5 * MiB + blob.size)
    assert uploads(s3_bucket) == []
