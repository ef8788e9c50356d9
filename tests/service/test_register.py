"""Registering, publishing and reading versions through the service."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from charter.artifacts.ingestion import STAGED_MAX_BYTES
from charter.domain.entities import VersionState
from charter.domain.errors import (
    AlreadyExistsError,
    BumpRefusedError,
    ImmutableError,
    InvalidInputError,
    NotFoundError,
)
from charter.service import Registry


def _count_blobs(registry: Registry) -> int:
    return len(list(registry.artifacts.iter_digests()))


def test_register_folder_records_manifest_and_fingerprints(
    registry: Registry, artifact: Path, dataset: Path
) -> None:
    registry.create_model(name="m", risk_tier="high", owner="team", description="d")
    v = registry.register(
        model="m",
        path=artifact,
        version="1.0.0",
        datasets=[("train", str(dataset))],
        params={"lr": "0.1"},
        run_id="run-1",
        commit="abc123",
        tags={"stage": "dev"},
    )
    assert v.state is VersionState.DRAFT
    assert v.file_count == 3
    assert v.created_by == "alice"
    assert v.tags == {"stage": "dev"}
    assert v.datasets[0].digest and v.datasets[0].digest.startswith("sha256:")
    files = registry.files(model="m", version="1.0.0")
    assert [f.path for f in files] == ["config.json", "sub/vocab.txt", "weights.bin"]
    assert registry.get_version(model="m", version="1.0.0") == v
    assert registry.verify().ok


def test_register_single_file(registry: Registry, tmp_path: Path) -> None:
    registry.create_model(name="m")
    weights = tmp_path / "w.bin"
    weights.write_bytes(b"abc")
    v = registry.register(model="m", path=weights, version="0.1.0")
    assert [f.path for f in registry.files(model="m", version="0.1.0")] == ["w.bin"]
    assert v.total_size == 3


def test_identical_files_are_stored_once(registry: Registry, artifact: Path) -> None:
    registry.create_model(name="m")
    registry.register(model="m", path=artifact, version="1.0.0")
    blobs = _count_blobs(registry)
    registry.register(model="m", path=artifact, version="1.0.1", parent="1.0.0")
    assert _count_blobs(registry) == blobs


def test_publish_freezes_and_cannot_repeat(registry: Registry, artifact: Path) -> None:
    registry.create_model(name="m")
    registry.register(model="m", path=artifact, version="1.0.0")
    published = registry.publish(model="m", version="1.0.0")
    assert published.state is VersionState.PUBLISHED
    assert published.published_by == "alice"
    with pytest.raises(ImmutableError):
        registry.publish(model="m", version="1.0.0")
    with pytest.raises(ImmutableError):
        registry.delete_draft(model="m", version="1.0.0")


def test_tags_stay_mutable_after_publish(registry: Registry, artifact: Path) -> None:
    registry.create_model(name="m")
    registry.register(model="m", path=artifact, version="1.0.0", tags={"a": "1"})
    registry.publish(model="m", version="1.0.0")
    v = registry.set_tags(model="m", version="1.0.0", tags={"b": "2", "a": None})
    assert v.tags == {"b": "2"}
    assert registry.get_version(model="m", version="1.0.0").tags == {"b": "2"}
    assert [r.type for r in registry.audit_log()][-1] == "tag.set"
    assert registry.verify().ok


def test_delete_draft_removes_it_and_is_recorded(registry: Registry, artifact: Path) -> None:
    registry.create_model(name="m")
    registry.register(model="m", path=artifact, version="1.0.0")
    registry.delete_draft(model="m", version="1.0.0")
    with pytest.raises(NotFoundError):
        registry.get_version(model="m", version="1.0.0")
    assert registry.audit_log()[-1].type == "version.deleted"
    assert registry.verify().ok


def test_data_change_needs_a_minor_bump(registry: Registry, artifact: Path, tmp_path: Path) -> None:
    registry.create_model(name="m")
    d1, d2 = tmp_path / "d1.csv", tmp_path / "d2.csv"
    d1.write_text("1\n")
    d2.write_text("1\n2\n")
    registry.register(model="m", path=artifact, version="1.0.0", datasets=[("train", str(d1))])
    with pytest.raises(BumpRefusedError) as err:
        registry.register(
            model="m", path=artifact, version="1.0.1", parent="1.0.0", datasets=[("train", str(d2))]
        )
    assert "data fingerprint changed" in err.value.message
    assert "at least minor" in err.value.message
    assert registry.list_versions(model="m")[-1].version == "1.0.0"
    v = registry.register(
        model="m", path=artifact, version="1.1.0", parent="1.0.0", datasets=[("train", str(d2))]
    )
    assert v.change_kind == "minor"


def test_architecture_change_needs_major_and_force_is_recorded(
    registry: Registry, artifact: Path
) -> None:
    registry.create_model(name="m")
    registry.register(model="m", path=artifact, version="1.0.0", architecture="cnn")
    with pytest.raises(BumpRefusedError) as err:
        registry.register(
            model="m", path=artifact, version="1.1.0", parent="1.0.0", architecture="transformer"
        )
    assert "architecture" in err.value.message and "major" in err.value.message
    with pytest.raises(InvalidInputError):  # --force needs a reason
        registry.register(
            model="m",
            path=artifact,
            version="1.1.0",
            parent="1.0.0",
            architecture="transformer",
            force=True,
        )
    registry.register(
        model="m",
        path=artifact,
        version="1.1.0",
        parent="1.0.0",
        architecture="transformer",
        force=True,
        reason="same weights, renamed head",
    )
    override = registry.audit_log()[-1]
    assert override.type == "bump.overridden"
    assert b"same weights, renamed head" in override.body
    assert registry.verify().ok


def test_declared_change_must_match_the_number(registry: Registry, artifact: Path) -> None:
    registry.create_model(name="m")
    registry.register(model="m", path=artifact, version="1.0.0")
    with pytest.raises(InvalidInputError) as err:
        registry.register(model="m", path=artifact, version="2.0.0", parent="1.0.0", change="minor")
    assert "major bump" in err.value.message


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"model": "nope", "version": "1.0.0"}, NotFoundError),
        ({"model": "m", "version": "1.0"}, InvalidInputError),
        ({"model": "m", "version": "1.0.0"}, AlreadyExistsError),
        ({"model": "m", "version": "0.9.0", "parent": "1.0.0"}, InvalidInputError),
        ({"model": "m", "version": "1.0.1", "parent": "0.5.0"}, NotFoundError),
        (
            {"model": "m", "version": "1.0.1", "change": "tiny", "parent": "1.0.0"},
            InvalidInputError,
        ),
        (
            {"model": "m", "version": "1.0.1", "datasets": [("train", "/no/such/file")]},
            NotFoundError,
        ),
        ({"model": "m", "version": "1.0.1", "tags": {"bad key!": "x"}}, InvalidInputError),
        ({"model": "m", "version": "1.0.1", "commit": "f" * 81}, InvalidInputError),
        ({"model": "m", "version": "1.0.1", "run_id": "r" * 201}, InvalidInputError),
    ],
)
def test_bad_input_changes_nothing(
    registry: Registry, artifact: Path, kwargs: dict[str, object], error: type[Exception]
) -> None:
    registry.create_model(name="m")
    registry.register(model="m", path=artifact, version="1.0.0")
    before = (len(registry.audit_log()), _count_blobs(registry))
    with pytest.raises(error):
        registry.register(path=artifact, **kwargs)  # type: ignore[arg-type]
    assert (len(registry.audit_log()), _count_blobs(registry)) == before
    assert [v.version for v in registry.list_versions(model="m")] == ["1.0.0"]


def _new_weights(tmp_path: Path, size: int) -> Path:
    """A folder holding bytes no version has stored yet."""
    folder = tmp_path / f"new-{size}"
    folder.mkdir()
    (folder / "weights.bin").write_bytes(os.urandom(size))
    return folder


_REFUSALS = {
    "unknown-model": ({"model": "nope", "version": "1.0.1"}, NotFoundError),
    "duplicate": ({"model": "m", "version": "1.0.0"}, AlreadyExistsError),
    "unknown-parent": ({"model": "m", "version": "1.0.1", "parent": "0.9.0"}, NotFoundError),
    "bump-refused": (
        {"model": "m", "version": "1.0.1", "parent": "1.0.0", "architecture": "rnn"},
        BumpRefusedError,
    ),
}
_SMALL, _LARGE = 300, STAGED_MAX_BYTES + 1


@pytest.mark.local_only("counts blobs in registry.artifacts")
@pytest.mark.parametrize(
    ("case", "size"),
    # A large source is hashed while it is stored, so a bump refused on its
    # fingerprints comes after its bytes were stored (unreferenced: `gc --blobs`).
    [(case, _SMALL) for case in _REFUSALS]
    + [(case, _LARGE) for case in _REFUSALS if case != "bump-refused"],
)
def test_a_refused_registration_stores_no_new_bytes(
    registry: Registry,
    artifact: Path,
    tmp_path: Path,
    case: str,
    size: int,
) -> None:
    # Small sources are checked and stored under one writer lock, larger ones are
    # checked before their bytes are streamed: either way a refusal stores nothing.
    registry.create_model(name="m")
    registry.register(model="m", path=artifact, version="1.0.0", architecture="cnn")
    kwargs, error = _REFUSALS[case]
    before = (len(registry.audit_log()), _count_blobs(registry))
    with pytest.raises(error):
        registry.register(path=_new_weights(tmp_path, size), **kwargs)  # type: ignore[arg-type]
    assert (len(registry.audit_log()), _count_blobs(registry)) == before
    assert registry.verify(artifacts=True).ok


@pytest.mark.local_only("counts blobs in registry.artifacts")
@pytest.mark.parametrize("size", [_SMALL, _LARGE], ids=["staged", "streamed"])
def test_an_accepted_registration_stores_its_bytes_before_it_commits(
    registry: Registry, tmp_path: Path, size: int
) -> None:
    registry.create_model(name="m")
    source = _new_weights(tmp_path, size)
    v = registry.register(model="m", path=source, version="1.0.0")
    [entry] = registry.files(model="m", version="1.0.0")
    assert (entry.size, v.total_size, _count_blobs(registry)) == (size, size, 1)
    out = tmp_path / "out"
    registry.download(model="m", version="1.0.0", dest=out)
    assert (out / "weights.bin").read_bytes() == (source / "weights.bin").read_bytes()
    assert registry.verify(artifacts=True).ok


def test_missing_artifact_path_is_not_found(registry: Registry, tmp_path: Path) -> None:
    registry.create_model(name="m")
    with pytest.raises(NotFoundError):
        registry.register(model="m", path=tmp_path / "missing", version="1.0.0")


def test_duplicate_model_is_refused(registry: Registry) -> None:
    registry.create_model(name="m")
    with pytest.raises(AlreadyExistsError):
        registry.create_model(name="m")
    with pytest.raises(InvalidInputError):
        registry.create_model(name="n", risk_tier="extreme")


def test_versions_sort_semantically(registry: Registry, artifact: Path) -> None:
    registry.create_model(name="m")
    for v in ("1.10.0", "1.2.0", "1.2.0-rc.1", "0.9.0"):
        registry.register(model="m", path=artifact, version=v)
    assert [v.version for v in registry.list_versions(model="m")] == [
        "0.9.0",
        "1.2.0-rc.1",
        "1.2.0",
        "1.10.0",
    ]


def test_download_writes_verified_files(registry: Registry, artifact: Path, tmp_path: Path) -> None:
    registry.create_model(name="m")
    registry.register(model="m", path=artifact, version="1.0.0")
    out = tmp_path / "out"
    registry.download(model="m", version="1.0.0", dest=out)
    assert (out / "weights.bin").read_bytes() == (artifact / "weights.bin").read_bytes()
    assert (out / "sub" / "vocab.txt").read_text() == "a\nb\n"
