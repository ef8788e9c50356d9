"""``audit verify``, state part: replay the ledger, hold every state row against it.

:class:`Expected` is the state the ledger describes, built entry by entry by the
:data:`APPLIERS`; the checks compare it with the rows the registry serves, one
version at a time, so no second copy of every record is ever built.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from charter._audit_report import Problems
from charter.artifacts.paths import manifest_digest
from charter.domain.cards import CardRecord
from charter.domain.entities import Version
from charter.domain.errors import CharterError
from charter.domain.folding import AmendmentRecord, ProfileRecord, baseline_digest

__all__ = [
    "APPLIERS",
    "Entry",
    "Expected",
    "ProfileRows",
    "apply_entry",
    "check_profiles",
    "check_state",
    "compare",
    "profile_records",
    "replay",
]

FileRow = tuple[Any, Any, Any]
"""A raw manifest row of a version: ``(path, digest, size)``."""

Entry = dict[str, Any]
"""A whole ledger entry body: ``seq``, ``type``, ``subject``, ``actor``, ``time``, ``data``.

Appliers receive it besides its ``data`` because some rows repeat the entry's
own ``actor`` and ``time`` (``set_by``, ``decided_by``…) or its ``seq``
(``ledger_seq``): those columns are checked against the entry itself."""

_ABSENT: Any = object()
_S = TypeVar("_S")


@dataclass
class Expected:
    """The state the ledger describes, built by replaying its entries."""

    models: dict[str, dict[str, Any]] = field(default_factory=dict)
    versions: dict[str, dict[str, Any]] = field(default_factory=dict)
    tags: dict[str, dict[str, str]] = field(default_factory=dict)
    profiles: dict[str, dict[str, Any]] = field(default_factory=dict)
    amendments: dict[str, dict[str, Any]] = field(default_factory=dict)
    cards: dict[str, dict[str, Any]] = field(default_factory=dict)


def _apply_model_created(exp: Expected, data: dict[str, Any], _subject: str, _e: Entry) -> None:
    exp.models[data["model"]["name"]] = data["model"]


def _apply_version_record(exp: Expected, data: dict[str, Any], _subject: str, _e: Entry) -> None:
    record = data["record"]
    ref = f"{record['model']}@{record['version']}"
    exp.versions[ref] = record
    if ref not in exp.tags:  # not setdefault: that builds a dict per call
        exp.tags[ref] = {}


def _apply_version_deleted(exp: Expected, data: dict[str, Any], _subject: str, _e: Entry) -> None:
    ref = f"{data['record']['model']}@{data['record']['version']}"
    exp.versions.pop(ref, None)
    exp.tags.pop(ref, None)
    for key in [k for k in (*exp.profiles, *exp.amendments, *exp.cards) if k.startswith(ref + "#")]:
        for table in (exp.profiles, exp.amendments, exp.cards):
            table.pop(key, None)


def _apply_entries_added(exp: Expected, data: dict[str, Any], subject: str, _e: Entry) -> None:
    ref = subject.removeprefix("version:")
    for body in data["entries"]:
        exp.profiles[f"{ref}#{body['id']}"] = body


def _apply_amended(exp: Expected, data: dict[str, Any], subject: str, entry: Entry) -> None:
    ref = subject.removeprefix("version:")
    amendment = dict(data["amendment"])
    bodies = amendment.pop("entries")
    _apply_entries_added(exp, {"entries": bodies}, subject, entry)
    exp.amendments[f"{ref}#{amendment['id']}"] = {**amendment, "entries": [b["id"] for b in bodies]}


def _apply_card(exp: Expected, data: dict[str, Any], subject: str, _e: Entry) -> None:
    exp.cards[f"{subject.removeprefix('version:')}#{data['card']['card_id']}"] = data["card"]


def _apply_tag_set(exp: Expected, data: dict[str, Any], subject: str, _e: Entry) -> None:
    exp.tags[subject.removeprefix("version:")] = dict(data["tags"])


# How each event type changes the expected state. Types absent here (such as
# bump.overridden) are informational: they describe a decision, not a row.
APPLIERS: dict[str, Callable[[Expected, dict[str, Any], str, Entry], None]] = {
    "model.created": _apply_model_created,
    "version.registered": _apply_version_record,
    "version.published": _apply_version_record,
    "version.deleted": _apply_version_deleted,
    "tag.set": _apply_tag_set,
    "profile.entries_added": _apply_entries_added,
    "profile.amended": _apply_amended,
    "card.rendered": _apply_card,
}


def replay(
    appliers: Mapping[str, Callable[[_S, dict[str, Any], str, Entry], None]],
    state: _S,
    problems: Problems,
    seq: Any,
    type_: Any,
    subject: Any,
    body: dict[str, Any],
) -> None:
    """Replay one entry into ``state`` with ``appliers`` (types they lack are ignored);
    an entry lacking its state data is a problem."""
    apply = appliers.get(type_)
    if apply is None:
        return
    try:
        apply(state, body["data"], subject, body)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError):
        problems.add("ledger", f"entry {seq}", f"{type_} entry lacks its state data")


def apply_entry(
    exp: Expected, problems: Problems, seq: Any, type_: Any, subject: Any, body: dict[str, Any]
) -> None:
    """Replay one entry's registry state (models, versions, profiles…) into ``exp``."""
    replay(APPLIERS, exp, problems, seq, type_, subject, body)


