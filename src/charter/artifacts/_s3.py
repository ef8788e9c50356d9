"""Blobs on S3 through s3fs: uploads that never expose a partial object, streamed reads.

Why no partial object is ever visible: S3 has no rename, but an object appears under
a key only when a ``PutObject`` or a ``CompleteMultipartUpload`` on that key
succeeds, and then atomically with all its bytes; until completion, the parts of a
multipart upload are invisible to ``GET``/``HEAD``/``LIST``. So a put:

* hashes a regular file first (a local pass at hashlib speed), skips the upload
  entirely when the blob already exists (dedupe), else uploads it as a multipart
  upload *directly to its final content key*, hashing again while uploading, and
  completes the upload only if those bytes hash to the key's digest (a file edited
  between the passes is aborted, not stored under a wrong name);
* objects up to one part are hashed in memory and sent with one ``PutObject``;
* a one-pass stream of unknown content (``put_stream``) goes to a multipart upload
  under ``tmp/``, completed once fully read, then server-side copied to its content
  key (S3's copy is atomic too) and the temporary deleted; a crash in between
  leaves a complete object under ``tmp/``, which is never taken for a blob.

On any failure the upload is aborted (``AbortMultipartUpload``); if the process dies
first, the incomplete upload stays invisible and ``collect_garbage`` aborts it once
stale (a bucket lifecycle rule ``AbortIncompleteMultipartUpload`` is a good second net).

Memory is bounded by ``max_concurrency`` parts in flight plus the one being read.
Parts start at ``part_size`` and double every 1,000 parts (16 MiB parts cover the
first 16 GiB, 32 MiB the next 32 GiB…), so S3's 10,000-part limit is never reached.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from concurrent.futures import wait as wait_all
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime
from typing import IO, Any, cast

from charter.artifacts.hashcache import CHUNK_SIZE, Progress
from charter.domain.errors import CharterError, InvalidInputError, StorageError

__all__ = ["MIN_PART_SIZE", "S3Blobs", "Upload", "s3_errors"]

#: S3's minimum size of every part but the last.
MIN_PART_SIZE = 5 * 1024 * 1024
_PARTS_PER_SIZE = 1000  # part size doubles after this many parts (S3 allows 10,000)


@dataclass(frozen=True, slots=True)
class Upload:
    """An incomplete multipart upload: its key, id and last activity (epoch seconds)."""

    key: str
    upload_id: str
    last_activity: float
    size: int


@contextmanager
def s3_errors(action: str, key: str) -> Iterator[None]:
    """Turn botocore/aiohttp failures (which are not all ``OSError``) into StorageError.

    ``FileNotFoundError`` passes through so callers can map it to NotFoundError.
    """
    try:
        yield
    except (FileNotFoundError, CharterError):
        raise
    except Exception as exc:
        if isinstance(exc, OSError) or type(exc).__module__.split(".")[0] in _NETWORK_MODULES:
            raise StorageError(f"cannot {action} {key}: {exc}", path=key) from exc
        raise


_NETWORK_MODULES = {"botocore", "aiobotocore", "aiohttp", "s3fs"}


class S3Blobs:
    """The S3-specific operations of :class:`charter.artifacts.ArtifactStore`.

    Paths are s3fs paths (``bucket/key``); the store passes ``blob_key`` (digest to
    path) and its ``root`` (temporaries go to ``<root>/tmp/``).
    """

    def __init__(
        self,
        fs: Any,
        blob_key: Callable[[str], str],
        root: str,
        part_size: int,
        max_concurrency: int,
    ) -> None:
        self._fs = fs
        self._blob_key = blob_key
        self._tmp_dir = f"{root}/tmp"  # noqa: S108 (a key inside the store, not /tmp)
        self.part_size = part_size
        self.max_concurrency = max_concurrency

    # -- requests ----------------------------------------------------------------

    def call(self, method: str, **kwargs: Any) -> Any:
        """One S3 request through s3fs (its retries and error translation)."""
        return self._fs.call_s3(method, **kwargs)

    def _submit(self, method: str, **kwargs: Any) -> Future[Any]:
        # Runs on s3fs's event loop thread: the caller keeps reading and hashing.
        coro = self._fs._call_s3(method, **kwargs)
        return asyncio.run_coroutine_threadsafe(coro, self._fs.loop)

    def _split(self, path: str) -> tuple[str, str]:
        bucket, key, _ = self._fs.split_path(path)
        return str(bucket), str(key)

    def exists(self, path: str) -> bool:
        """True if an object is stored at ``path`` (one ``HEAD``)."""
        bucket, key = self._split(path)
        with s3_errors("check", path):
            try:
                self.call("head_object", Bucket=bucket, Key=key)
            except FileNotFoundError:
                return False
        return True

    # -- puts ----------------------------------------------------------------------

    def put(self, src: IO[bytes], size: int | None, progress: Progress | None) -> tuple[str, int]:
        """Store ``src``: a seekable source of ``size`` bytes, or a one-pass stream (None).

        Raises:
            StorageError: on any S3 failure or ``OSError`` reading ``src`` (after
                aborting the upload; other exceptions from ``src`` propagate).
        """
        if size is None:
            return self.put_stream(src, progress)
        return self.put_seekable(src, size, progress)

    def put_small(self, data: bytes, progress: Progress | None) -> tuple[str, int]:
        """Store bytes (at most a part) with one atomic ``PutObject`` unless present."""
        digest, size = "sha256:" + hashlib.sha256(data).hexdigest(), len(data)
        final = self._blob_key(digest)
        if not self.exists(final):
            bucket, key = self._split(final)
            with s3_errors("write blob", final):
                self.call("put_object", Bucket=bucket, Key=key, Body=data)
        if progress is not None:
            progress(size)
        return digest, size

    def put_seekable(self, src: IO[bytes], size: int, progress: Progress | None) -> tuple[str, int]:
        """Store a regular file: hash it, then upload it to its final key if new."""
        if size <= self.part_size:
            with s3_errors("read", "source"):
                data = _read_part(src, size + 1)  # a file grown meanwhile: ingest tells
            return self.put_small(bytes(data), progress)
        with s3_errors("read", "source"):
            expected = _hash_stream(src)
        final = self._blob_key(expected[0])
        if self.exists(final):
            if progress is not None:
                progress(expected[1])
            return expected
        src.seek(0)
        return self._multipart(src, final, None, expected, progress)

    def put_stream(self, src: IO[bytes], progress: Progress | None) -> tuple[str, int]:
        """Store a one-pass stream: via a temporary key if larger than a part."""
        with s3_errors("read", "source"):
            first = _read_part(src, self.part_size + 1)
        if len(first) <= self.part_size:
            return self.put_small(bytes(first), progress)
        tmp = f"{self._tmp_dir}/{uuid.uuid4().hex}"
        try:
            digest, size = self._multipart(src, tmp, first, None, progress)
            final = self._blob_key(digest)
            if not self.exists(final):
                with s3_errors("copy blob", final):
                    self._fs.copy(tmp, final)  # server-side, atomic for readers
        finally:
            with suppress(Exception):
                self._fs.rm_file(tmp)  # else a stale temporary, removed by GC
        return digest, size

    def _multipart(
        self,
        src: IO[bytes],
        path: str,
        first: bytearray | None,
        expected: tuple[str, int] | None,
        progress: Progress | None,
    ) -> tuple[str, int]:
        """Upload ``first`` + the rest of ``src`` to ``path``; complete only if it matches."""
        bucket, key = self._split(path)
        with s3_errors("start upload", path):
            upload_id = self.call("create_multipart_upload", Bucket=bucket, Key=key)["UploadId"]
        where = {"Bucket": bucket, "Key": key, "UploadId": upload_id}
        in_flight: deque[tuple[int, int, Future[Any]]] = deque()
        try:
            with s3_errors("upload", path):
                parts, actual = self._send_parts(src, where, first, in_flight, progress)
                if expected is not None and actual != expected:
                    # Same error as ingest's own check: a torn copy is never stored.
                    msg = "the source changed while it was being stored; store it again"
                    raise InvalidInputError(msg, path=path, hashed=expected[0], uploaded=actual[0])
                self.call("complete_multipart_upload", **where, MultipartUpload={"Parts": parts})
        except BaseException:
            for _, _, future in in_flight:
                future.cancel()
            wait_all([f for _, _, f in in_flight])
            with suppress(Exception):
                self.call("abort_multipart_upload", **where)  # else: left for GC
            raise
        return actual

    def _send_parts(
        self,
        src: IO[bytes],
        where: dict[str, str],
        first: bytearray | None,
        in_flight: deque[tuple[int, int, Future[Any]]],
        progress: Progress | None,
    ) -> tuple[list[dict[str, Any]], tuple[str, int]]:
        hasher, size, number, part_size = hashlib.sha256(), 0, 0, self.part_size
        parts: list[dict[str, Any]] = []

        def settle_oldest() -> None:
            done_number, done_size, future = in_flight[0]
            parts.append({"PartNumber": done_number, "ETag": future.result()["ETag"]})
            in_flight.popleft()
            if progress is not None:
                progress(done_size)

        chunk = first if first is not None else _read_part(src, part_size)
        while chunk:
            hasher.update(chunk)
            size, number = size + len(chunk), number + 1
            if len(in_flight) >= self.max_concurrency:
                settle_oldest()  # bounds memory: waits for the oldest part
            future = self._submit("upload_part", **where, PartNumber=number, Body=chunk)
            in_flight.append((number, len(chunk), future))
            if number % _PARTS_PER_SIZE == 0:
                part_size *= 2
            chunk = _read_part(src, part_size)
        while in_flight:
            settle_oldest()
        return parts, ("sha256:" + hasher.hexdigest(), size)

    # -- reads ---------------------------------------------------------------------

    def open(self, path: str, check_size: Callable[[int], None]) -> IO[bytes]:
        """Open one streaming ``GET`` of ``path``; ``check_size`` may refuse its size."""
        bucket, key = self._split(path)
        with s3_errors("open blob", path):
            response = self.call("get_object", Bucket=bucket, Key=key)
        reader = _BodyReader(response["Body"], self._fs.loop)
        try:
            check_size(int(response["ContentLength"]))
        except BaseException:
            reader.close()
            raise
        return cast(IO[bytes], reader)

    # -- garbage -------------------------------------------------------------------

    def incomplete_uploads(self, prefixes: tuple[str, ...], cutoff: float) -> Iterator[Upload]:
        """Yield incomplete multipart uploads under ``prefixes`` idle since before ``cutoff``.

        An upload's last activity is the latest of its start and its parts' upload
        times, so a long upload still sending parts is never taken for a stale one.
        """
        for prefix in prefixes:
            bucket, key_prefix = self._split(prefix)
            markers: dict[str, str] = {}
            while True:
                with s3_errors("list uploads under", prefix):
                    page = self.call(
                        "list_multipart_uploads", Bucket=bucket, Prefix=key_prefix + "/", **markers
                    )
                for item in page.get("Uploads", []):
                    started = _epoch(item["Initiated"])
                    if started >= cutoff:
                        continue
                    where = {"Bucket": bucket, "Key": item["Key"], "UploadId": item["UploadId"]}
                    last, size = self._parts_activity(where, started)
                    if last < cutoff:
                        yield Upload(f"{bucket}/{item['Key']}", item["UploadId"], last, size)
                if not page.get("IsTruncated"):
                    break
                markers = {
                    "KeyMarker": page["NextKeyMarker"],
                    "UploadIdMarker": page["NextUploadIdMarker"],
                }

    def _parts_activity(self, where: dict[str, str], started: float) -> tuple[float, int]:
        last, size, marker = started, 0, 0
        while True:
            try:
                with s3_errors("list parts of", where["Key"]):
                    page = self.call("list_parts", **where, PartNumberMarker=marker)
            except FileNotFoundError:
                return float("inf"), 0  # completed or aborted meanwhile: not ours to touch
            for part in page.get("Parts", []):
                last = max(last, _epoch(part["LastModified"]))
                size += int(part.get("Size", 0))
            if not page.get("IsTruncated"):
                return last, size
            marker = int(page["NextPartNumberMarker"])

    def abort(self, upload: Upload) -> None:
        """Abort an incomplete upload (already gone counts as done)."""
        bucket, key = self._split(upload.key)
        with suppress(FileNotFoundError), s3_errors("abort upload of", upload.key):
            self.call("abort_multipart_upload", Bucket=bucket, Key=key, UploadId=upload.upload_id)


class _BodyReader(io.RawIOBase):
    """A blocking reader over an aiobotocore streaming body (one ``GET``, no caching)."""

    def __init__(self, body: Any, loop: asyncio.AbstractEventLoop) -> None:
        self._body = body
        self._loop = loop

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        # One hop to the event loop per call, not per network read.
        coro = _read_into(self._body, view)
        with s3_errors("read blob", "object body"):
            return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            return self.readall()
        buf = bytearray(size)
        n = self.readinto(buf)
        del buf[n:]
        return bytes(buf)

    def readall(self) -> bytes:
        chunks = []
        while chunk := self.read(CHUNK_SIZE):
            chunks.append(chunk)
        return b"".join(chunks)

    def close(self) -> None:
        if not self.closed:
            # Releases (or drops) the connection if the body was not read to the end.
            with suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._body.close)
        super().close()


async def _read_into(body: Any, view: memoryview) -> int:
    got = 0
    while got < len(view):
        chunk = await body.read(len(view) - got)
        if not chunk:
            break
        view[got : got + len(chunk)] = chunk
        got += len(chunk)
    return got


def _read_part(src: IO[bytes], size: int) -> bytearray:
    """Read up to ``size`` bytes, looping over short reads (pipes, sockets).

    The buffer grows as data comes, so a small stream never costs a whole part.
    """
    buf = bytearray()
    while len(buf) < size:
        data = src.read(min(size - len(buf), CHUNK_SIZE))
        if not data:
            break
        buf += data
    return buf


def _hash_stream(src: IO[bytes]) -> tuple[str, int]:
    hasher, size = hashlib.sha256(), 0
    buf = bytearray(CHUNK_SIZE)
    with memoryview(buf) as view:
        while n := int(src.readinto(view) or 0):  # type: ignore[attr-defined]
            hasher.update(view[:n])
            size += n
    return "sha256:" + hasher.hexdigest(), size


def _epoch(value: datetime | str) -> float:
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return value.timestamp()
