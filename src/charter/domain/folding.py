"""Folding a profile: baseline + amendments -> the effective profile, as of any time.

Nothing is ever overwritten: an amendment adds entries (some superseding an
earlier entry of the same section) and may retract entries. Folding the
records whose time is at or before ``as_of`` reproduces exactly what a
reviewer saw then.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from charter.domain.canonical import canonical_digest
from charter.domain.profile import SCHEMA_ID, SECTIONS

__all__ = [
    "ActiveEntry",
    "AmendmentRecord",
    "EffectiveProfile",
    "ProfileRecord",
    "baseline_digest",
    "fold",
]


@dataclass(frozen=True)
class ProfileRecord:
    """One stored profile entry (its ``body`` is the full canonical entry)."""

    entry_id: str
    section: str
    body: dict[str, Any]
    amendment_id: str | None
    recorded_at: str

    @property
    def order(self) -> tuple[str, int, int]:
        """Sort key: time, then section (in schema order), then entry number."""
        number = int(self.entry_id.rpartition("-")[2])
        return (self.recorded_at, SECTIONS.index(self.section), number)


@dataclass(frozen=True)
class AmendmentRecord:
    """One amendment: who, when, why, what it added and retracted."""

    id: str
    reason: str
    evidence: tuple[str, ...]
    retracts: tuple[str, ...]
    entry_ids: tuple[str, ...]
    author: str
    created_at: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "id": self.id,
            "reason": self.reason,
            "evidence": list(self.evidence),
            "retracts": list(self.retracts),
            "entries": list(self.entry_ids),
            "author": self.author,
            "created_at": self.created_at,
        }


@dataclass(frozen=True)
class ActiveEntry:
    """An entry in force, with where it came from."""

    body: dict[str, Any]
    amendment_id: str | None

    @property
    def id(self) -> str:
        """The entry id."""
        return str(self.body["id"])

    @property
    def section(self) -> str:
        """The section the entry belongs to."""
        return str(self.body["section"])


@dataclass(frozen=True)
class EffectiveProfile:
    """The profile in force at ``as_of`` (None: now)."""

    ref: str
    as_of: str | None
    entries: tuple[ActiveEntry, ...]
    superseded: tuple[tuple[str, str], ...]
    retracted: tuple[tuple[str, str], ...]
    amendments: tuple[AmendmentRecord, ...]
    baseline_digest: str | None

    @property
    def digest(self) -> str:
        """Digest of the entries in force (what a card or a gate was judged on)."""
        bodies = sorted((e.body for e in self.entries), key=lambda b: str(b["id"]))
        return canonical_digest({"schema": SCHEMA_ID, "entries": bodies})

    def section(self, name: str) -> list[dict[str, Any]]:
        """The entries in force of one section, oldest first."""
        return [e.body for e in self.entries if e.section == name]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form; each entry says whether it is baseline or which amendment."""
        return {
            "schema": SCHEMA_ID,
            "ref": self.ref,
            "as_of": self.as_of,
            "digest": self.digest,
            "baseline_digest": self.baseline_digest,
            "entries": [{**e.body, "origin": e.amendment_id or "baseline"} for e in self.entries],
            "superseded": [{"id": old, "by": new} for old, new in self.superseded],
            "retracted": [{"id": old, "by": am} for old, am in self.retracted],
            "amendments": [a.to_dict() for a in self.amendments],
        }


def baseline_digest(records: Iterable[ProfileRecord]) -> str:
    """Digest of the baseline: every entry recorded before publish, by id."""
    bodies = sorted((r.body for r in records if r.amendment_id is None), key=lambda b: str(b["id"]))
    return canonical_digest({"schema": SCHEMA_ID, "entries": bodies})


def fold(
    *,
    ref: str,
    records: Sequence[ProfileRecord],
    amendments: Sequence[AmendmentRecord],
    as_of: str | None = None,
    baseline_only: bool = False,
    sealed_digest: str | None = None,
) -> EffectiveProfile:
    """Fold baseline entries and amendments into the profile in force.

    Args:
        ref: ``name@version`` the profile belongs to.
        records: every stored entry of the version.
        amendments: every amendment of the version.
        as_of: ISO-8601 UTC time (Charter's format); later records are ignored.
        baseline_only: ignore amendments altogether.
        sealed_digest: the baseline digest sealed at publish, if published.
    """
    visible = [
        r for r in records
        if (as_of is None or r.recorded_at <= as_of)
        and not (baseline_only and r.amendment_id is not None)
    ]  # fmt: skip
    applied = [
        a for a in amendments
        if not baseline_only and (as_of is None or a.created_at <= as_of)
    ]  # fmt: skip
    active: dict[str, ProfileRecord] = {}
    superseded: list[tuple[str, str]] = []
    for record in sorted(visible, key=lambda r: r.order):
        old = record.body.get("supersedes")
        if old and old in active:
            del active[old]
            superseded.append((old, record.entry_id))
        active[record.entry_id] = record
    retracted: list[tuple[str, str]] = []
    for amendment in sorted(applied, key=lambda a: a.created_at):
        for old in amendment.retracts:
            if active.pop(old, None) is not None:
                retracted.append((old, amendment.id))
    return EffectiveProfile(
        ref=ref,
        as_of=as_of,
        entries=tuple(ActiveEntry(r.body, r.amendment_id) for r in active.values()),
        superseded=tuple(superseded),
        retracted=tuple(retracted),
        amendments=tuple(applied),
        baseline_digest=sealed_digest,
    )
