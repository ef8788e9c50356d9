"""``RemoteRegistry``: the registry of a Charter server, with the local methods and types.

``charter.open_registry("http://host:8000", token=…)`` returns one. Every method
takes the same keyword arguments and returns the same domain types as
:class:`charter.service.Registry` (decoded by :mod:`charter.wire`), and raises
the same :class:`~charter.domain.errors.CharterError` subclasses — the server's
error codes map back to them. The server records the token's user as the actor.

Files stream: ``register`` hashes locally, sends the manifest first and uploads
only the blobs the server lacks; ``download`` verifies every byte. Evaluators run
here, next to the model, and their runs are uploaded (``record_evaluation``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import semver

from charter._client_http import Http, hash_file, path_of
from charter._client_mixin import RemoteReads
from charter._eval_runs import run_evaluator
from charter._evaluations import EvaluationUseCases
from charter._registration import check_request
from charter._search import Page
from charter.artifacts import scan_source
from charter.domain.access import Principal, split_token
from charter.domain.cards import CardRecord
from charter.domain.entities import FileRecord, Model, Version
from charter.domain.errors import InvalidInputError, NotFoundError
from charter.domain.folding import AmendmentRecord
from charter.domain.profile import ProfileDocument
from charter.domain.webhooks import Delivery, Webhook
from charter.evaluation.base import ProgressFn
from charter.settings import Settings
from charter.wire import (
    decode_amendment,
    decode_card,
    decode_delivery,
    decode_list,
    decode_model,
    decode_version,
    decode_webhook,
)

__all__ = ["RemoteRegistry"]

Progress = Callable[[int], None]
_PAGE = 1000


def _document(document: ProfileDocument) -> dict[str, Any]:
    return document.model_dump(mode="json", by_alias=True)


class RemoteRegistry(RemoteReads):
    """A Charter server's registry over HTTP (keep-alive; one per thread).

    Example:
        >>> reg = RemoteRegistry("http://127.0.0.1:8000", token="chr_…")  # doctest: +SKIP
        >>> reg.get_model(name="credit-risk").risk_tier  # doctest: +SKIP
    """

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        settings: Settings | None = None,
        http: Http | None = None,
    ) -> None:
        if token is not None:
            split_token(token)  # malformed: refused here, not sent
        self.settings = settings if settings is not None else Settings(url=url)
        self._http = http if http is not None else Http(url, token=token and token.strip())
        self._principal: Principal | None = None

    def close(self) -> None:
        """Release the connection pool."""
        self._http.close()

    def __enter__(self) -> RemoteRegistry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def user(self) -> str:
        """The user the token acts as (the actor the server records)."""
        if self._principal is None:
            self._principal = self.whoami()
        return self._principal.user

    def as_user(self, name: str) -> RemoteRegistry:
        """Not over the API: a remote registry acts as its token's user.

        Raises:
            InvalidInputError: always; open the registry with ``name``'s token.
        """
        raise InvalidInputError(
            f"a remote registry acts as its token's user: open it with a token of {name}",
            field="user",
        )

    # -- models and versions ------------------------------------------------
    def create_model(
        self, *, name: str, risk_tier: str = "low", owner: str | None = None, description: str = ""
    ) -> Model:
        """Create a model line (see :meth:`Registry.create_model`)."""
        body = {"name": name, "risk_tier": risk_tier, "owner": owner, "description": description}
        return decode_model(self._http.call("POST", "/models", json=body))

    def list_models(self) -> list[Model]:
        """Every model, by name (all pages)."""
        out: list[Model] = []
        cursor: str | None = None
        while True:
            page = self.search_models(cursor=cursor, limit=_PAGE)
            out.extend(page.items)
            if page.next_cursor is None:
                return out
            cursor = page.next_cursor

    def list_versions(self, *, model: str) -> list[Version]:
        """The versions of ``model`` in semantic-version order (all pages)."""
        found: list[Version] = []
        cursor: str | None = None
        while True:
            data = self._http.call(
                "GET",
                path_of("models", model, "versions"),
                params={"cursor": cursor, "limit": _PAGE},
            )
            found.extend(decode_version(v) for v in data["items"])
            if data["next_cursor"] is None:
                return sorted(found, key=lambda v: semver.Version.parse(v.version))
            cursor = data["next_cursor"]

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
        """Register a draft: hash here, send the manifest, upload only missing blobs.

        A declared red-team target with ``auto`` is campaigned here afterwards (where
        the model is), and the run uploaded. See :meth:`Registry.register`.
        """
        from charter._checks import dataset_ref

        check_request(
            model=model, version=version, parent=parent, change=change, params=params,
            run_id=run_id, commit=commit, tags=tags, force=force, reason=reason, profile=profile,
        )  # fmt: skip
        refs = [dataset_ref(role, target).state() for role, target in datasets]
        sources = scan_source(Path(path))
        files = [FileRecord(s.relpath, *hash_file(s.abspath)) for s in sources]
        body = {
            "version": version, "parent": parent, "change": change, "datasets": refs,
            "params": {str(k): str(v) for k, v in (params or {}).items()}, "run_id": run_id,
            "commit": commit, "tags": dict(tags or {}), "architecture": architecture,
            "force": force, "reason": reason,
            "profile": _document(profile) if profile is not None else None,
            "files": [{"path": f.path, "digest": f.digest, "size": f.size} for f in files],
        }  # fmt: skip
        where = path_of("models", model, "versions")
        try:
            created = self._http.send("POST", where, json=body)
            if progress is not None:  # nothing to send: like a local dedupe hit
                progress(sum(f.size for f in files))
        except NotFoundError as exc:
            missing = set(exc.details.get("missing_blobs") or ())
            if not missing:
                raise
            for record, source in zip(files, sources, strict=True):
                if record.digest in missing:
                    missing.discard(record.digest)
                    self._http.upload(record, source.abspath, progress)
                elif progress is not None:
                    progress(record.size)
            created = self._http.send("POST", where, json=body)
        registered = decode_version(created.json())
        if evaluate and created.headers.get("Charter-Red-Team") == "due":
            self.redteam(model=model, version=version)
        return registered

    def download(
        self, *, model: str, version: str, dest: Path, progress: Progress | None = None
    ) -> list[Path]:
        """Write a version's files under ``dest``, verifying every byte."""
        written = []
        for record in self.files(model=model, version=version):
            target = Path(dest) / record.path
            self._http.fetch(record.digest, target, size=record.size, progress=progress)
            written.append(target)
        return written

    def search_models(
        self,
        *,
        risk_tier: str | None = None,
        prefix: str | None = None,
        cursor: str | None = None,
        limit: int = 100,
    ) -> Page[Model]:
        """A page of models (see :meth:`Registry.search_models`)."""
        params = {"risk_tier": risk_tier, "prefix": prefix, "cursor": cursor, "limit": limit}
        data = self._http.call("GET", "/models", params=params)
        return Page(tuple(decode_list(data["items"], decode_model)), data["next_cursor"])

    # -- profiles, cards, evaluations -----------------------------------------
    def amend_profile(
        self, *, model: str, version: str, document: ProfileDocument, reason: str
    ) -> AmendmentRecord:
        """Append an amendment to a published version's profile."""
        body = {"document": _document(document), "reason": reason}
        where = path_of("models", model, "versions", version, "amendments")
        return decode_amendment(self._http.call("POST", where, json=body))

    def add_profile(
        self, *, model: str, version: str, document: ProfileDocument
    ) -> list[dict[str, Any]]:
        """Add entries to a draft's profile."""
        where = path_of("models", model, "versions", version, "profile")
        found: list[dict[str, Any]] = self._http.call(
            "POST", where, json={"document": _document(document)}
        )
        return found

    def card_text(self, *, record: CardRecord) -> str:
        """Read a rendered card back (bytes verified against the digest)."""
        return self._http.read(record.digest).decode("utf-8")

    def render_card(self, *, model: str, version: str, fmt: str = "md") -> tuple[CardRecord, str]:
        """Render and register a model card."""
        where = path_of("models", model, "versions", version, "cards")
        data = self._http.call("POST", where, json={"format": fmt})
        return decode_card(data["card"]), str(data["text"])

    def evaluate(
        self,
        *,
        model: str,
        version: str,
        evaluator: str,
        options: Mapping[str, Any] | None = None,
        progress: ProgressFn | None = None,
        reason: str | None = None,
    ) -> dict[str, Any]:
        """Run an evaluator here (next to the model) and record the run on the server."""
        run, document = run_evaluator(
            self, model=model, version=version, evaluator=evaluator, options=options,
            progress=progress,
        )  # fmt: skip
        return self.record_evaluation(
            model=model, version=version, run=run, document=document, reason=reason
        )

    def record_evaluation(
        self,
        *,
        model: str,
        version: str,
        run: Mapping[str, Any],
        document: ProfileDocument,
        reason: str | None = None,
    ) -> dict[str, Any]:
        """Upload an evaluation run executed elsewhere, with its results."""
        body = {"run": dict(run), "document": _document(document), "reason": reason}
        where = path_of("models", model, "versions", version, "evaluations")
        found: dict[str, Any] = self._http.call("POST", where, json=body)
        return found

    def redteam(
        self,
        *,
        model: str,
        version: str,
        target: Mapping[str, Any] | None = None,
        packs: list[str] | None = None,
        max_probes: int | None = None,
        guard: bool = False,
        progress: ProgressFn | None = None,
        reason: str | None = None,
    ) -> dict[str, Any]:
        """Run one red-team campaign here and record it (see :meth:`Registry.redteam`)."""
        return EvaluationUseCases.redteam(
            self, model=model, version=version, target=target, packs=packs,
            max_probes=max_probes, guard=guard, progress=progress, reason=reason,
        )  # fmt: skip

    def redteam_sweep(
        self,
        *,
        stage: str | None = None,
        model: str | None = None,
        packs: list[str] | None = None,
        max_probes: int | None = None,
        reason: str = "red-team sweep",
        progress: ProgressFn | None = None,
        guard: bool | None = None,
    ) -> list[dict[str, Any]]:
        """Re-run campaigns on the versions in ``stage`` (or of ``model``) and record them."""
        return EvaluationUseCases.redteam_sweep(
            self, stage=stage, model=model, packs=packs, max_probes=max_probes, reason=reason,
            progress=progress, guard=guard,
        )  # fmt: skip

    # -- webhooks ----------------------------------------------------------------------
    def add_webhook(
        self, *, url: str, events: list[str] | tuple[str, ...], secret: str | None = None
    ) -> tuple[Webhook, str]:
        """Subscribe ``url`` to ledger events (admin); (subscription, secret)."""
        body = {"url": url, "events": list(events), "secret": secret}
        data = self._http.call("POST", "/webhooks", json=body)
        return decode_webhook(data["webhook"]), str(data["secret"])

    def list_webhooks(self) -> list[Webhook]:
        """Every subscription (admin)."""
        return decode_list(self._http.call("GET", "/webhooks"), decode_webhook)

    def remove_webhook(self, *, webhook_id: int) -> Webhook:
        """Deactivate a subscription (admin)."""
        return decode_webhook(self._http.call("DELETE", path_of("webhooks", str(webhook_id))))

    def webhook_deliveries(
        self, *, webhook_id: int | None = None, status: str | None = None, limit: int = 100
    ) -> list[Delivery]:
        """The delivery log (admin)."""
        params = {"webhook_id": webhook_id, "status": status, "limit": limit}
        found = self._http.call("GET", "/webhooks/deliveries", params=params)
        return decode_list(found, decode_delivery)
