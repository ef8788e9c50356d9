"""MLflow's REST API as a ``compare_mlflow.py`` backend (plain httpx, no MLflow import).

A "version with one small file" on MLflow is what its own client does for
``log_model`` + ``register_model``, minus the run per version: the file is PUT
through the server's proxied artifact endpoint into the artifact folder of one
run made at setup (MLflow refuses a ``mlflow-artifacts:`` source without the
run it belongs to), then ``model-versions/create`` names that folder as source.
Two requests per version.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

API = "/api/2.0/mlflow"
ARTIFACTS = "/api/2.0/mlflow-artifacts/artifacts"
CHUNK = 4 * 1024 * 1024


def _ok(response: httpx.Response) -> dict[str, Any]:
    if response.status_code != 200:
        raise RuntimeError(
            f"MLflow {response.request.method} {response.request.url.path}: "
            f"{response.status_code} {response.text[:300]}"
        )
    data: dict[str, Any] = response.json() if response.content else {}
    return data


@dataclass
class MlflowBackend:
    """One MLflow server; picklable, so client processes can rebuild clients from it."""

    base_url: str
    run_id: str = ""
    artifact_path: str = ""  # the run's artifact root, without the mlflow-artifacts:/ scheme
    name: str = "MLflow"

    def client(self) -> httpx.Client:
        """A keep-alive client (one per client thread or process)."""
        return httpx.Client(base_url=self.base_url, timeout=120.0)

    # -- setup --------------------------------------------------------------------------
    def prepare(self, client: httpx.Client) -> None:
        """Make the run whose artifact folder holds every version's file."""
        run = _ok(client.post(f"{API}/runs/create", json={"experiment_id": "0"}))["run"]["info"]
        self.run_id = run["run_id"]
        self.artifact_path = run["artifact_uri"].removeprefix("mlflow-artifacts:/")

    def create_model(self, client: httpx.Client, model: str) -> None:
        """Create a registered model."""
        _ok(client.post(f"{API}/registered-models/create", json={"name": model}))

    # -- W1 -----------------------------------------------------------------------------
    def register(self, client: httpx.Client, model: str, index: int, payload: bytes) -> str:
        """Upload the version's file, then create the version; return its version id."""
        folder = f"{self.artifact_path}/{model}/{index}"
        _ok(client.put(f"{ARTIFACTS}/{folder}/model.bin", content=payload))
        body = {
            "name": model,
            "source": f"mlflow-artifacts:/{folder}",
            "run_id": self.run_id,
        }
        made = _ok(client.post(f"{API}/model-versions/create", json=body))
        return str(made["model_version"]["version"])

    def version_id(self, index: int) -> str:
        """The id of the ``index``-th version registered into a model (from 0)."""
        return str(index + 1)

    # -- W2 / lookup --------------------------------------------------------------------
    def search(self, client: httpx.Client, model: str) -> int:
        """Search the versions of ``model``; return how many came back."""
        params = {"filter": f"name='{model}'", "max_results": 1000}
        return len(_ok(client.get(f"{API}/model-versions/search", params=params))["model_versions"])

    def lookup(self, client: httpx.Client, model: str, version: str) -> None:
        """Read one version."""
        _ok(client.get(f"{API}/model-versions/get", params={"name": model, "version": version}))

    # -- W3 -----------------------------------------------------------------------------
    def set_alias(self, client: httpx.Client, model: str, alias: str, version: str) -> None:
        """Point ``alias`` of ``model`` at ``version``."""
        body = {"name": model, "alias": alias, "version": version}
        _ok(client.post(f"{API}/registered-models/alias", json=body))

    def get_alias(self, client: httpx.Client, model: str, alias: str) -> str:
        """The version ``alias`` points at."""
        params = {"name": model, "alias": alias}
        got = _ok(client.get(f"{API}/registered-models/alias", params=params))
        return str(got["model_version"]["version"])

    def prepare_alias(self, client: httpx.Client, model: str, count: int) -> None:
        """Nothing to do: any version can carry an alias."""

    # -- big artifact -------------------------------------------------------------------
    def prepare_upload(self, path: Path) -> str:
        """Nothing to compute before an upload."""
        return ""

    def upload(self, client: httpx.Client, path: Path, digest: str) -> str:
        """PUT ``path`` through the artifact proxy; return the handle to download it."""
        key = f"{self.artifact_path}/big/{path.name}"
        headers = {"Content-Length": str(path.stat().st_size)}
        _ok(client.put(f"{ARTIFACTS}/{key}", content=_chunks(path), headers=headers))
        return key

    def download(self, client: httpx.Client, handle: str) -> int:
        """GET the artifact, discarding the bytes; return how many came."""
        total = 0
        with client.stream("GET", f"{ARTIFACTS}/{handle}") as response:
            if response.status_code != 200:
                raise RuntimeError(f"MLflow download: {response.status_code}")
            for chunk in response.iter_raw(CHUNK):
                total += len(chunk)
        return total


def _chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb", buffering=0) as fh:
        while chunk := fh.read(CHUNK):
            yield chunk
