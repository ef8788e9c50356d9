"""Blobs stream in and out: Range and ETag on downloads, digest-first uploads, verification."""

from __future__ import annotations

import hashlib
import tracemalloc
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from _api import Team, blob_count, serving, snapshot
from charter.service import Registry
from charter.settings import Settings

OCTETS = {"content-type": "application/octet-stream"}


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.fixture
def version(registry: Registry, tmp_path: Path) -> bytes:
    """m@1.0.0 with one 100 KiB file ``w.bin``; returns its bytes."""
    data = bytes(range(256)) * 400
    (tmp_path / "v").mkdir()
    (tmp_path / "v" / "w.bin").write_bytes(data)
    registry.create_model(name="m")
    registry.register(model="m", path=tmp_path / "v", version="1.0.0")
    return data


def test_downloads_carry_the_digest_and_serve_ranges(
    client: TestClient, team: Team, version: bytes
) -> None:
    h = team.headers("viewer")
    url = "/models/m/versions/1.0.0/files/w.bin"
    whole = client.get(url, headers=h)
    assert whole.status_code == 200 and whole.content == version
    etag = whole.headers["etag"]
    assert etag == f'"{_digest(version)}"'
    assert whole.headers["accept-ranges"] == "bytes"
    part = client.get(url, headers={**h, "Range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == version[100:200]
    assert part.headers["content-range"] == f"bytes 100-199/{len(version)}"
    tail = client.get(url, headers={**h, "Range": "bytes=-10"})
    assert tail.content == version[-10:]
    opened = client.get(url, headers={**h, "Range": f"bytes={len(version) - 5}-"})
    assert opened.content == version[-5:]
    beyond = client.get(url, headers={**h, "Range": f"bytes={len(version)}-"})
    assert beyond.status_code == 416
    assert beyond.headers["content-range"] == f"bytes */{len(version)}"
    assert client.get(url, headers={**h, "If-None-Match": etag}).status_code == 304
    stale = client.get(url, headers={**h, "Range": "bytes=0-9", "If-Range": '"sha256:0"'})
    assert stale.status_code == 200 and stale.content == version
    head = client.head(url, headers=h)
    assert head.status_code == 200 and head.headers["content-length"] == str(len(version))
    by_digest = client.get(f"/blobs/{_digest(version)}", headers={**h, "Range": "bytes=0-0"})
    assert by_digest.content == version[:1]


def test_paths_outside_the_manifest_are_refused(
    client: TestClient, team: Team, version: bytes
) -> None:
    h = team.headers("viewer")
    for bad in ("../registry.db", "..%2F..%2Fetc%2Fpasswd", "sub/../../x", "%2Fetc%2Fpasswd"):
        response = client.get(f"/models/m/versions/1.0.0/files/{bad}", headers=h)
        assert response.status_code in (404, 422), (bad, response.text)
        assert response.json()["error"]["code"] in ("invalid_input", "not_found")
    assert client.get("/models/m/versions/1.0.0/files/nope", headers=h).status_code == 404


def test_an_upload_must_hash_to_its_digest_and_stores_nothing_else(
    client: TestClient, team: Team, registry: Registry
) -> None:
    h = {**team.headers("contributor"), **OCTETS}
    before = snapshot(registry)
    wrong = client.put(f"/blobs/{_digest(b'expected')}", content=b"something else", headers=h)
    assert wrong.status_code == 422 and "nothing was stored" in wrong.json()["error"]["message"]
    assert snapshot(registry) == before
    assert client.put("/blobs/sha256:../../x", content=b"x", headers=h).status_code in (404, 422)
    text = {**team.headers("contributor"), "content-type": "text/plain"}
    assert client.put(f"/blobs/{_digest(b'x')}", content=b"x", headers=text).status_code == 415
    ok = client.put(f"/blobs/{_digest(b'payload')}", content=b"payload", headers=h)
    assert ok.status_code == 201 and ok.json() == {
        "digest": _digest(b"payload"), "size": 7, "created": True}  # fmt: skip
    again = client.put(f"/blobs/{_digest(b'payload')}", content=b"payload", headers=h)
    assert again.status_code == 200 and again.json()["created"] is False
    assert blob_count(registry) == before[1] + 1


def test_registration_sends_digests_first_and_uploads_only_missing_blobs(
    client: TestClient, team: Team, registry: Registry, tmp_path: Path
) -> None:
    h = team.headers("contributor")
    registry.create_model(name="m")
    data = b"weights" * 1000
    files = [{"path": "w.bin", "digest": _digest(data), "size": len(data)}]
    ask = client.post("/blobs/missing", json={"digests": [_digest(data)]}, headers=h)
    assert ask.json() == {"missing": [_digest(data)]}
    first = client.post("/models/m/versions", json={"version": "1.0.0", "files": files}, headers=h)
    assert first.status_code == 404
    assert first.json()["error"]["details"]["missing_blobs"] == [_digest(data)]
    assert client.put(f"/blobs/{_digest(data)}", content=data, headers={**h, **OCTETS}).is_success
    done = client.post("/models/m/versions", json={"version": "1.0.0", "files": files}, headers=h)
    assert done.status_code == 201 and done.json()["created_by"] == "carol"
    # a second version of the same bytes needs no upload at all
    body = {"version": "1.0.1", "parent": "1.0.0", "files": files}
    assert client.post("/models/m/versions", json=body, headers=h).status_code == 201
    assert client.post("/blobs/missing", json={"digests": [_digest(data)]}, headers=h).json() == {
        "missing": []}  # fmt: skip


def test_a_wrong_size_or_traversal_in_a_manifest_changes_nothing(
    client: TestClient, team: Team, registry: Registry
) -> None:
    h = team.headers("contributor")
    registry.create_model(name="m")
    data = b"abc"
    client.put(f"/blobs/{_digest(data)}", content=data, headers={**h, **OCTETS})
    before = snapshot(registry)
    for path, size in (("../escape.bin", 3), ("/abs.bin", 3), ("a/./b", 3), ("w.bin", 4)):
        files = [{"path": path, "digest": _digest(data), "size": size}]
        response = client.post(
            "/models/m/versions", json={"version": "1.0.0", "files": files}, headers=h
        )
        assert response.status_code == 422, (path, response.text)
    assert snapshot(registry) == before


def test_uploads_stream_without_holding_the_file(
    settings: Settings, team: Team, registry: Registry
) -> None:
    size = 48 * 1024 * 1024
    chunk = bytes(range(256)) * 4096  # 1 MiB
    hasher = hashlib.sha256()
    for _ in range(size // len(chunk)):
        hasher.update(chunk)
    digest = "sha256:" + hasher.hexdigest()

    def body() -> object:
        for _ in range(size // len(chunk)):
            yield chunk

    headers = {**team.headers("contributor"), **OCTETS, "content-length": str(size)}
    with serving(settings, registry) as url, httpx.Client(base_url=url + "/api/v1") as http:
        tracemalloc.start()  # client and server: both run in this process
        try:
            response = http.put(f"/blobs/{digest}", content=body(), headers=headers)  # type: ignore[arg-type]
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert response.status_code == 201, response.text
    assert peak < size / 2, f"peak {peak / 2**20:.1f} MiB for a {size / 2**20:.0f} MiB upload"
    assert registry.artifacts.size(digest) == size
