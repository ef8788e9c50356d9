"""S3-specific behaviour of the artifact store, against moto's server on loopback.

The backend-neutral suite (round trips, tampering, malformed digests…) runs on S3
too, from test_store.py and test_paths.py.
"""

from __future__ import annotations

import hashlib
import io
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest

from _s3 import s3_fs
from charter.artifacts import ArtifactStore
from charter.artifacts import _s3 as s3_module
from charter.artifacts._s3 import S3Blobs
from charter.domain.errors import InvalidInputError, StorageError

MiB = 1024 * 1024
PART = 5 * MiB


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.fixture
def url(s3_bucket: str) -> str:
    return f"s3://{s3_bucket}/store"


@pytest.fixture
def store(url: str) -> ArtifactStore:
    return ArtifactStore(url, part_size=PART, max_concurrency=2)


@pytest.fixture
def requests(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Names of the S3 requests the store sends (sequential and concurrent ones)."""
    seen: list[str] = []
    real_call, real_submit = S3Blobs.call, S3Blobs._submit

    def call(self: S3Blobs, method: str, **kwargs: Any) -> Any:
        seen.append(method)
        return real_call(self, method, **kwargs)

    def submit(self: S3Blobs, method: str, **kwargs: Any) -> Future[Any]:
        seen.append(method)
        return real_submit(self, method, **kwargs)

    monkeypatch.setattr(S3Blobs, "call", call)
    monkeypatch.setattr(S3Blobs, "_submit", submit)
    return seen


def objects(bucket: str) -> list[str]:
    return sorted(s3_fs().find(bucket))


def uploads(bucket: str) -> list[str]:
    listed = s3_fs().call_s3("list_multipart_uploads", Bucket=bucket)
    return sorted(item["Key"] for item in listed.get("Uploads", []))


def etag(bucket: str, digest: str) -> str:
    hexdigest = digest.removeprefix("sha256:")
    key = f"store/sha256/{hexdigest[:2]}/{hexdigest[2:]}"
    return str(s3_fs().call_s3("head_object", Bucket=bucket, Key=key)["ETag"])


@pytest.fixture
def big(tmp_path: Path) -> Path:
    path = tmp_path / "weights.bin"
    path.write_bytes(os.urandom(20 * MiB + 123))
    return path


# -- uploads -----------------------------------------------------------------------------


def test_a_large_file_goes_up_in_parts_with_bounded_memory(
    store: ArtifactStore, s3_bucket: str, big: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sizes: list[int] = []
    in_flight, peak, lock = 0, 0, threading.Lock()
    real_submit = S3Blobs._submit

    def submit(self: S3Blobs, method: str, **kwargs: Any) -> Future[Any]:
        nonlocal in_flight, peak
        sizes.append(len(kwargs["Body"]))
        with lock:
            in_flight += 1
            peak = max(peak, in_flight)
        future = real_submit(self, method, **kwargs)
        future.add_done_callback(lambda _: finished())
        return future

    def finished() -> None:
        nonlocal in_flight
        with lock:
            in_flight -= 1

    monkeypatch.setattr(S3Blobs, "_submit", submit)
    seen: list[int] = []
    blob = store.put_file(big, progress=seen.append)

    data = big.read_bytes()
    assert blob.digest == digest_of(data) and blob.size == len(data)
    assert sizes == [PART] * 4 + [123]
    assert peak <= 2  # max_concurrency parts in flight: memory is bounded
    assert seen == sizes  # progress per part, as each one lands
    assert etag(s3_bucket, blob.digest).endswith('-5"')  # S3's mark of a 5-part object
    assert objects(s3_bucket) == [f"{s3_bucket}/store/sha256/{blob.digest[7:9]}/{blob.digest[9:]}"]
    assert uploads(s3_bucket) == []
    store.get_file(blob.digest, tmp_path / "back.bin", expected_size=blob.size)
    assert (tmp_path / "back.bin").read_bytes() == data


def test_part_size_grows_so_huge_files_fit_in_10000_parts(
    store: ArtifactStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(s3_module, "_PARTS_PER_SIZE", 2)  # S3's real rule: 1,000
    sizes: list[int] = []
    real_submit = S3Blobs._submit

    def submit(self: S3Blobs, method: str, **kwargs: Any) -> Future[Any]:
        sizes.append(len(kwargs["Body"]))
        return real_submit(self, method, **kwargs)

    monkeypatch.setattr(S3Blobs, "_submit", submit)
    path = tmp_path / "f"
    path.write_bytes(os.urandom(25 * MiB + 1))
    assert store.verify(store.put_file(path).digest)
    assert sizes == [PART, PART, 2 * PART, PART + 1]


def test_a_one_pass_stream_goes_through_a_temporary_key(
    store: ArtifactStore, s3_bucket: str, requests: list[str]
) -> None:
    data = os.urandom(12 * MiB)
    blob = store.put_stream(io.BufferedReader(io.BytesIO(data)))
    assert blob.digest == digest_of(data)
    assert requests.count("upload_part") == 3
    assert objects(s3_bucket) == [f"{s3_bucket}/store/sha256/{blob.digest[7:9]}/{blob.digest[9:]}"]
    assert uploads(s3_bucket) == []
    assert store.verify(blob.digest)
    # A stream no longer than a part is hashed in memory and sent in one request.
    requests.clear()
    small = store.put_stream(io.BytesIO(b"tiny"))
    assert small.digest == digest_of(b"tiny") and requests == ["head_object", "put_object"]


def test_no_object_is_visible_while_an_upload_runs(
    store: ArtifactStore, s3_bucket: str, big: Path
) -> None:
    digest = digest_of(big.read_bytes())
    looks: list[tuple[bool, list[str]]] = []

    def peek(_: int) -> None:  # called as each part lands, the upload not yet completed
        looks.append((store.exists(digest), objects(s3_bucket)))

    store.put_file(big, progress=peek)
    assert looks == [(False, [])] * 5  # 5 parts landed; still nothing to see
    assert store.exists(digest)


def test_a_second_put_of_the_same_content_uploads_nothing(
    store: ArtifactStore, s3_bucket: str, big: Path, tmp_path: Path, requests: list[str]
) -> None:
    first = store.put_file(big)
    stamp = s3_fs().info(f"{s3_bucket}/store/sha256/{first.digest[7:9]}/{first.digest[9:]}")
    twin = tmp_path / "twin.bin"
    twin.write_bytes(big.read_bytes())
    requests.clear()
    seen: list[int] = []
    assert store.put_file(twin, progress=seen.append) == first
    assert requests == ["head_object"]  # hashed locally, found, done
    assert seen == [first.size]
    requests.clear()
    assert store.put_bytes(b"small") == store.put_bytes(b"small")
    assert requests == ["head_object", "put_object", "head_object"]
    again = s3_fs().info(f"{s3_bucket}/store/sha256/{first.digest[7:9]}/{first.digest[9:]}")
    assert again["LastModified"] == stamp["LastModified"]


# -- failures leave nothing visible ------------------------------------------------------


class BreakingReader(io.RawIOBase):
    """A source that yields ``good`` bytes, then raises ``error``."""

    def __init__(self, good: int, error: BaseException) -> None:
        self._left, self._error = good, error

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if not self._left:
            raise self._error
        n = min(len(buffer), self._left, MiB)
        buffer[:n] = b"x" * n
        self._left -= n
        return n


@pytest.mark.parametrize(
    ("error", "raised"),
    [(RuntimeError("source broke"), RuntimeError), (OSError("read failed"), StorageError)],
)
def test_a_source_failing_mid_stream_leaves_nothing(
    store: ArtifactStore, s3_bucket: str, error: BaseException, raised: type[BaseException]
) -> None:
    with pytest.raises(raised):
        store.put_stream(BreakingReader(12 * MiB, error))  # type: ignore[arg-type]
    assert objects(s3_bucket) == []  # no blob, no temporary key
    assert uploads(s3_bucket) == []  # the upload was aborted
    assert list(store.iter_digests()) == []


def test_a_failure_during_a_direct_upload_leaves_nothing(
    store: ArtifactStore, s3_bucket: str, big: Path
) -> None:
    def interrupted(_: int) -> None:
        raise KeyboardInterrupt  # e.g. Ctrl-C after the first part landed

    with pytest.raises(KeyboardInterrupt):
        store.put_file(big, progress=interrupted)
    assert objects(s3_bucket) == [] and uploads(s3_bucket) == []
    assert not store.exists(digest_of(big.read_bytes()))


def test_an_s3_error_mid_upload_leaves_nothing(
    store: ArtifactStore, s3_bucket: str, big: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_submit = S3Blobs._submit

    def flaky(self: S3Blobs, method: str, **kwargs: Any) -> Future[Any]:
        if kwargs["PartNumber"] == 3:
            failed: Future[Any] = Future()
            failed.set_exception(ConnectionResetError("connection reset by peer"))
            return failed
        return real_submit(self, method, **kwargs)

    monkeypatch.setattr(S3Blobs, "_submit", flaky)
    with pytest.raises(StorageError, match="connection reset"):
        store.put_file(big)
    assert objects(s3_bucket) == [] and uploads(s3_bucket) == []


def test_a_file_changed_between_hashing_and_upload_is_not_stored(
    store: ArtifactStore, s3_bucket: str, big: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = big.read_bytes()
    real_hash = s3_module._hash_stream

    def hash_then_edit(src: Any) -> tuple[str, int]:
        result = real_hash(src)
        with big.open("r+b") as out:  # a writer edits the file in place meanwhile
            out.write(b"EDITED")
        return result

    monkeypatch.setattr(s3_module, "_hash_stream", hash_then_edit)
    with pytest.raises(InvalidInputError, match="changed while"):
        store.put_file(big)
    assert not store.exists(digest_of(original))
    assert not store.exists(digest_of(big.read_bytes()))
    assert objects(s3_bucket) == [] and uploads(s3_bucket) == []


def test_a_part_size_below_the_s3_minimum_is_refused(s3_bucket: str) -> None:
    with pytest.raises(InvalidInputError, match="5 MiB"):
        ArtifactStore(f"s3://{s3_bucket}/x", part_size=MiB)
    with pytest.raises(InvalidInputError):
        ArtifactStore(f"s3://{s3_bucket}/x", max_concurrency=0)


def test_an_unreachable_endpoint_is_a_storage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("s3fs")
    store = ArtifactStore(
        "s3://charter-nowhere/x",
        storage_options={
            "endpoint_url": "http://127.0.0.1:9",  # discard port: nothing listens
            "key": "k",
            "secret": "s",
            "config_kwargs": {"retries": {"max_attempts": 1}, "connect_timeout": 1},
        },
    )
    with pytest.raises(StorageError):
        store.put_bytes(b"nowhere to go")
    with pytest.raises(StorageError):
        store.exists(digest_of(b"nowhere to go"))


# -- a real crash ------------------------------------------------------------------------

CRASHING_PUT = """
import sys
from pathlib import Path
from charter.artifacts import ArtifactStore
ArtifactStore(sys.argv[1], part_size=5 * 1024 * 1024).put_file(Path(sys.argv[2]))
"""


@pytest.fixture
def fifo(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "fifo"
    os.mkfifo(path)
    yield path


def test_a_killed_writer_leaves_only_an_invisible_upload_that_gc_aborts(
    url: str, s3_bucket: str, s3_env: dict[str, str], fifo: Path
) -> None:
    """SIGKILL a process mid-upload (fed through a fifo, so a part is sent, not all)."""
    env = {**os.environ, **s3_env}
    child = subprocess.Popen([sys.executable, "-c", CRASHING_PUT, url, str(fifo)], env=env)
    try:
        with fifo.open("wb") as feed:
            feed.write(os.urandom(6 * MiB))  # more than a part: one goes up
            feed.flush()
            deadline = time.monotonic() + 30
            while not parts_sent(s3_bucket):
                assert time.monotonic() < deadline, "the put never sent a part"
                time.sleep(0.05)
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
    assert objects(s3_bucket) == []  # nothing visible: not even a temporary key
    assert len(uploads(s3_bucket)) == 1
    assert store.collect_garbage(older_than_s=0).uploads == 1
    assert uploads(s3_bucket) == []


def parts_sent(bucket: str) -> bool:
    fs = s3_fs()
    for upload in fs.call_s3("list_multipart_uploads", Bucket=bucket).get("Uploads", []):
        listed = fs.call_s3(
            "list_parts", Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"]
        )
        if listed.get("Parts"):
            return True
    return False
