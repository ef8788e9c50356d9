"""Profile use cases of the registry: add, amend, show (as of any time), history.

Mixed into :class:`charter.service.Registry`; kept apart only to keep modules
small. Drafts take entries freely; publish seals them as the baseline; after
that every change is an amendment with author, reason and evidence.
"""

from __future__ import annotations

from typing import Any, Protocol

from charter.domain.canonical import loads
from charter.domain.entities import LedgerRecord, Version, VersionState, canonical_time
from charter.domain.errors import ImmutableError, InvalidInputError, NotFoundError
from charter.domain.folding import AmendmentRecord, EffectiveProfile, ProfileRecord, fold
from charter.domain.profile import PREFIXES, ProfileDocument
from charter.journal import now
from charter.store import Store, WriteTx

__all__ = ["ProfileUseCases"]


class _Host(Protocol):
    store: Store

    @property
    def user(self) -> str: ...

    def get_version(self, *, model: str, version: str) -> Version: ...

    def _record(
        self, tx: WriteTx, type_: str, subject: str, data: dict[str, Any]
    ) -> LedgerRecord: ...


def entry_bodies(
    document: ProfileDocument, *, counts: dict[str, int], user: str, at: str
) -> list[dict[str, Any]]:
    """Give each entry of ``document`` its id and recorded provenance.

    Raises:
        InvalidInputError: when the document tries to choose its own entry ids.
    """
    counts = dict(counts)
    bodies = []
    for entry in document.entries():
        if entry.id is not None:
            raise InvalidInputError(
                f"entry ids are assigned by the registry: remove 'id: {entry.id}' "
                "(to replace an entry, use 'supersedes: ID' in an amendment)",
                field="id",
            )
        counts[entry.section] = counts.get(entry.section, 0) + 1
        body = entry.model_dump(mode="json", exclude_none=True, by_alias=True)
        body["id"] = f"{PREFIXES[entry.section]}-{counts[entry.section]}"
        body["section"] = entry.section
        body["provenance"] = {**body.get("provenance", {}), "recorded_by": user, "recorded_at": at}
        bodies.append(body)
    return bodies


def _check_references(
    bodies: list[dict[str, Any]], retracts: list[str], current: EffectiveProfile
) -> None:
    active = {e.id: e.section for e in current.entries}
    known = ", ".join(sorted(active)) or "none"
    for body in bodies:
        old = body.get("supersedes")
        if old is None:
            continue
        if old not in active:
            raise NotFoundError(
                f"entry {body['id']} supersedes {old}, which is not in force "
                f"(entries in force: {known})",
                field="supersedes",
                value=old,
            )
        if active[old] != body["section"]:
            raise InvalidInputError(
                f"{old} is in {active[old]}; an entry of {body['section']} cannot supersede it",
                field="supersedes",
            )
    for old in retracts:
        if old not in active:
            raise NotFoundError(
                f"cannot retract {old}: not in force (entries in force: {known})",
                field="retracts",
                value=old,
            )


