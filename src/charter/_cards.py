"""Model-card use cases: render and register, check staleness, re-render.

A rendered card is stored as a content-addressed blob and registered with the
digests of the profile and metadata it was rendered from, so a card whose
version has since been amended or retagged is reported stale — documentation
drift cannot pass unnoticed. Mixed into :class:`charter.service.Registry`.
"""

from __future__ import annotations

from typing import Any, Literal, Protocol

from charter.artifacts import ArtifactStore
from charter.cards import CardInput, render_html, render_markdown
from charter.domain.cards import CardRecord, metadata_digest
from charter.domain.entities import FileRecord, LedgerRecord, Model, Version
from charter.domain.errors import InvalidInputError, NotFoundError
from charter.domain.folding import EffectiveProfile
from charter.domain.lineage import Lineage
from charter.domain.trends import TrendPoint
from charter.journal import now
from charter.store import Store, WriteTx

__all__ = ["CardUseCases"]

CardFormat = Literal["md", "html"]


class _Host(Protocol):
    store: Store
    artifacts: ArtifactStore

    @property
    def user(self) -> str: ...

    def get_model(self, *, name: str) -> Model: ...

    def get_version(self, *, model: str, version: str) -> Version: ...

    def files(self, *, model: str, version: str) -> list[FileRecord]: ...

    def lineage(self, *, model: str, version: str) -> Lineage: ...

    def profile(
        self, *, model: str, version: str, as_of: str | None = None, baseline: bool = False
    ) -> EffectiveProfile: ...

    def trend(
        self, *, model: str, metric: str, slice_: str | None = None, version: str | None = None
    ) -> list[TrendPoint]: ...

    def card_status(
        self, *, model: str | None = None, version: str | None = None
    ) -> list[CardRecord]: ...

    def render_card(
        self, *, model: str, version: str, fmt: CardFormat = "md"
    ) -> tuple[CardRecord, str]: ...

    def _record(
        self, tx: WriteTx, type_: str, subject: str, data: dict[str, Any]
    ) -> LedgerRecord: ...


def _card_input(host: _Host, model: str, version: str, at: str) -> CardInput:
    v = host.get_version(model=model, version=version)
    profile = host.profile(model=model, version=version)
    trend: dict[str, list[tuple[str, float]]] = {}
    for name in sorted({e["name"] for e in profile.section("evaluations") if "slice" not in e}):
        points = host.trend(model=model, metric=name, version=version)
        trend[name] = [(p.version, p.value) for p in points if p.value is not None]
    return CardInput(
        model=host.get_model(name=model),
        version=v,
        files=host.files(model=model, version=version),
        lineage=host.lineage(model=model, version=version),
        profile=profile,
        baseline=host.profile(model=model, version=version, baseline=True),
        trend=trend,
        rendered_at=at,
    )


class CardUseCases:
    """Rendering, registering and checking model cards."""

    def render_card(
        self: _Host, *, model: str, version: str, fmt: CardFormat = "md"
    ) -> tuple[CardRecord, str]:
        """Render a card, store it and record what it was rendered from.

        Returns:
            The card's record and its text.

        Raises:
            InvalidInputError: an unknown format. NotFoundError: unknown version.
        """
        if fmt not in ("md", "html"):
            raise InvalidInputError(f"unknown card format {fmt!r}: use md or html", field="format")
        at = now()
        card = _card_input(self, model, version, at)
        text = render_markdown(card) if fmt == "md" else render_html(card)
        blob = self.artifacts.put_bytes(text.encode("utf-8"))
        with self.store.write() as tx:
            tx.lock_ledger()
            vid = tx.version_id(model, version)
            if vid is None:
                raise NotFoundError(f"unknown version {model}@{version}")
            record = CardRecord(
                ref=card.version.ref,
                card_id=f"card-{len(tx.card_rows(vid)) + 1}",
                format=fmt,
                digest=blob.digest,
                profile_digest=card.profile.digest,
                metadata_digest=metadata_digest(card.model, card.version),
                rendered_by=self.user,
                rendered_at=at,
            )
            tx.insert_card(vid, record)
            self._record(tx, "card.rendered", f"version:{record.ref}", {"card": record.state()})
        return record, text

    def card_status(
        self: _Host, *, model: str | None = None, version: str | None = None
    ) -> list[CardRecord]:
        """The latest card per version and format, each with why it is stale (if it is)."""
        with self.store.read() as tx:
            vid = tx.version_id(model, version) if model and version else None
            if model and version and vid is None:
                raise NotFoundError(f"unknown version {model}@{version}")
            rows = tx.card_rows(vid)
        latest: dict[tuple[int, str], CardRecord] = {}
        for row_vid, record in rows:
            latest[(row_vid, record.format)] = record
        out = []
        for record in latest.values():
            name, _, number = record.ref.partition("@")
            if model and name != model:
                continue
            v = self.get_version(model=name, version=number)
            reasons = []
            if self.profile(model=name, version=number).digest != record.profile_digest:
                reasons.append("the profile changed after the card was rendered")
            if metadata_digest(self.get_model(name=name), v) != record.metadata_digest:
                reasons.append("the version's metadata or tags changed after rendering")
            out.append(_with_reasons(record, reasons))
        return sorted(out, key=lambda c: (c.ref, c.format))

    def render_stale(self: _Host) -> list[CardRecord]:
        """Re-render every stale card; return the new records."""
        fresh = []
        for card in self.card_status():
            if card.stale:
                name, _, number = card.ref.partition("@")
                fmt: CardFormat = "html" if card.format == "html" else "md"
                fresh.append(self.render_card(model=name, version=number, fmt=fmt)[0])
        return fresh

    def card_text(self: _Host, *, record: CardRecord) -> str:
        """Read a rendered card back (bytes verified against the digest)."""
        with self.artifacts.open_verified(record.digest) as chunks:
            return b"".join(chunks).decode("utf-8")


def _with_reasons(record: CardRecord, reasons: list[str]) -> CardRecord:
    return CardRecord(**{**record.state(), "ref": record.ref, "stale_reasons": tuple(reasons)})
