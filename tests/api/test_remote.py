"""The SDK and the CLI against a real server: same types, the token's user, streaming files."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

import charter
from _api import Team, blob_count, make_team, serving, snapshot
from charter._client_http import Http
from charter.cli import main
from charter.client import RemoteRegistry
from charter.domain.entities import Version
from charter.domain.errors import HomeError, InvalidInputError, NotFoundError, UnauthorizedError
from charter.service import Registry
from charter.settings import Settings


@pytest.fixture
def server(settings: Settings, registry: Registry) -> Iterator[str]:
    """The base URL of a uvicorn server serving ``registry``."""
    with serving(settings, registry) as url:
        yield url


@pytest.fixture
def crew(registry: Registry) -> Team:
    """Users of every role with tokens."""
    return make_team(registry)


def test_open_registry_picks_the_server_for_a_url(server: str, crew: Team) -> None:
    with charter.open_registry(server, token=crew.tokens["contributor"]) as reg:
        assert isinstance(reg, RemoteRegistry)
        assert reg.user == "carol"
        made = reg.create_model(name="m", risk_tier="medium")
        assert made.created_by == "carol" and reg.get_model(name="m") == made
        with pytest.raises(InvalidInputError, match="token"):
            reg.as_user("alice")
    with pytest.raises(UnauthorizedError):
        charter.open_registry(server, token="chr_0123456789abcdef_" + "x" * 43).list_models()


def test_remote_and_local_return_equal_values(
    server: str, crew: Team, registry: Registry, artifact: Path, dataset: Path
) -> None:
    remote = RemoteRegistry(server, token=crew.tokens["admin"])
    remote.create_model(name="m")
    v = remote.register(
        model="m", path=artifact, version="1.0.0", datasets=[("train", str(dataset))],
        tags={"a": "1"}, params={"lr": "0.1"},
    )  # fmt: skip
    assert isinstance(v, Version)
    ref = {"model": "m", "version": "1.0.0"}
    assert v == registry.get_version(**ref) == remote.get_version(**ref)
    assert remote.files(**ref) == registry.files(**ref)
    assert remote.lineage(**ref) == registry.lineage(**ref)
    assert remote.profile(**ref) == registry.profile(**ref)
    assert remote.audit_log() == registry.audit_log()
    assert remote.proof(seq=1).to_dict() == registry.proof(seq=1).to_dict()
    assert remote.public_key_pem() == registry.public_key_pem()
    assert remote.verify().ok and remote.verify_version(model="m", version="1.0.0").ok
    remote.close()


def test_registration_uploads_only_missing_blobs(
    server: str, crew: Team, registry: Registry, artifact: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    uploads: list[str] = []
    real = Http.upload

    def counted(self: Http, record: object, source: Path, progress: object) -> None:
        uploads.append(str(source))
        real(self, record, source, progress)  # type: ignore[arg-type]

    monkeypatch.setattr(Http, "upload", counted)
    remote = RemoteRegistry(server, token=crew.tokens["contributor"])
    remote.create_model(name="m")
    seen: list[int] = []
    remote.register(model="m", path=artifact, version="1.0.0", progress=seen.append)
    assert len(uploads) == 3 and sum(seen) == sum(f.stat().st_size for f in artifact.rglob("*")
                                                 if f.is_file())  # fmt: skip
    remote.register(model="m", path=artifact, version="1.0.1", parent="1.0.0")
    assert len(uploads) == 3  # the server had every blob: nothing sent twice
    before = snapshot(registry)
    with pytest.raises(NotFoundError):
        remote.register(model="nope", path=artifact, version="1.0.0")
    (artifact / "new.bin").write_bytes(b"fresh bytes")
    with pytest.raises(InvalidInputError):
        remote.register(model="m", path=artifact, version="not-semver")
    assert snapshot(registry) == before and len(uploads) == 3  # refused before any upload
    out = remote.download(model="m", version="1.0.1", dest=artifact.parent / "out")
    assert sorted(p.name for p in out) == ["config.json", "vocab.txt", "weights.bin"]
    assert blob_count(registry) == 3
    remote.close()


def test_the_cli_works_unchanged_against_the_server(
    server: str,
    crew: Team,
    registry: Registry,
    artifact: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("CHARTER_URL", server)
    monkeypatch.setenv("CHARTER_TOKEN", crew.tokens["contributor"])
    monkeypatch.setenv("CHARTER_USER", "mallory")  # ignored remotely: the token decides
    monkeypatch.chdir(tmp_path)  # no local home here
    assert main(["model", "create", "credit", "--risk-tier", "high"]) == 0
    assert main(["register", "credit", str(artifact), "--version", "1.0.0"]) == 0
    capsys.readouterr()
    assert main(["list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert any(m.get("name") == "credit" or m.get("model") == "credit" for m in listed)
    assert registry.get_version(model="credit", version="1.0.0").created_by == "carol"
    assert registry.audit_log()[-1].actor == "carol"
    assert main(["publish", "credit@1.0.0"]) == 0
    capsys.readouterr()
    assert main(["user", "add", "eve", "--role", "admin"]) == 1  # carol is no admin
    assert "admin role" in capsys.readouterr().err
    assert main(["audit", "verify"]) == 0
    assert not (tmp_path / ".charter").exists()


def test_a_server_that_is_not_there_is_a_clear_error(tmp_path: Path) -> None:
    reg = RemoteRegistry("http://127.0.0.1:9", token=None)
    with pytest.raises(HomeError, match="cannot reach"):
        reg.list_models()