def check_state(
    exp: Expected,
    models: dict[str, dict[str, Any]] | None,
    versions: Sequence[tuple[int, Version]] | None,
    refs: Mapping[int, str],
    files: Mapping[int, list[FileRow]],
    problems: Problems,
) -> None:
    """Compare models, versions, tags and manifests with the ledger's state.

    ``None`` means a table could not be read: that was reported already, and
    comparing it as empty would only add one "missing" problem per row.
    """
    if models is not None:
        compare("model", exp.models, models, problems)
    for vid in files.keys() - refs.keys():
        problems.add("state", f"version id {vid}", "file rows belong to no version")
    if versions is None:
        return
    seen: set[str] = set()
    for vid, version in versions:
        ref = version.ref
        seen.add(ref)
        # Equal is the common case: only a difference pays for the comparison's report.
        record, expected = version.record(), exp.versions.get(ref, _ABSENT)
        if expected is _ABSENT or expected != record:
            _compare_one("version", ref, expected, record, problems)
        tags = exp.tags.get(ref, _ABSENT)
        if tags is _ABSENT or tags != version.tags:
            _compare_one("tags of", ref, tags, version.tags, problems)
        if _manifest_digest(files.get(vid, [])) != version.manifest_digest:
            problems.add(
                "state", f"version {ref}", "its file rows do not match its manifest digest"
            )
    for label, table in (("version", exp.versions), ("tags of", exp.tags)):
        for ref in table.keys() - seen:
            _missing(label, ref, problems)


@dataclass(frozen=True)
class ProfileRows:
    """The stored profile rows, grouped by version id.

    ``amendments`` is None when the amendment rows could not be read (already
    reported): comparing them as absent would only add one problem per amendment.
    """

    records: dict[int, list[ProfileRecord]]
    amendments: dict[int, list[AmendmentRecord]] | None
    cards: list[tuple[int, CardRecord]]


