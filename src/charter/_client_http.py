"""The HTTP side of :class:`charter.client.RemoteRegistry`: requests, errors, blobs.

Errors come back as the server's ``{"error": {code, message, details}}`` and are
raised as the same :class:`~charter.domain.errors.CharterError` subclass the local
registry raises, so callers (and the CLI) handle both alike. Blobs stream both
ways in 1 MiB chunks and are verified against their digest before a file is
put in place.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from charter.domain import errors as e
from charter.domain.entities import FileRecord

__all__ = ["Http", "hash_file", "path_of"]

Progress = Callable[[int], None]
_CHUNK = 1 << 20


def _error_classes() -> dict[str, type[e.CharterError]]:
    found: dict[str, type[e.CharterError]] = {}
    pending: list[type[e.CharterError]] = [e.CharterError]
    while pending:
        cls = pending.pop()
        found.setdefault(cls.code, cls)
        pending.extend(cls.__subclasses__())
    return found


_BY_CODE = _error_classes()
_BY_STATUS: dict[int, type[e.CharterError]] = {
    400: e.InvalidInputError, 401: e.UnauthorizedError, 403: e.ForbiddenError,
    404: e.NotFoundError, 409: e.ConflictError, 413: e.InvalidInputError,
    415: e.InvalidInputError, 422: e.InvalidInputError, 503: e.StorageError,
}  # fmt: skip


def path_of(*parts: str) -> str:
    """A URL path from its segments, each percent-encoded (``+`` of semver builds too)."""
    return "/" + "/".join(quote(p, safe="") for p in parts)


def hash_file(path: Path) -> tuple[str, int]:
    """``("sha256:<hex>", size)`` of a local file, read once in large chunks."""
    hasher = hashlib.sha256()
    size = 0
    with path.open("rb", buffering=0) as fh:
        while chunk := fh.read(4 * _CHUNK):
            hasher.update(chunk)
            size += len(chunk)
    return "sha256:" + hasher.hexdigest(), size


def _raise_for(response: httpx.Response) -> None:
    if response.status_code < 400:
        return
    try:
        body = response.json()["error"]
        code, message, details = str(body["code"]), str(body["message"]), dict(body["details"])
    except (ValueError, KeyError, TypeError):
        text = response.text[:300].strip()
        raise e.CharterError(
            f"the server answered {response.status_code}: {text or response.reason_phrase}",
            status=response.status_code,
        ) from None
    cls = _BY_CODE.get(code) or _BY_STATUS.get(response.status_code, e.CharterError)
    error = cls(message, **details)
    raise error


class Http:
    """A keep-alive HTTP client for one server's ``/api/v1``."""

    def __init__(
        self,
        url: str,
        *,
        token: str | None,
        timeout: float = 300.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        headers = {"User-Agent": "charter-client"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.base = url.rstrip("/")
        self.client = httpx.Client(
            base_url=self.base + "/api/v1",
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=10.0),
            transport=transport,
        )

    def close(self) -> None:
        """Close the connection pool."""
        self.client.close()

    def send(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """Send one request; raise the server's error as a :class:`CharterError`."""
        query = {k: v for k, v in (params or {}).items() if v is not None}
        try:
            response = self.client.request(
                method, path, json=json, params=query or None, headers=headers
            )
        except httpx.TransportError as exc:
            raise e.HomeError(
                f"cannot reach the Charter server at {self.base}: {exc}", url=self.base
            ) from None
        _raise_for(response)
        return response

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        """Send a request and return its JSON body (None for an empty one)."""
        response = self.send(method, path, **kwargs)
        return response.json() if response.content else None

    # -- blobs ----------------------------------------------------------------
    def upload(self, record: FileRecord, source: Path, progress: Progress | None) -> None:
        """Stream ``source`` as the blob ``record.digest`` (the server re-hashes it)."""

        def chunks() -> Iterator[bytes]:
            with source.open("rb", buffering=0) as fh:
                while chunk := fh.read(_CHUNK):
                    if progress is not None:
                        progress(len(chunk))
                    yield chunk

        headers = {
            "Content-Type": "application/octet-stream",
            "Content-Length": str(record.size),
        }
        try:
            response = self.client.put(
                path_of("blobs", record.digest), content=chunks(), headers=headers
            )
        except httpx.TransportError as exc:
            raise e.HomeError(f"upload of {record.path} to {self.base} failed: {exc}") from None
        _raise_for(response)

    def fetch(
        self, digest: str, dest: Path, *, size: int | None, progress: Progress | None
    ) -> None:
        """Download blob ``digest`` to ``dest``, verified before it is renamed into place.

        Raises:
            IntegrityError: the bytes received do not hash to ``digest`` (nothing written).
        """
        dest.parent.mkdir(parents=True, exist_ok=True)
        part = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:12]}.part")
        hasher, received = hashlib.sha256(), 0
        try:
            with self.client.stream("GET", path_of("blobs", digest)) as response:
                if response.status_code >= 400:
                    response.read()
                    _raise_for(response)
                with part.open("xb") as sink:
                    for chunk in response.iter_bytes(_CHUNK):
                        hasher.update(chunk)
                        sink.write(chunk)
                        received += len(chunk)
                        if progress is not None:
                            progress(len(chunk))
            actual = "sha256:" + hasher.hexdigest()
            if actual != digest or (size is not None and received != size):
                raise e.IntegrityError(
                    f"downloaded bytes of {digest} hash to {actual} ({received} bytes)",
                    digest=digest,
                    actual=actual,
                )
            part.replace(dest)
        except httpx.TransportError as exc:
            raise e.HomeError(f"download of {digest} from {self.base} failed: {exc}") from None
        finally:
            part.unlink(missing_ok=True)

    def read(self, digest: str) -> bytes:
        """A (small) blob's bytes, verified."""
        data = self.send("GET", path_of("blobs", digest)).content
        actual = "sha256:" + hashlib.sha256(data).hexdigest()
        if actual != digest:
            raise e.IntegrityError(f"blob {digest} arrived as {actual}", digest=digest)
        return data
