"""S3 for tests: moto's standalone server on loopback, started once per session.

Import the fixtures into a ``conftest.py`` (``from _s3 import s3_bucket, s3_env,
s3_server``). Tests that need S3 skip when ``moto``/``s3fs`` are not installed.

Credentials and endpoint reach s3fs/botocore the way they do in production: through
the standard ``AWS_*`` environment variables (set per test with ``monkeypatch``);
Charter's code never reads them itself.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

__all__ = ["S3_ENV", "s3_bucket", "s3_env", "s3_fs", "s3_server"]

#: Credentials moto accepts; the endpoint is added per session.
S3_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}
_UNSET = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3", "AWS_CA_BUNDLE")


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    """The endpoint URL of a moto S3 server on 127.0.0.1 (a free port)."""
    pytest.importorskip("s3fs")
    server_module = pytest.importorskip("moto.server")
    server = server_module.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3_env(s3_server: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, str]:
    """Point botocore at the moto server; no real AWS profile or config file is read."""
    env = {
        **S3_ENV,
        "AWS_ENDPOINT_URL": s3_server,
        "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
    }
    for name in _UNSET:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


def s3_fs() -> Any:
    """An s3fs filesystem that never answers from a cached listing."""
    import s3fs  # type: ignore[import-untyped]

    return s3fs.S3FileSystem(use_listings_cache=False)


@pytest.fixture
def s3_bucket(s3_env: dict[str, str]) -> str:
    """A fresh, empty bucket (names need 3+ characters)."""
    name = f"charter-{uuid.uuid4().hex[:12]}"
    s3_fs().call_s3("create_bucket", Bucket=name)
    return name