def profile_records(
    rows: Iterable[tuple[Any, ...]], refs: Mapping[int, str], problems: Problems
) -> dict[int, list[ProfileRecord]]:
    """Turn raw profile entry rows into records, checking each row's columns against its body.

    The ledger holds the body only; ``entry_id``, ``section`` and ``recorded_at``
    repeat its ``id``, ``section`` and ``provenance.recorded_at`` (the same time
    the writer puts in both), so a column that disagrees was edited. A body that
    is not a JSON object is a problem for its row, never a crash.

    Args:
        rows: ``(version id, entry_id, section, body, amendment_id, recorded_at)``.
        refs: ``{version id: name@version}``.
        problems: where findings go.
    """
    out: dict[int, list[ProfileRecord]] = {}
    for vid, entry_id, section, raw, amendment_id, recorded_at in rows:
        where = f"profile entry {refs.get(vid, f'id {vid}')}#{entry_id}"
        body = _json_object(raw)
        if body is None:
            problems.add("state", where, "its body is not a JSON object")
            continue
        provenance = body.get("provenance")
        stated = provenance.get("recorded_at") if isinstance(provenance, dict) else None
        differing = [
            name
            for name, column, value in (
                ("entry_id", entry_id, body.get("id")),
                ("section", section, body.get("section")),
                ("recorded_at", recorded_at, stated),
            )
            if column != value
        ]
        if differing:
            problems.add(
                "state", where, f"its columns disagree with its body: {', '.join(differing)}"
            )
        record = ProfileRecord(entry_id, section, body, amendment_id, recorded_at)
        out.setdefault(vid, []).append(record)
    return out


def _json_object(raw: Any) -> dict[str, Any] | None:
    try:
        value = json.loads(raw)
    except (TypeError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def check_profiles(
    exp: Expected,
    versions: Sequence[tuple[int, Version]] | None,
    refs: Mapping[int, str],
    rows: ProfileRows,
    problems: Problems,
) -> None:
    """Compare profile entries, amendments and cards; re-seal published baselines."""
    entries = {
        f"{refs.get(vid, vid)}#{r.entry_id}": r.body for vid, rs in rows.records.items() for r in rs
    }
    compare("profile entry", exp.profiles, entries, problems)
    if rows.amendments is not None:
        amendments = {
            f"{refs.get(vid, vid)}#{a.id}": a.to_dict()
            for vid, ams in rows.amendments.items()
            for a in ams
        }
        compare("amendment", exp.amendments, amendments, problems)
    cards = {f"{refs.get(vid, vid)}#{c.card_id}": c.state() for vid, c in rows.cards}
    compare("card", exp.cards, cards, problems)
    empty = baseline_digest([])  # most versions: computed once, not once each
    for vid, version in versions or []:
        if version.baseline_digest is None:
            continue
        records = rows.records.get(vid)
        try:
            sealed = baseline_digest(records) if records else empty
        except (KeyError, TypeError):  # a body without an id: it differs from the ledger too
            sealed = None
        if sealed != version.baseline_digest:
            problems.add(
                "state",
                f"baseline of {version.ref}",
                "the baseline entries no longer hash to the digest sealed at publish",
            )


def compare(
    label: str, expected: dict[str, Any], actual: dict[str, Any], problems: Problems
) -> None:
    """Report keys missing on either side and values that differ."""
    for key in expected.keys() - actual.keys():
        _missing(label, key, problems)
    for key, value in actual.items():
        _compare_one(label, key, expected.get(key, _ABSENT), value, problems)


def _compare_one(label: str, key: str, expected: Any, actual: Any, problems: Problems) -> None:
    if expected is _ABSENT:
        problems.add("state", f"{label} {key}", "present in the database without a ledger entry")
    elif expected != actual:
        problems.add(
            "state", f"{label} {key}", f"differs from the ledger in: {_diff(expected, actual)}"
        )


def _diff(expected: Any, actual: Any) -> str:
    if not isinstance(expected, Mapping) or not isinstance(actual, Mapping):
        return "its whole value"  # a tampered row that is not even an object
    keys = set(expected) | set(actual)
    return ", ".join(sorted(str(k) for k in keys if expected.get(k) != actual.get(k)))


def _missing(label: str, key: str, problems: Problems) -> None:
    problems.add("state", f"{label} {key}", "recorded in the ledger but missing from the database")


def _manifest_digest(rows: Iterable[FileRow]) -> str | None:
    try:
        return manifest_digest(rows)
    except (CharterError, TypeError, ValueError, AttributeError):
        return None
