"""Fixtures of the artifact tests: S3 (moto on loopback) next to local folders."""

from __future__ import annotations

from pathlib import Path

import pytest

from _s3 import s3_bucket, s3_env, s3_server
from charter.artifacts import ArtifactStore

__all__ = ["model", "s3_bucket", "s3_env", "s3_server", "store"]


@pytest.fixture(params=["file", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ArtifactStore:
    if request.param == "s3":
        return ArtifactStore(f"s3://{request.getfixturevalue('s3_bucket')}/store")
    return ArtifactStore(f"file://{tmp_path / 'store'}")


@pytest.fixture
def model(tmp_path: Path) -> Path:
    """A model folder: nested files, an empty file, and two identical files."""
    root = tmp_path / "model"
    (root / "weights" / "shards").mkdir(parents=True)
    (root / "config.json").write_text('{"layers": 2}')
    (root / "weights" / "a.bin").write_bytes(b"A" * 5000)
    (root / "weights" / "shards" / "0.bin").write_bytes(b"same")
    (root / "weights" / "shards" / "1.bin").write_bytes(b"same")
    (root / "EMPTY").touch()
    return root