class ProfileUseCases:
    """Safety-profile methods of the registry."""

    def add_profile(
        self: _Host, *, model: str, version: str, document: ProfileDocument
    ) -> list[dict[str, Any]]:
        """Add entries to a draft's profile (they become its baseline at publish).

        Raises:
            ImmutableError: the version is published (amend it instead).
            InvalidInputError: the document holds amendment-only fields or ids.
        """
        current = self.get_version(model=model, version=version)
        if current.state is VersionState.PUBLISHED:
            raise ImmutableError(
                f"{current.ref} is published and its baseline is sealed: use "
                f"`charter profile amend {current.ref} FILE --reason TEXT`",
            )
        if document.retracts or document.evidence:
            raise InvalidInputError(
                "retracts and evidence belong to amendments of published versions", field="retracts"
            )
        if not document.entries():
            raise InvalidInputError("the profile document holds no entries", field="profile")
        return _add_entries(self, current, document)

    def amend_profile(
        self: _Host, *, model: str, version: str, document: ProfileDocument, reason: str
    ) -> AmendmentRecord:
        """Append an amendment to a published version's living profile.

        Raises:
            InvalidInputError: draft version, empty reason or empty amendment.
            NotFoundError: a superseded or retracted entry is not in force.
        """
        current = self.get_version(model=model, version=version)
        if current.state is VersionState.DRAFT:
            raise InvalidInputError(
                f"{current.ref} is a draft: add entries with `charter profile add` "
                "(amendments are for published versions)",
                field="version",
            )
        if not reason.strip():
            raise InvalidInputError("an amendment needs a reason (--reason TEXT)", field="reason")
        if not document.entries() and not document.retracts:
            raise InvalidInputError("the amendment adds and retracts nothing", field="profile")
        with self.store.write() as tx:
            tx.lock_ledger()
            # Timed under the writer lock: amendments are folded in time order,
            # which must be the order they were numbered and committed in.
            at = now()
            vid = tx.version_id(model, version)
            if vid is None:
                raise NotFoundError(f"unknown version {current.ref}")
            amendment = amend_in(
                self, tx, vid=vid, ref=current.ref, document=document, reason=reason, at=at
            )
        return amendment

    def profile(
        self: _Host, *, model: str, version: str, as_of: str | None = None, baseline: bool = False
    ) -> EffectiveProfile:
        """The effective profile (baseline + amendments), now or as of a time.

        Raises:
            InvalidInputError: ``as_of`` is not an ISO-8601 time. NotFoundError.
        """
        as_of = canonical_time(as_of) if as_of is not None else None
        current = self.get_version(model=model, version=version)
        with self.store.read() as tx:
            vid = tx.version_id(model, version) or 0
            records, amendments = tx.profile_records(vid), tx.amendment_records(vid)
        return fold(
            ref=current.ref,
            records=records,
            amendments=amendments,
            as_of=as_of,
            baseline_only=baseline,
            sealed_digest=current.baseline_digest,
        )

    def profile_records(self: _Host, *, model: str, version: str) -> list[ProfileRecord]:
        """Every stored entry of a version, in force or not (superseded, retracted)."""
        self.get_version(model=model, version=version)
        with self.store.read() as tx:
            return tx.profile_records(tx.version_id(model, version) or 0)

    def profile_history(self: _Host, *, model: str, version: str) -> list[dict[str, Any]]:
        """Every change to the profile, oldest first: baseline additions and amendments."""
        current = self.get_version(model=model, version=version)
        with self.store.read() as tx:
            records = tx.entries_for(f"version:{current.ref}")
        changes = []
        for r in records:
            if r.type not in ("profile.entries_added", "profile.amended", "version.published"):
                continue
            data = loads(r.body)["data"]
            item: dict[str, Any] = {"seq": r.seq, "type": r.type, "actor": r.actor, "time": r.time}
            if r.type == "profile.entries_added":
                item["entries"] = [e["id"] for e in data["entries"]]
            elif r.type == "profile.amended":
                am = data["amendment"]
                item.update(
                    amendment=am["id"],
                    reason=am["reason"],
                    retracts=am["retracts"],
                    entries=[e["id"] for e in am["entries"]],
                    evidence=am["evidence"],
                )
            else:
                item["baseline_digest"] = data["record"].get("baseline_digest")
            changes.append(item)
        return changes


def _add_entries(host: _Host, current: Version, document: ProfileDocument) -> list[dict[str, Any]]:
    with host.store.write() as tx:
        tx.lock_ledger()
        at = now()  # under the lock, as in ``amend_profile``
        vid = tx.version_id(current.model, current.version)
        if vid is None:
            raise NotFoundError(f"unknown version {current.ref}")
        bodies = add_entries_in(host, tx, vid=vid, ref=current.ref, document=document, at=at)
    return bodies


def add_entries_in(
    host: _Host, tx: WriteTx, *, vid: int, ref: str, document: ProfileDocument, at: str
) -> list[dict[str, Any]]:
    """Add draft entries within an open transaction (also used by register)."""
    records, amendments = tx.profile_records(vid), tx.amendment_records(vid)
    bodies = entry_bodies(document, counts=tx.section_counts(vid), user=host.user, at=at)
    _check_references(bodies, [], fold(ref=ref, records=records, amendments=amendments))
    tx.insert_profile_entries(vid, bodies, amendment_id=None, recorded_at=at)
    host._record(tx, "profile.entries_added", f"version:{ref}", {"entries": bodies})
    return bodies


def amend_in(
    host: _Host,
    tx: WriteTx,
    *,
    vid: int,
    ref: str,
    document: ProfileDocument,
    reason: str,
    at: str,
) -> AmendmentRecord:
    """Append an amendment within an open transaction (also used by evaluations)."""
    records, amendments = tx.profile_records(vid), tx.amendment_records(vid)
    state = fold(ref=ref, records=records, amendments=amendments)
    bodies = entry_bodies(document, counts=tx.section_counts(vid), user=host.user, at=at)
    _check_references(bodies, list(document.retracts), state)
    amendment = AmendmentRecord(
        id=f"am-{len(amendments) + 1}",
        reason=reason.strip(),
        evidence=tuple(document.evidence),
        retracts=tuple(document.retracts),
        entry_ids=tuple(b["id"] for b in bodies),
        author=host.user,
        created_at=at,
    )
    tx.insert_amendment(vid, amendment)
    tx.insert_profile_entries(vid, bodies, amendment_id=amendment.id, recorded_at=at)
    doc = {**amendment.to_dict(), "entries": bodies}
    host._record(tx, "profile.amended", f"version:{ref}", {"amendment": doc})
    return amendment
