"""The registry service: one method per use case, keyword-only arguments.

Surfaces (CLI, API, web) parse input, call a ``Registry`` method and render the
result; they hold no logic of their own. Each mutating method validates
everything it can before writing, then commits the state change and its ledger
entry in one transaction.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

import semver

from charter._access import AccessUseCases
from charter._auditing import AuditUseCases
from charter._cards import CardUseCases
from charter._checks import check_tags, check_text, dataset_ref
from charter._evaluations import EvaluationUseCases
from charter._exports import ExportUseCases
from charter._gates import GateUseCases
from charter._lineage import LineageUseCases
from charter._monitoring import MonitoringUseCases
from charter._profiles import ProfileUseCases
from charter._registration import (
    RegistrationUseCases,
    check_request,
    commit_version,
    refuse_taken,
    unknown_parent,
)
from charter._search import SearchUseCases
from charter._stages import StageUseCases
from charter._trends import TrendUseCases
from charter._webhooks import WebhookUseCases
from charter.artifacts import ArtifactStore, HashCache, ingest, scan_source, stage
from charter.artifacts.fingerprint import (
    architecture_fingerprint,
)
from charter.domain.entities import (
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
    ImmutableError,
    InvalidInputError,
    NotFoundError,
)
from charter.domain.folding import baseline_digest
from charter.domain.profile import ProfileDocument
from charter.domain.versioning import (
    parse_version,
    validate_name,
)
from charter.home import load_signing_key, open_store
from charter.journal import (
    append_event,
    now,
)
from charter.settings import Settings
from charter.store import WriteTx

__all__ = ["Registry", "parse_ref"]

Progress = Callable[[int], None]


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


class Registry(
    ProfileUseCases,
    LineageUseCases,
    TrendUseCases,
    CardUseCases,
    ExportUseCases,
    GateUseCases,
    StageUseCases,
    EvaluationUseCases,
    AuditUseCases,
    AccessUseCases,
    MonitoringUseCases,
    RegistrationUseCases,
    SearchUseCases,
    WebhookUseCases,
):
    """A registry home (or database + artifact store), used in-process.

    Obtain one with :func:`charter.open_registry`.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.store = open_store(settings)
        self.artifacts = ArtifactStore(settings.resolved_artifacts_url)
        self._key = load_signing_key(settings)
        self._cache = HashCache(settings.hash_cache_path)
        self._acting: str | None = None

    def as_user(self, name: str) -> Registry:
        """A view of this registry acting as ``name`` (the server's authenticated user).

        It shares connections, the artifact store and the signing key; closing the
        view closes them too, so close only the registry it came from.
        """
        view = copy.copy(self)
        view._acting = name
        return view

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
        return self._acting or self.settings.user

    def _record(
        self, tx: WriteTx, type_: str, subject: str, data: dict[str, Any], *, at: str | None = None
    ) -> LedgerRecord:
        """Append an event to the ledger in ``tx``, at ``at`` (the change's own time) or now.

        ``at`` must have been read inside ``tx`` (under the writer lock), so that
        ledger order and time order agree.
        """
        event = Event(type=type_, subject=subject, actor=self.user, time=at or now(), data=data)
        return append_event(tx, event, key=self._key)

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
            description=check_text(description, field="description"),
            owner=check_text(owner or self.user, field="owner", limit=200),
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
        profile: ProfileDocument | None = None,
        evaluate: bool = True,
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
            profile: initial safety-profile entries (the draft's baseline so far).
            evaluate: when the model declares a red-team target with ``auto``, run a
                campaign on the new draft (its results join the baseline).
            progress: called with byte counts while files are stored.

        Raises:
            InvalidInputError, NotFoundError, AlreadyExistsError, BumpRefusedError.
        """
        request = check_request(
            model=model, version=version, parent=parent, change=change, params=params,
            run_id=run_id, commit=commit, tags=tags, force=force, reason=reason, profile=profile,
        )  # fmt: skip
        source = Path(path)
        sources = scan_source(source)
        # A small source without datasets to digest is checked and stored under the
        # writer lock (a refusal stores nothing); otherwise the registration is
        # checked first, so that a refusal does not wait for the bytes to be stored.
        staged = (
            stage(sources, progress=progress) if self.artifacts.is_local and not datasets else None
        )
        if staged is None:
            self._check_new_version(model=model, version=version, parent=parent)
        refs = tuple(dataset_ref(role, target) for role, target in datasets)
        arch = architecture_fingerprint(
            [(s.relpath, s.abspath) for s in sources], declared=architecture
        )
        if staged is not None:
            manifest, store_files = staged.manifest, partial(staged.store, self.artifacts)
        else:
            manifest, store_files = ingest(
                self.artifacts, source, sources=sources, cache=self._cache, progress=progress
            ), None  # fmt: skip
        return commit_version(
            self, request, datasets=refs, manifest=manifest, arch=arch, evaluate=evaluate,
            store_files=store_files,
        )  # fmt: skip

    def _check_new_version(self, *, model: str, version: str, parent: str | None) -> None:
        """Refuse early a registration that cannot commit (it is checked again then)."""
        with self.store.read() as tx:
            model_id, version_id = tx.ids(model, version)
            refuse_taken(model, version, model_id=model_id, version_id=version_id)
            if parent is not None and tx.version_id(model, parent) is None:
                raise unknown_parent(model, parent)

    def publish(self, *, model: str, version: str) -> Version:
        """Freeze a draft: its metadata and manifest never change again.

        Raises:
            NotFoundError: no such version. ImmutableError: already published.
        """
        with self.store.write() as tx:
            at = now()  # under the writer lock: ledger order is time order
            found = tx.version_with_id(model, version)
            if found is None:
                raise NotFoundError(
                    f"unknown version {model}@{version}: see `charter versions {model}`",
                    model=model,
                    version=version,
                )
            vid, fresh = found
            if fresh.state is VersionState.PUBLISHED:
                raise ImmutableError(
                    f"{fresh.ref} is already published", model=model, version=version
                )
            sealed = baseline_digest(tx.profile_records(vid))
            tx.publish_version(vid, by=self.user, at=at, baseline_digest=sealed)
            published = replace(
                fresh,
                state=VersionState.PUBLISHED,
                published_by=self.user,
                published_at=at,
                baseline_digest=sealed,
            )
            record = {"record": published.record()}
            self._record(tx, "version.published", f"version:{published.ref}", record, at=at)
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
        changes = check_tags(tags)
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
