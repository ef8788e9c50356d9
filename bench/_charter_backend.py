"""Charter's REST API (``charter serve``, ``/api/v1``) as a ``compare_mlflow.py`` backend.

A "version with one small file" on Charter is what ``RemoteRegistry.register``
does: PUT the file's bytes to ``/blobs/{digest}`` (the server hashes them and
refuses a mismatch), then POST the manifest to ``/models/{name}/versions``: a
draft. Two requests per version, as on MLflow. A draft is what MLflow's
``model-versions/create`` gives (a usable, still-editable version); publishing
(freezing it) is a third request, measured on its own (``publish=True``).

W3's pointer is a **stage**: ``POST .../promote`` evaluates the stage's gate
(the built-in policy; the models are ``low`` tier, so ``staging`` needs no
evidence), records the decision and moves the pointer with a compare-and-set,
each in the ledger; reading it back is ``GET /stages?model=``. Only published
versions can hold a stage, so the W3 model's versions are published first
(untimed).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

API = "/api/v1"
CHUNK = 4 * 1024 * 1024
STAGE = "staging"


def _ok(response: httpx.Response) -> Any:
    if response.status_code not in (200, 201):
        raise RuntimeError(
            f"Charter {response.request.method} {response.request.url.path}: "
            f"{response.status_code} {response.text[:300]}"
        )
    return response.json() if response.content else None


def digest_of(data: bytes) -> str:
    """The content digest Charter names a blob by."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def file_digest(path: Path) -> str:
    """sha256 of a file, streamed (what a client does before uploading it)."""
    hasher = hashlib.sha256()
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    with path.open("rb", buffering=0) as fh:
        while n := fh.readinto(buf):
            hasher.update(view[:n])
    return "sha256:" + hasher.hexdigest()


@dataclass
class CharterBackend:
    """One Charter server; picklable, so client processes can rebuild clients from it."""

    base_url: str
    token: str
    name: str = "Charter"
    publish: bool = False  # publish each version after registering it

    def client(self) -> httpx.Client:
        """A keep-alive client (one per client thread or process)."""
        headers = {"Authorization": f"Bearer {self.token}"}
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=120.0)

    def create_model(self, client: httpx.Client, model: str) -> None:
        """Create a (low risk tier) model."""
        _ok(client.post(f"{API}/models", json={"name": model, "risk_tier": "low"}))

    # -- W1 -----------------------------------------------------------------------------
    def register(self, client: httpx.Client, model: str, index: int, payload: bytes) -> str:
        """Upload the file, then register the draft (and publish it if ``publish``)."""
        digest = digest_of(payload)
        headers = {"Content-Type": "application/octet-stream"}
        _ok(client.put(f"{API}/blobs/{digest}", content=payload, headers=headers))
        version = self.version_id(index)
        body = {
            "version": version,
            "files": [{"path": "model.bin", "digest": digest, "size": len(payload)}],
        }
        _ok(client.post(f"{API}/models/{model}/versions", json=body))
        if self.publish:
            _ok(client.post(f"{API}/models/{model}/versions/{version}/publish"))
        return version

    def version_id(self, index: int) -> str:
        """The semantic version of the ``index``-th version of a model (from 0)."""
        return f"1.0.{index}"

    # -- W2 / lookup --------------------------------------------------------------------
    def search(self, client: httpx.Client, model: str) -> int:
        """The versions of ``model`` (one page of up to 1,000); return how many came back."""
        page = _ok(client.get(f"{API}/models/{model}/versions", params={"limit": 1000}))
        return len(page["items"])

    def lookup(self, client: httpx.Client, model: str, version: str) -> None:
        """Read one version."""
        _ok(client.get(f"{API}/models/{model}/versions/{version}"))

    # -- W3 -----------------------------------------------------------------------------
    def prepare_alias(self, client: httpx.Client, model: str, count: int) -> None:
        """Publish the model's first ``count`` versions (only those can hold a stage)."""
        for i in range(count):
            _ok(client.post(f"{API}/models/{model}/versions/{self.version_id(i)}/publish"))

    def set_alias(self, client: httpx.Client, model: str, alias: str, version: str) -> None:
        """Promote ``version`` to the stage (gate, decision, compare-and-set move)."""
        body = {"stage": STAGE}
        _ok(client.post(f"{API}/models/{model}/versions/{version}/promote", json=body))

    def get_alias(self, client: httpx.Client, model: str, alias: str) -> str:
        """The version holding the stage."""
        pointers = _ok(client.get(f"{API}/stages", params={"model": model}))
        return next(str(p["version"]) for p in pointers if p["stage"] == STAGE)

    # -- big artifact -------------------------------------------------------------------
    def prepare_upload(self, path: Path) -> str:
        """The file's digest, which names the upload (the client hashes first)."""
        return file_digest(path)

    def upload(self, client: httpx.Client, path: Path, digest: str) -> str:
        """PUT ``path`` as a blob (its digest computed beforehand); return the digest."""
        headers = {
            "Content-Type": "application/octet-stream",
            "Content-Length": str(path.stat().st_size),
        }
        _ok(client.put(f"{API}/blobs/{digest}", content=_chunks(path), headers=headers))
        return digest

    def download(self, client: httpx.Client, handle: str) -> int:
        """GET the blob, discarding the bytes; return how many came."""
        total = 0
        with client.stream("GET", f"{API}/blobs/{handle}") as response:
            if response.status_code != 200:
                raise RuntimeError(f"Charter download: {response.status_code}")
            for chunk in response.iter_raw(CHUNK):
                total += len(chunk)
        return total


def _chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb", buffering=0) as fh:
        while chunk := fh.read(CHUNK):
            yield chunk
