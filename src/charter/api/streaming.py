"""Streaming blobs in and out: memory stays flat whatever the file size.

Downloads carry ``ETag: "sha256:…"`` (the content digest, so a strong validator
that never changes), answer ``If-None-Match`` with 304, and serve one
``Range`` (``bytes=a-b``, ``a-``, ``-n``) with 206. A whole blob is re-hashed
as it is sent (invariant 4); if the stored bytes are damaged the connection is
cut before the last chunk, so a client never receives a complete wrong file.
A range cannot be verified on its own: clients verify what they assemble
against the ETag (:class:`charter.client.RemoteRegistry` does).

Uploads go through :meth:`ArtifactStore.put_stream` from a worker thread that
pulls the request body from the event loop in chunks of about 1 MiB. The bytes
are hashed once: by a local store in its copy (it checks the digest in the URL
before publishing), or, for S3, by the reader, which fails at the end of the body
before the multipart upload completes. Either way nothing is published when the
bytes do not match.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator

import anyio
import anyio.from_thread
from fastapi import Request
from fastapi.responses import Response, StreamingResponse
from starlette.requests import ClientDisconnect

from charter.artifacts import ArtifactStore, Blob
from charter.domain.errors import IntegrityError, InvalidInputError

__all__ = ["UploadReader", "blob_response", "receive_blob"]

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
_PULL_BYTES = 1 << 20
_RANGE_CHUNK = 1 << 20


class UploadReader:
    """A blocking, file-like view of a request body, for a worker thread.

    Every ``read`` that needs bytes calls back into the event loop for the next
    chunks; at the end of the body the digest and size are checked.
    """

    def __init__(
        self, request: Request, *, digest: str, length: int | None, verify: bool = True
    ) -> None:
        self._chunks = request.stream().__aiter__()
        self._digest = digest
        self._length = length
        # Off when the store hashes the same bytes itself: one sha256 pass, not two.
        self._hasher = hashlib.sha256() if verify else None
        self._size = 0
        self._buffer = memoryview(b"")
        self._done = False

    async def _pull(self) -> bytes:
        parts: list[bytes] = []
        total = 0
        while total < _PULL_BYTES:
            try:
                chunk = await self._chunks.__anext__()
            except StopAsyncIteration:
                break
            parts.append(chunk)
            total += len(chunk)
        return b"".join(parts)

    def _refill(self) -> None:
        data = anyio.from_thread.run(self._pull)
        if not data:
            self._done = True
            self._check()
            return
        if self._hasher is not None:
            self._hasher.update(data)
        self._size += len(data)
        self._buffer = memoryview(data)

    def _check(self) -> None:
        if self._length is not None and self._size != self._length:
            raise InvalidInputError(
                f"the upload ended after {self._size} of {self._length} bytes", field="body"
            )
        if self._hasher is None:
            return
        actual = "sha256:" + self._hasher.hexdigest()
        if actual != self._digest:
            raise InvalidInputError(
                f"the uploaded bytes hash to {actual}, not to {self._digest} named in the URL: "
                "nothing was stored",
                field="digest",
                actual=actual,
            )

    def readinto(self, target: bytearray | memoryview) -> int:
        """Fill ``target`` with the next bytes of the body (0 at its end)."""
        if not self._buffer and not self._done:
            self._refill()
        n = min(len(target), len(self._buffer))
        target[:n] = self._buffer[:n]
        self._buffer = self._buffer[n:]
        return n

    def read(self, size: int = -1) -> bytes:
        """The next bytes of the body, at most ``size`` (all the rest when negative)."""
        if size is None or size < 0:
            parts = []
            while chunk := self.read(_PULL_BYTES):
                parts.append(chunk)
            return b"".join(parts)
        if not self._buffer and not self._done:
            self._refill()
        out = bytes(self._buffer[:size])
        self._buffer = self._buffer[len(out) :]
        return out


async def receive_blob(request: Request, store: ArtifactStore, digest: str) -> Blob:
    """Store the request body as the blob ``digest`` (verified), streaming.

    Raises:
        InvalidInputError: the bytes do not hash to ``digest``, the body is cut short,
            or the client went away.
    """
    length_header = request.headers.get("content-length")
    length = int(length_header) if length_header and length_header.isdigit() else None
    local = store.is_local
    reader = UploadReader(request, digest=digest, length=length, verify=not local)
    expected = digest if local else None
    try:
        return await anyio.to_thread.run_sync(
            lambda: store.put_stream(reader, expected_digest=expected)  # type: ignore[arg-type]
        )
    except ClientDisconnect:
        raise InvalidInputError("the client went away during the upload", field="body") from None
    except IntegrityError as exc:
        raise InvalidInputError(
            f"the uploaded bytes hash to {exc.details['actual']}, not to {digest} named in the "
            "URL: nothing was stored",
            field="digest",
            actual=exc.details["actual"],
        ) from None


def _parse_range(header: str | None, size: int) -> tuple[int, int] | bool | None:
    """(first, last) of a single satisfiable range; None: serve all; False: unsatisfiable."""
    if header is None:
        return None
    found = _RANGE.match(header.strip())
    if found is None:
        return None  # several ranges or another unit: a full response is allowed
    first, last = found.groups()
    if not first and not last:
        return None
    if not first:
        tail = int(last)
        if tail == 0:
            return False
        return max(size - tail, 0), size - 1
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if start >= size or (last and int(last) < start):
        return False
    return start, end


def _range_chunks(store: ArtifactStore, digest: str, first: int, last: int) -> Iterator[bytes]:
    _key, handle = store._open_blob(digest, None)
    with handle:
        handle.seek(first)
        left = last - first + 1
        while left > 0:
            chunk = handle.read(min(_RANGE_CHUNK, left))
            if not chunk:
                break
            left -= len(chunk)
            yield chunk


def _whole(store: ArtifactStore, digest: str, size: int) -> Iterator[bytes]:
    with store.open_verified(digest, expected_size=size) as chunks:
        yield from chunks


def blob_response(
    request: Request, store: ArtifactStore, digest: str, *, filename: str | None = None
) -> Response:
    """Serve a blob (GET or HEAD) with ETag, conditional and range support.

    Raises:
        NotFoundError: no such blob. InvalidInputError: a malformed digest.
    """
    size = store.size(digest)
    etag = f'"{digest}"'
    headers = {"ETag": etag, "Accept-Ranges": "bytes", "Cache-Control": "private, immutable"}
    if filename is not None:
        headers["Content-Disposition"] = f"attachment; filename*=UTF-8''{_quote(filename)}"
    if etag in {t.strip() for t in request.headers.get("if-none-match", "").split(",")}:
        return Response(status_code=304, headers=headers)
    wanted = _parse_range(request.headers.get("range"), size)
    if_range = request.headers.get("if-range")
    if if_range is not None and if_range.strip() != etag:
        wanted = None
    if wanted is False:
        headers["Content-Range"] = f"bytes */{size}"
        return Response(status_code=416, headers=headers)
    media = "application/octet-stream"
    if isinstance(wanted, tuple):
        first, last = wanted
        headers["Content-Range"] = f"bytes {first}-{last}/{size}"
        headers["Content-Length"] = str(last - first + 1)
        if request.method == "HEAD":
            return Response(status_code=206, headers=headers, media_type=media)
        body = _range_chunks(store, digest, first, last)
        return StreamingResponse(body, status_code=206, headers=headers, media_type=media)
    headers["Content-Length"] = str(size)
    if request.method == "HEAD":
        return Response(status_code=200, headers=headers, media_type=media)
    return StreamingResponse(_whole(store, digest, size), headers=headers, media_type=media)


def _quote(name: str) -> str:
    from urllib.parse import quote

    return quote(name.rsplit("/", 1)[-1], safe="")
