"""The registry service: one method per use case, keyword-only arguments.

Surfaces (CLI, API, web) parse input, call a ``Registry`` method and render the
result; they hold no logic of their own. Each mutating method validates
everything it can before writing, then commits the state change and its ledger
entry in one transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import semver

from charter.artifacts import ArtifactStore, HashCache, ingest, scan_source
from charter.artifacts.fingerprint import (
    architecture_fingerprint,
    config_fingerprint,
    data_fingerprint,
    dataset_digest,
    is_config_file,
)
from charter.audit import VerifyReport, verify_artifacts, verify_registry
from charter.domain.entities import (
    DatasetRef,
    Event,
    FileRecord,
    LedgerRecord,
    Model,
    RiskTier,
    Version,
    VersionState,
)
from charter.domain.errors import (
    AlreadyExistsError,
    BumpRefusedError,
    ImmutableError,
    InvalidInputError,
    NotFoundError,
)
from charter.domain.lineage import Lineage, VersionDiff, diff_versions
from charter.domain.versioning import (
    ChangeKind,
    Fingerprints,
    actual_bump,
    check_bump,
    parse_version,
    validate_name,
)
from charter.home import load_signing_key, open_store
from charter.journal import (
    InclusionProof,
    append_event,
    checkpoint_from_row,
    inclusion_proof,
    now,
    sign_new_checkpoint,
)
from charter.ledger import Checkpoint, public_key_to_pem
from charter.settings import Settings
from charter.store import WriteTx

__all__ = ["Registry", "parse_ref"]

Progress = Callable[[int], None]

_MAX_TAG_KEY = 128
_MAX_TEXT = 10_000


def parse_ref(ref: str) -> tuple[str, str | None]:
    """Split ``NAME[@VERSION]`` into its parts (validating the name).

    Raises:
        InvalidInputError: when the reference is malformed.
    """
    name, sep, version = ref.partition("@")
    validate_name(name, field="model")
    if sep and not version:
        raise InvalidInputError(f"invalid reference {ref!r}: use NAME@VERSION", value=ref)
    if version:
        parse_version(version)
    return name, (version or None)


def _check_text(value: str, *, field: str, limit: int = _MAX_TEXT) -> str:
    if len(value) > limit or "\x00" in value:
        raise InvalidInputError(
            f"{field} must be at most {limit} characters without NUL bytes", field=field
        )
    return value


def _check_tags(tags: Mapping[str, str | None]) -> dict[str, str | None]:
    for key, value in tags.items():
        if (
            not key
            or len(key) > _MAX_TAG_KEY
            or not key.replace("-", "").replace("_", "").replace(".", "").isalnum()
        ):
            raise InvalidInputError(
                f"invalid tag key {key!r}: use 1-{_MAX_TAG_KEY} letters, digits, '-', '_' or '.'",
                field="tag",
                value=key,
            )
        if value is not None:
            _check_text(value, field=f"tag {key}", limit=1000)
    return dict(tags)


class Registry:
    """A registry home (or database + artifact store), used in-process.

    Obtain one with :func:`charter.open_registry`.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.store = open_store(settings)
        self.artifacts = ArtifactStore(settings.resolved_artifacts_url)
        self._key = load_signing_key(settings)
        self._cache = HashCache(settings.hash_cache_path)

    def close(self) -> None:
        """Release database connections."""
        self.store.close()

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def user(self) -> str:
        """The acting user recorded on every change."""
        return self.settings.user

    def _record(self, tx: WriteTx, type_: str, subject: str, data: dict[str, Any]) -> LedgerRecord:
        event = Event(type=type_, subject=subject, actor=self.user, time=now(), data=data)
        return append_event(
            tx, event, key=self._key, checkpoint_every=self.settings.checkpoint_every
        )

    # -- models -------------------------------------------------------------
    def create_model(
        self, *, name: str, risk_tier: str = "low", owner: str | None = None, description: str = ""
    ) -> Model:
        """Create a model line.

        Raises:
            InvalidInputError: bad name, risk tier, owner or description.
            AlreadyExistsError: a model of that name exists.
        """
        model = Model(
            name=validate_name(name, field="model"),
            description=_check_text(description, field="description"),
            owner=_check_text(owner or self.user, field="owner", limit=200),
            risk_tier=RiskTier.parse(risk_tier),
            created_by=self.user,
            created_at=now(),
        )
        with self.store.write() as tx:
            if tx.model_id(name) is not None:
                raise AlreadyExistsError(f"model {name!r} already exists", model=name)
            tx.insert_model(model)
            self._record(tx, "model.created", f"model:{name}", {"model": model.state()})
        return model

    def get_model(self, *, name: str) -> Model:
        """Return a model.

        Raises:
            NotFoundError: no such model.
        """
        with self.store.read() as tx:
            model = tx.get_model(name)
        if model is None:
            raise NotFoundError(f"unknown model {name!r}: see `charter list`", model=name)
        return model

    def list_models(self) -> list[Model]:
        """Return every model, by name."""
        with self.store.read() as tx:
            return tx.list_models()

    # -- versions -----------------------------------------------------------
    def get_version(self, *, model: str, version: str) -> Version:
        """Return ``model@version``.

        Raises:
            NotFoundError: no such model or version.
        """
        with self.store.read() as tx:
            found = tx.get_version(model, version)
            if found is None:
                if tx.model_id(model) is None:
                    raise NotFoundError(f"unknown model {model!r}: see `charter list`", model=model)
                raise NotFoundError(
                    f"unknown version {model}@{version}: see `charter versions {model}`",
                    model=model,
                    version=version,
                )
        return found

    def list_versions(self, *, model: str) -> list[Version]:
        """Return the versions of ``model`` in semantic-version order."""
        self.get_model(name=model)
        with self.store.read() as tx:
            found = tx.list_versions(model)
        return sorted(found, key=lambda v: semver.Version.parse(v.version))

    def files(self, *, model: str, version: str) -> list[FileRecord]:
        """Return the manifest of ``model@version``."""
        with self.store.read() as tx:
            vid = tx.version_id(model, version)
            if vid is None:
                self.get_version(model=model, version=version)
            return tx.files(vid or 0)

    def register(
        self,
        *,
        model: str,
        path: Path,
        version: str,
        parent: str | None = None,
        change: str | None = None,
        datasets: Sequence[tuple[str, str]] = (),
        params: Mapping[str, str] | None = None,
        run_id: str | None = None,
        commit: str | None = None,
        tags: Mapping[str, str] | None = None,
        architecture: str | None = None,
        force: bool = False,
        reason: str | None = None,
        progress: Progress | None = None,
    ) -> Version:
        """Register a draft version: store its files, fingerprint it, check the bump.

        Args:
            model: the model line.
            path: a file or folder holding the version's artifacts.
            version: its semantic version.
            parent: the parent version (same model), if any.
            change: declared change kind; defaults to the bump the numbers show.
            datasets: ``(role, path_or_uri)`` pairs; local paths are digested.
            params: training parameters (part of the config fingerprint).
            run_id: training run id; ``commit``: code commit.
            tags: initial tags.
            architecture: a declared architecture id, when Charter cannot read one.
            force: accept a bump smaller than the change (needs ``reason``; recorded).
            progress: called with byte counts while files are stored.

        Raises:
            InvalidInputError, NotFoundError, AlreadyExistsError, BumpRefusedError.
        """
        validate_name(model, field="model")
        number = parse_version(version)
        declared = ChangeKind.parse(change) if change else None
        params = {
            str(k): _check_text(str(v), field=f"param {k}", limit=1000)
            for k, v in (params or {}).items()
        }
        tags_checked = _check_tags(tags or {})
        if force and not (reason and reason.strip()):
            raise InvalidInputError(
                "--force needs --reason saying why the bump is overridden", field="reason"
            )
        parent_v = self._check_new_version(model=model, version=version, parent=parent)
        refs = tuple(_dataset_ref(role, target) for role, target in datasets)
        sources = scan_source(Path(path))
        arch = architecture_fingerprint(
            [(s.relpath, s.abspath) for s in sources], declared=architecture
        )
        manifest = ingest(self.artifacts, Path(path), cache=self._cache, progress=progress)
        fingerprints = Fingerprints(
            architecture=arch.digest,
            data=data_fingerprint([(d.name, d.role, d.digest or d.uri) for d in refs]),
            config=config_fingerprint(
                params, [(e.path, e.digest) for e in manifest.entries if is_config_file(e.path)]
            ),
        )
        override = None
        if parent_v is not None:
            declared, override = self._check_bump(
                parent=parent_v,
                number=number,
                declared=declared,
                fingerprints=fingerprints,
                force=force,
                reason=reason,
            )
        entity = Version(
            model=model,
            version=version,
            state=VersionState.DRAFT,
            parent=parent,
            change_kind=declared.value if declared else None,
            fp_architecture=fingerprints.architecture,
            fp_data=fingerprints.data,
            fp_config=fingerprints.config,
            architecture_method=arch.method,
            manifest_digest=manifest.digest,
            file_count=len(manifest.entries),
            total_size=manifest.total_size,
            run_id=run_id,
            commit=commit,
            params=params,
            datasets=refs,
            created_by=self.user,
            created_at=now(),
        )
        files = [FileRecord(e.path, e.digest, e.size) for e in manifest.entries]
        subject = f"version:{entity.ref}"
        with self.store.write() as tx:
            model_id = tx.model_id(model)
            if model_id is None:
                raise NotFoundError(f"unknown model {model!r}", model=model)
            if tx.version_id(model, version) is not None:
                raise AlreadyExistsError(
                    f"version {entity.ref} already exists", model=model, version=version
                )
            parent_id = tx.version_id(model, parent) if parent else None
            vid = tx.insert_version(entity, model_id=model_id, parent_id=parent_id, files=files)
            self._record(tx, "version.registered", subject, {"record": entity.record()})
            if override is not None:
                self._record(tx, "bump.overridden", subject, override)
            if tags_checked:
                tx.set_tags(vid, tags_checked)
                self._record(
                    tx, "tag.set", subject, {"changes": tags_checked, "tags": tags_checked}
                )
        return replace(entity, tags={k: v for k, v in tags_checked.items() if v is not None})

    def _check_new_version(self, *, model: str, version: str, parent: str | None) -> Version | None:
        with self.store.read() as tx:
            if tx.model_id(model) is None:
                raise NotFoundError(
                    f"unknown model {model!r}: create it with `charter model create {model}`",
                    model=model,
                )
            if tx.version_id(model, version) is not None:
                raise AlreadyExistsError(
                    f"version {model}@{version} already exists: versions are unique within a model",
                    model=model,
                    version=version,
                )
            if parent is None:
                return None
            parse_version(parent)
            parent_v = tx.get_version(model, parent)
        if parent_v is None:
            raise NotFoundError(
                f"unknown parent version {model}@{parent}", model=model, version=parent
            )
        return parent_v

    @staticmethod
    def _check_bump(
        *,
        parent: Version,
        number: semver.Version,
        declared: ChangeKind | None,
        fingerprints: Fingerprints,
        force: bool,
        reason: str | None,
    ) -> tuple[ChangeKind, dict[str, Any] | None]:
        actual = actual_bump(semver.Version.parse(parent.version), number)
        if actual is None:
            raise InvalidInputError(
                f"version {number} must be greater than its parent {parent.version}",
                field="version",
                version=str(number),
                parent=parent.version,
            )
        if declared is not None and declared != actual:
            raise InvalidInputError(
                f"{parent.version} -> {number} is a {actual.value} bump, but --change "
                f"{declared.value} was declared: make the number and the change kind agree",
                field="change",
                declared=declared.value,
                actual=actual.value,
            )
        parent_fp = Fingerprints(parent.fp_architecture, parent.fp_data, parent.fp_config)
        check = check_bump(
            declared=actual, fingerprints=fingerprints, parent_fingerprints=parent_fp
        )
        if check.ok:
            return actual, None
        changed = ", ".join(check.changed)
        if not force:
            raise BumpRefusedError(
                f"a {actual.value} bump is too small: the {changed} fingerprint changed since "
                f"{parent.version}, so the bump must be at least {check.required.value} "
                "(or pass --force --reason TEXT to override, which is recorded)",
                declared=actual.value,
                required=check.required.value,
                changed=list(check.changed),
            )
        return actual, {
            "declared": actual.value,
            "required": check.required.value,
            "changed": list(check.changed),
            "reason": reason,
        }

    def publish(self, *, model: str, version: str) -> Version:
        """Freeze a draft: its metadata and manifest never change again.

        Raises:
            NotFoundError: no such version. ImmutableError: already published.
        """
        current = self.get_version(model=model, version=version)
        if current.state is VersionState.PUBLISHED:
            raise ImmutableError(
                f"{current.ref} is already published", model=model, version=version
            )
        at = now()
        with self.store.write() as tx:
            vid = tx.version_id(model, version)
            fresh = tx.get_version(model, version)
            if vid is None or fresh is None or fresh.state is VersionState.PUBLISHED:
                raise ImmutableError(f"{current.ref} was published or deleted meanwhile")
            tx.publish_version(vid, by=self.user, at=at)
            published = replace(
                fresh, state=VersionState.PUBLISHED, published_by=self.user, published_at=at
            )
            self._record(
                tx, "version.published", f"version:{published.ref}", {"record": published.record()}
            )
        return published

    def delete_draft(self, *, model: str, version: str) -> None:
        """Delete a draft version (published versions are permanent).

        Raises:
            NotFoundError, ImmutableError.
        """
        current = self.get_version(model=model, version=version)
        if current.state is VersionState.PUBLISHED:
            raise ImmutableError(f"{current.ref} is published and can never be deleted")
        with self.store.write() as tx:
            vid = tx.version_id(model, version)
            if vid is None:
                raise NotFoundError(f"unknown version {current.ref}")
            if tx.lineage_ids(vid, direction="descendants"):
                raise ImmutableError(f"{current.ref} has child versions; delete those first")
            tx.delete_draft(vid)
            self._record(
                tx, "version.deleted", f"version:{current.ref}", {"record": current.record()}
            )

    def set_tags(self, *, model: str, version: str, tags: Mapping[str, str | None]) -> Version:
        """Set (value) or remove (None) tags; tags stay mutable after publish."""
        changes = _check_tags(tags)
        current = self.get_version(model=model, version=version)
        merged = {**current.tags, **changes}
        final = {k: v for k, v in merged.items() if v is not None}
        with self.store.write() as tx:
            vid = tx.version_id(model, version)
            if vid is None:
                raise NotFoundError(f"unknown version {current.ref}")
            tx.set_tags(vid, changes)
            self._record(
                tx, "tag.set", f"version:{current.ref}", {"changes": changes, "tags": final}
            )
        return replace(current, tags=final)

    def download(
        self, *, model: str, version: str, dest: Path, progress: Progress | None = None
    ) -> list[Path]:
        """Write a version's files under ``dest``, verifying every byte.

        Raises:
            NotFoundError, IntegrityError (stored bytes differ from their digest).
        """
        written = []
        for record in self.files(model=model, version=version):
            target = dest / record.path
            target.parent.mkdir(parents=True, exist_ok=True)
            self.artifacts.get_file(record.digest, target, progress=progress)
            written.append(target)
        return written

    # -- lineage ------------------------------------------------------------
    def lineage(self, *, model: str, version: str) -> Lineage:
        """Return the ancestors and descendants of ``model@version``."""
        root = self.get_version(model=model, version=version)
        with self.store.read() as tx:
            vid = tx.version_id(model, version) or 0
            up = [i for i, _ in tx.lineage_ids(vid, direction="ancestors")]
            down = [i for i, _ in tx.lineage_ids(vid, direction="descendants")]
            by_id = tx.versions_by_ids(up + down)
        return Lineage(root, tuple(by_id[i] for i in up), tuple(by_id[i] for i in down))

    def versions_using_dataset(self, *, digest: str) -> list[Version]:
        """Return every version that declared a dataset with ``digest``."""
        with self.store.read() as tx:
            return list(tx.versions_by_ids(tx.version_ids_using_digest(digest)).values())

    def diff(self, *, model: str, a: str, b: str, model_b: str | None = None) -> VersionDiff:
        """Compare two versions: fingerprints, params, datasets and files."""
        va = self.get_version(model=model, version=a)
        vb = self.get_version(model=model_b or model, version=b)
        return diff_versions(
            va,
            vb,
            self.files(model=model, version=a),
            self.files(model=model_b or model, version=b),
        )

    # -- audit --------------------------------------------------------------
    def audit_log(self, *, start: int = 0, limit: int | None = None) -> list[LedgerRecord]:
        """Return ledger entries from ``start`` (at most ``limit``)."""
        with self.store.read() as tx:
            return tx.entries(start, None if limit is None else start + limit)

    def checkpoint(self, *, sign: bool = True) -> Checkpoint | None:
        """Return the latest signed checkpoint, signing a new one first if the log grew."""
        if sign:
            with self.store.write() as tx:
                if tx.ledger_size() == 0:
                    return None
                return sign_new_checkpoint(tx, key=self._key)
        with self.store.read() as tx:
            row = tx.latest_checkpoint()
            return checkpoint_from_row(row, origin=tx.ledger_origin() or "") if row else None

    def proof(self, *, seq: int) -> InclusionProof:
        """Prove entry ``seq`` against the latest checkpoint (signed now if needed)."""
        cp = self.checkpoint(sign=True)
        if cp is None:
            raise NotFoundError("the ledger is empty", seq=seq)
        with self.store.read() as tx:
            return inclusion_proof(tx, seq=seq, checkpoint=cp)

    def public_key_pem(self) -> bytes:
        """The PEM public key that verifies this registry's checkpoints."""
        return public_key_to_pem(self._key.public_key())

    def verify(self, *, artifacts: bool = False) -> VerifyReport:
        """Recompute the ledger, check checkpoints and cross-check state rows."""
        report = verify_registry(self.store, public_key=self._key.public_key())
        if artifacts:
            report = report.extend(verify_artifacts(self.store, self.artifacts))
        return report

    def verify_version(self, *, model: str, version: str) -> VerifyReport:
        """Re-hash every stored file of ``model@version`` against its manifest."""
        self.get_version(model=model, version=version)
        return verify_artifacts(self.store, self.artifacts, only=(model, version))


def _dataset_ref(role: str, target: str) -> DatasetRef:
    role = role.strip()
    if not role or not role.replace("-", "").replace("_", "").isalnum() or len(role) > 32:
        raise InvalidInputError(
            f"invalid dataset role {role!r}: use a word such as train, eval or test",
            field="dataset",
        )
    if "://" in target and not target.startswith("file://"):
        return DatasetRef(
            name=target.rstrip("/").rsplit("/", 1)[-1] or target, role=role, uri=target
        )
    local = Path(target.removeprefix("file://")).expanduser()
    digest, size = dataset_digest(local)
    return DatasetRef(
        name=local.name, role=role, uri=local.resolve().as_uri(), digest=digest, size=size
    )
