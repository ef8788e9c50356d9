"""Store queries for safety profiles, mixed into the read and write transactions."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, bindparam, func, insert, select

from charter.domain.cards import CardRecord
from charter.domain.folding import AmendmentRecord, ProfileRecord
from charter.domain.profile import PREFIXES, SECTIONS
from charter.store import schema as t
from charter.store._sql import Compiled

__all__ = ["CardRows", "ProfileReads", "ProfileWrites"]


class ProfileReads:
    """Profile queries; ``conn`` is the transaction's connection."""

    conn: Connection

    def profile_records(self, version_id: int) -> list[ProfileRecord]:
        """Every stored entry of a version."""
        return [_record(r) for r in _PROFILE_ENTRIES(self.conn, {"vid": version_id})]

    def amendment_records(self, version_id: int) -> list[AmendmentRecord]:
        """Every amendment of a version, oldest first."""
        entries: dict[str, list[str]] = {}
        for r in _AMENDED_ENTRIES(self.conn, {"vid": version_id}):
            entries.setdefault(r.amendment_id, []).append(r.entry_id)
        rows = _AMENDMENTS(self.conn, {"vid": version_id})
        return [_amendment(r, entries.get(r.amendment_id, [])) for r in rows]

    def section_counts(self, version_id: int) -> dict[str, int]:
        """How many entries each section holds (ids are numbered per section)."""
        rows = self.conn.execute(
            select(t.profile_entries.c.section, func.count())
            .where(t.profile_entries.c.version_id == version_id)
            .group_by(t.profile_entries.c.section)
        )
        return {r[0]: int(r[1]) for r in rows}

    def amendment_count(self, version_id: int) -> int:
        """Number of amendments of a version."""
        return int(
            self.conn.execute(
                select(func.count()).where(t.amendments.c.version_id == version_id)
            ).scalar_one()
        )

    def metric_names(self) -> set[str]:
        """Every evaluation name and bias-audit metric recorded in any profile."""
        names: set[str | None] = set()
        rows = self.conn.execute(
            select(t.profile_entries.c.body).where(
                t.profile_entries.c.section.in_(["evaluations", "bias_audits"])
            )
        )
        for (body,) in rows:
            entry = json.loads(body)
            names.add(entry.get("name") or entry.get("metric"))
        return {n for n in names if n}

    def all_profile_records(self) -> dict[int, list[ProfileRecord]]:
        """Every profile entry, grouped by version id (for verification)."""
        out: dict[int, list[ProfileRecord]] = {}
        for r in self.conn.execute(select(t.profile_entries)):
            out.setdefault(r.version_id, []).append(_record(r))
        return out

    def all_amendment_records(self) -> dict[int, list[AmendmentRecord]]:
        """Every amendment, grouped by version id (for verification)."""
        ids = {r.version_id for r in self.conn.execute(select(t.amendments.c.version_id))}
        return {vid: self.amendment_records(vid) for vid in ids}


class ProfileWrites(ProfileReads):
    """Profile changes, inside the caller's write transaction."""

    def insert_profile_entries(
        self,
        version_id: int,
        entries: Sequence[dict[str, Any]],
        *,
        amendment_id: str | None,
        recorded_at: str,
    ) -> None:
        """Store entry bodies (each with ``id`` and ``section``)."""
        if entries:
            self.conn.execute(
                insert(t.profile_entries),
                [
                    {
                        "version_id": version_id,
                        "entry_id": e["id"],
                        "section": e["section"],
                        "body": json.dumps(e, sort_keys=True),
                        "amendment_id": amendment_id,
                        "recorded_at": recorded_at,
                    }
                    for e in entries
                ],
            )

    def insert_amendment(self, version_id: int, amendment: AmendmentRecord) -> None:
        """Store an amendment's header (its entries go in with insert_profile_entries)."""
        self.conn.execute(
            insert(t.amendments).values(
                version_id=version_id,
                amendment_id=amendment.id,
                reason=amendment.reason,
                evidence=json.dumps(list(amendment.evidence)),
                retracts=json.dumps(list(amendment.retracts)),
                author=amendment.author,
                created_at=amendment.created_at,
            )
        )


# Read by every publish (to seal the baseline), every profile view and every gate.
_PROFILE_ENTRIES = Compiled(
    select(t.profile_entries).where(t.profile_entries.c.version_id == bindparam("vid"))
)
_AMENDED_ENTRIES = Compiled(
    select(t.profile_entries.c.amendment_id, t.profile_entries.c.entry_id).where(
        t.profile_entries.c.version_id == bindparam("vid"),
        t.profile_entries.c.amendment_id.is_not(None),
    )
)
_AMENDMENTS = Compiled(
    select(t.amendments)
    .where(t.amendments.c.version_id == bindparam("vid"))
    .order_by(t.amendments.c.created_at)
)
_CARDS = (
    select(t.cards, t.models.c.name, t.versions.c.version.label("number"))
    .outerjoin(t.versions, t.versions.c.id == t.cards.c.version_id)
    .outerjoin(t.models, t.models.c.id == t.versions.c.model_id)
    .order_by(t.cards.c.rendered_at)
)
_CARDS_OF = Compiled(_CARDS.where(t.cards.c.version_id == bindparam("vid")))


def _record(r: Any) -> ProfileRecord:
    return ProfileRecord(r.entry_id, r.section, json.loads(r.body), r.amendment_id, r.recorded_at)


# Entries are numbered per section and recorded in schema section order; read
# back in the same order so an amendment's entry list matches its ledger entry.
_SECTION_ORDER = {PREFIXES[section]: i for i, section in enumerate(SECTIONS)}


def _entry_order(entry_id: str) -> tuple[int, int]:
    prefix, _, number = entry_id.partition("-")
    return _SECTION_ORDER.get(prefix, len(_SECTION_ORDER)), int(number)


def _amendment(r: Any, entry_ids: list[str]) -> AmendmentRecord:
    return AmendmentRecord(
        id=r.amendment_id,
        reason=r.reason,
        evidence=tuple(json.loads(r.evidence)),
        retracts=tuple(json.loads(r.retracts)),
        entry_ids=tuple(sorted(entry_ids, key=_entry_order)),
        author=r.author,
        created_at=r.created_at,
    )


class CardRows:
    """Rendered model cards (append-only)."""

    conn: Connection

    def card_rows(
        self, version_id: int | None = None, refs: dict[int, str] | None = None
    ) -> list[tuple[int, CardRecord]]:
        """Every rendered card (of one version, or all), oldest first, with version ids.

        ``refs`` (``{version id: name@version}``) saves a full versions read when the
        caller has it already.
        """
        # Without ``refs``, names come by join: one version's cards must not read
        # every version's name.
        rows: Any = (
            self.conn.execute(_CARDS)
            if version_id is None
            else _CARDS_OF(self.conn, {"vid": version_id})
        )

        def ref(r: Any) -> str:
            if refs is not None:
                return refs.get(r.version_id, f"id {r.version_id}")
            return f"{r.name}@{r.number}" if r.number is not None else f"id {r.version_id}"

        return [
            (
                r.version_id,
                CardRecord(
                    ref=ref(r),
                    card_id=r.card_id,
                    format=r.format,
                    digest=r.digest,
                    profile_digest=r.profile_digest,
                    metadata_digest=r.metadata_digest,
                    rendered_by=r.rendered_by,
                    rendered_at=r.rendered_at,
                ),
            )
            for r in rows
        ]

    def insert_card(self, version_id: int, card: CardRecord) -> None:
        """Store a rendered card's record."""
        self.conn.execute(insert(t.cards).values(version_id=version_id, **card.state()))
