"""End to end: a registry whose artifacts live on S3 (moto), verified and tampered with."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from _s3 import s3_fs
from charter.cli import main
from charter.domain.errors import IntegrityError
from charter.sdk import init_registry
from charter.service import Registry
from charter.settings import Settings


@pytest.fixture
def s3_settings(settings: Settings, s3_bucket: str) -> Settings:
    return settings.model_copy(update={"artifacts_url": f"s3://{s3_bucket}/artifacts"})


@pytest.fixture
def s3_registry(s3_settings: Settings) -> Iterator[Registry]:
    registry = init_registry(settings=s3_settings)
    yield registry
    registry.close()


def test_register_publish_download_and_verify_on_s3(
    s3_registry: Registry,
    s3_settings: Settings,
    s3_bucket: str,
    artifact: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    s3_registry.create_model(name="credit-risk")
    s3_registry.register(model="credit-risk", path=artifact, version="1.0.0")
    s3_registry.publish(model="credit-risk", version="1.0.0")
    files = s3_registry.files(model="credit-risk", version="1.0.0")
    fs = s3_fs()
    stored = fs.find(f"{s3_bucket}/artifacts")
    assert {f.digest[7:9] + "/" + f.digest[9:] for f in files} <= {k[-65:] for k in stored}
    assert not (s3_settings.home / "artifacts").exists()  # nothing went to the home

    out = tmp_path / "download"
    written = s3_registry.download(model="credit-risk", version="1.0.0", dest=out)
    for path in written:
        assert path.read_bytes() == (artifact / path.relative_to(out)).read_bytes()
    report = s3_registry.verify(artifacts=True)
    assert report.ok and report.blobs == len({f.digest for f in files})

    # The CLI, configured the documented way (CHARTER_ARTIFACTS_URL), agrees.
    monkeypatch.setenv("CHARTER_ARTIFACTS_URL", str(s3_settings.artifacts_url))
    cli = ["--home", str(s3_settings.home), "audit", "verify", "--artifacts"]
    assert main(cli) == 0

    # Tamper with one object behind Charter's back: verify and download both see it.
    weights = next(f for f in files if f.path == "weights.bin")
    key = f"{s3_bucket}/artifacts/sha256/{weights.digest[7:9]}/{weights.digest[9:]}"
    fs.pipe_file(key, b"\x00\x01weightz" * 100)
    report = s3_registry.verify(artifacts=True)
    assert not report.ok
    assert [(p.kind, p.where) for p in report.problems] == [
        ("artifact", "credit-risk@1.0.0:weights.bin")
    ]
    with pytest.raises(IntegrityError):
        s3_registry.download(model="credit-risk", version="1.0.0", dest=tmp_path / "again")
    assert not (tmp_path / "again" / "weights.bin").exists()
    capsys.readouterr()
    assert main(cli) == 1
    assert "weights.bin" in capsys.readouterr().out
