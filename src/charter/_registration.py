"""Registration shared by both roads in: a local folder, or blobs already uploaded.

:meth:`Registry.register` stores files from a local path; a server receives the
blobs first (``PUT /api/v1/blobs/{digest}``) and then registers a *manifest* of
them with :meth:`RegistrationUseCases.register_files`. Both validate the same
way, fingerprint the same way (the server reads the stored blobs itself, so a
client cannot claim another architecture than its files show) and commit
through :func:`commit_version`. Mixed into :class:`charter.service.Registry`.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

from charter._checks import check_declared_bump, check_tags, check_text
from charter._profiles import add_entries_in
from charter.artifacts import ArtifactStore, Manifest, ManifestEntry, validate_digest
from charter.artifacts.fingerprint import (
    ArchitectureFingerprint,
    architecture_fingerprint,
    config_fingerprint,
    data_fingerprint,
    is_config_file,
)
from charter.domain.entities import DatasetRef, FileRecord, LedgerRecord, Version, VersionState
from charter.domain.errors import AlreadyExistsError, InvalidInputError, NotFoundError
from charter.domain.profile import ProfileDocument
from charter.domain.versioning import ChangeKind, Fingerprints, parse_version, validate_name
from charter.journal import now
from charter.store import Store, WriteTx

__all__ = [
    "RegistrationRequest",
    "RegistrationUseCases",
    "check_request",
    "commit_version",
    "refuse_taken",
    "unknown_parent",
]

_MAX_FILES = 100_000


class _Host(Protocol):
    store: Store
    artifacts: ArtifactStore

    @property
    def user(self) -> str: ...

    def get_version(self, *, model: str, version: str) -> Version: ...

    def _check_new_version(self, *, model: str, version: str, parent: str | None) -> None: ...

    def redteam(self, *, model: str, version: str) -> dict[str, Any]: ...

    def _record(
        self, tx: WriteTx, type_: str, subject: str, data: dict[str, Any], *, at: str | None = None
    ) -> LedgerRecord: ...


@dataclass(frozen=True)
class RegistrationRequest:
    """What a registration asks for, checked before any byte is stored."""

    model: str
    version: str
    parent: str | None
    declared: ChangeKind | None
    params: dict[str, str]
    tags: dict[str, str | None]
    run_id: str | None
    commit: str | None
    force: bool
    reason: str | None
    profile: ProfileDocument | None


def check_request(
    *,
    model: str,
    version: str,
    parent: str | None = None,
    change: str | None = None,
    params: Mapping[str, str] | None = None,
    run_id: str | None = None,
    commit: str | None = None,
    tags: Mapping[str, str | None] | None = None,
    force: bool = False,
    reason: str | None = None,
    profile: ProfileDocument | None = None,
) -> RegistrationRequest:
    """Validate a registration's own fields (names, numbers, params, tags, profile).

    Raises:
        InvalidInputError: naming the field.
    """
    validate_name(model, field="model")
    parse_version(version)
    if parent is not None:
        parse_version(parent)
    declared = ChangeKind.parse(change) if change else None
    checked = {
        str(k): check_text(str(v), field=f"param {k}", limit=1000)
        for k, v in (params or {}).items()
    }
    # The store's column widths: both backends must refuse alike (PostgreSQL would
    # raise a storage error where SQLite silently stored the longer value).
    for value, field, limit in ((run_id, "run_id", 200), (commit, "commit", 80)):
        if value is not None:
            check_text(value, field=field, limit=limit)
    if profile is not None and (profile.retracts or profile.evidence):
        raise InvalidInputError(
            "retracts and evidence belong to amendments of published versions", field="profile"
        )
    if force and not (reason and reason.strip()):
        raise InvalidInputError(
            "--force needs --reason saying why the bump is overridden", field="reason"
        )
    return RegistrationRequest(
        model=model, version=version, parent=parent, declared=declared, params=checked,
        tags=check_tags(tags or {}), run_id=run_id, commit=commit, force=force, reason=reason,
        profile=profile,
    )  # fmt: skip


def commit_version(
    host: _Host,
    request: RegistrationRequest,
    *,
    datasets: tuple[DatasetRef, ...],
    manifest: Manifest,
    arch: ArchitectureFingerprint,
    evaluate: bool,
    store_files: Callable[[], None] | None = None,
) -> Version:
    """Fingerprint, check the bump and commit a draft.

    Everything is checked under the writer lock: the model, the number, the
    parent and the bump. ``store_files`` stores the files of a staged source
    (see :func:`charter.artifacts.stage`) once every check has passed, before
    the commit: a refused registration stores nothing, and a committed one
    never names a blob that is not stored. Without it, the files must be stored
    already.

    Raises:
        BumpRefusedError, InvalidInputError, NotFoundError, AlreadyExistsError,
        StorageError.
    """
    r = request
    fingerprints = Fingerprints(
        architecture=arch.digest,
        data=data_fingerprint([(d.name, d.role, d.digest or d.uri) for d in datasets]),
        config=config_fingerprint(
            r.params, [(e.path, e.digest) for e in manifest.entries if is_config_file(e.path)]
        ),
    )
    files = [FileRecord(e.path, e.digest, e.size) for e in manifest.entries]
    with host.store.write() as tx:
        # Stamped under the writer lock, so ledger order is time order; its events
        # carry the same time.
        at = now()
        known, taken = tx.ids(r.model, r.version)
        model_id = refuse_taken(r.model, r.version, model_id=known, version_id=taken)
        declared, override, parent_id = r.declared, None, None
        if r.parent is not None:
            found = tx.version_with_id(r.model, r.parent)
            if found is None:
                raise unknown_parent(r.model, r.parent)
            parent_id, parent = found
            declared, override = check_declared_bump(
                parent=parent, number=parse_version(r.version), declared=declared,
                fingerprints=fingerprints, force=r.force, reason=r.reason,
            )  # fmt: skip
        if store_files is not None:
            store_files()
        entity = Version(
            model=r.model, version=r.version, state=VersionState.DRAFT, parent=r.parent,
            change_kind=declared.value if declared else None,
            fp_architecture=fingerprints.architecture, fp_data=fingerprints.data,
            fp_config=fingerprints.config, architecture_method=arch.method,
            manifest_digest=manifest.digest, file_count=len(manifest.entries),
            total_size=manifest.total_size, run_id=r.run_id, commit=r.commit, params=r.params,
            datasets=datasets, created_by=host.user, created_at=at,
        )  # fmt: skip
        subject = f"version:{entity.ref}"
        vid = tx.insert_version(entity, model_id=model_id, parent_id=parent_id, files=files)
        host._record(tx, "version.registered", subject, {"record": entity.record()}, at=at)
        if override is not None:
            host._record(tx, "bump.overridden", subject, override, at=at)
        if r.tags:
            tx.set_tags(vid, r.tags)
            host._record(tx, "tag.set", subject, {"changes": r.tags, "tags": r.tags}, at=at)
        if r.profile is not None and r.profile.entries():
            add_entries_in(host, tx, vid=vid, ref=entity.ref, document=r.profile, at=at)
        red_team = tx.model_target(model_id) if evaluate else None
    if red_team and red_team.get("auto"):
        # The version is registered and consistent either way; a campaign that
        # fails leaves a draft without red-team results, to re-run.
        host.redteam(model=r.model, version=r.version)
    return replace(entity, tags={k: v for k, v in r.tags.items() if v is not None})


def refuse_taken(model: str, version: str, *, model_id: int | None, version_id: int | None) -> int:
    """Refuse a registration into a missing model, or of a number already taken.

    Returns:
        ``model_id``, now known to exist.

    Raises:
        NotFoundError: no model ``model``. AlreadyExistsError: ``version`` exists.
    """
    if model_id is None:
        raise NotFoundError(
            f"unknown model {model!r}: create it with `charter model create {model}`", model=model
        )
    if version_id is not None:
        raise AlreadyExistsError(
            f"version {model}@{version} already exists: versions are unique within a model",
            model=model,
            version=version,
        )
    return model_id


def unknown_parent(model: str, parent: str) -> NotFoundError:
    """The error for a parent version that does not exist."""
    return NotFoundError(f"unknown parent version {model}@{parent}", model=model, version=parent)


def _check_dataset(ref: DatasetRef) -> DatasetRef:
    role = ref.role
    if not role or not role.replace("-", "").replace("_", "").isalnum() or len(role) > 32:
        raise InvalidInputError(
            f"invalid dataset role {role!r}: use a word such as train, eval or test",
            field="dataset",
        )
    check_text(ref.name, field="dataset name", limit=200)
    check_text(ref.uri, field="dataset uri", limit=2000)
    if ref.digest is not None:
        validate_digest(ref.digest)
    if ref.size is not None and (isinstance(ref.size, bool) or ref.size < 0):
        raise InvalidInputError("a dataset size is an integer >= 0", field="dataset")
    return ref


@contextmanager
def _blob_paths(store: ArtifactStore, manifest: Manifest) -> Iterator[list[tuple[str, Path]]]:
    """``(relpath, local path)`` of every file, for the fingerprint readers.

    A local store's blobs are files already (read in place); others are copied to
    a temporary folder first, verified on the way.
    """
    if store._local:
        yield [(e.path, Path(store._blob_key(e.digest))) for e in manifest.entries]
        return
    with tempfile.TemporaryDirectory(prefix="charter-fp-") as tmp:
        pairs = []
        for i, e in enumerate(manifest.entries):
            local = Path(tmp) / str(i)
            store.get_file(e.digest, local, expected_size=e.size)
            pairs.append((e.path, local))
        yield pairs


class RegistrationUseCases:
    """Registering a version from blobs already in the artifact store."""

    def register_files(
        self: _Host,
        *,
        model: str,
        version: str,
        files: Sequence[FileRecord],
        parent: str | None = None,
        change: str | None = None,
        datasets: Sequence[DatasetRef] = (),
        params: Mapping[str, str] | None = None,
        run_id: str | None = None,
        commit: str | None = None,
        tags: Mapping[str, str] | None = None,
        architecture: str | None = None,
        force: bool = False,
        reason: str | None = None,
        profile: ProfileDocument | None = None,
        evaluate: bool = True,
    ) -> Version:
        """Register a draft whose files are uploaded blobs: ``files`` is its manifest.

        Same checks, fingerprints and ledger entries as :meth:`Registry.register`;
        datasets come already digested (by the client that has them).

        Raises:
            NotFoundError: with ``details["missing_blobs"]`` when blobs of the manifest
                are not stored yet (upload them, then call again), or as ``register``.
            InvalidInputError: a bad path (traversal…), digest, size or field.
            AlreadyExistsError, BumpRefusedError: as :meth:`Registry.register`.
        """
        request = check_request(
            model=model, version=version, parent=parent, change=change, params=params,
            run_id=run_id, commit=commit, tags=tags, force=force, reason=reason, profile=profile,
        )  # fmt: skip
        if not files or len(files) > _MAX_FILES:
            raise InvalidInputError(f"a version has 1 to {_MAX_FILES} files", field="files")
        manifest = Manifest(tuple(ManifestEntry(f.path, f.digest, f.size) for f in files))
        refs = tuple(_check_dataset(d) for d in datasets)
        if architecture is not None and not architecture.strip():
            raise InvalidInputError("declared architecture must not be empty", field="architecture")
        self._check_new_version(model=model, version=version, parent=parent)
        missing = _missing(self.artifacts, manifest)
        if missing:
            raise NotFoundError(
                f"{len(missing)} blob(s) of the manifest are not stored: upload them first",
                missing_blobs=missing,
            )
        if architecture is not None:
            arch = architecture_fingerprint([], declared=architecture)
        else:
            with _blob_paths(self.artifacts, manifest) as pairs:
                arch = architecture_fingerprint(pairs)
        return commit_version(
            self, request, datasets=refs, manifest=manifest, arch=arch, evaluate=evaluate
        )


def _missing(store: ArtifactStore, manifest: Manifest) -> list[str]:
    missing: dict[str, None] = {}
    for e in manifest.entries:
        try:
            size = store.size(e.digest)
        except NotFoundError:
            missing[e.digest] = None
            continue
        if size != e.size:
            raise InvalidInputError(
                f"{e.path}: the stored blob {e.digest} has {size} bytes, not {e.size}",
                field="files",
            )
    return list(missing)
