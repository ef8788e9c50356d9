"""Profiles through the service: baseline sealing, amendments, as-of views."""

from __future__ import annotations

import time
from datetime import timedelta, timezone
from pathlib import Path

import pytest

from _postgres import raw_database
from charter.domain.entities import format_time, parse_time
from charter.domain.errors import ImmutableError, InvalidInputError, NotFoundError
from charter.domain.profile import parse_document
from charter.service import Registry

BASE = """
evaluations:
  - {name: accuracy, value: 0.90}
  - {name: accuracy, value: 0.70, slice: "thal=fixed"}
constraints: {max_output_chars: 500}
"""


@pytest.fixture
def published(registry: Registry, artifact: Path) -> Registry:
    registry.create_model(name="m")
    registry.register(model="m", path=artifact, version="1.0.0", profile=parse_document(BASE))
    registry.publish(model="m", version="1.0.0")
    return registry


def test_register_with_profile_assigns_ids_and_provenance(published: Registry) -> None:
    profile = published.profile(model="m", version="1.0.0")
    ids = [e.id for e in profile.entries]
    assert ids == ["eval-1", "eval-2", "cons-1"]
    first = profile.section("evaluations")[0]
    assert first["provenance"]["recorded_by"] == "alice"
    assert profile.baseline_digest is not None
    assert profile.baseline_digest == profile.digest  # nothing amended yet


def test_publish_seals_the_baseline_in_the_ledger(published: Registry) -> None:
    v = published.get_version(model="m", version="1.0.0")
    published_entry = [r for r in published.audit_log() if r.type == "version.published"][-1]
    assert v.baseline_digest is not None
    assert v.baseline_digest.encode() in published_entry.body
    with pytest.raises(ImmutableError):
        published.add_profile(model="m", version="1.0.0", document=parse_document(BASE))


@pytest.mark.local_only(reason="raw SQL against the registry's database")
@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE profile_entries SET body = '{}'",
        "DELETE FROM profile_entries",
        "INSERT INTO profile_entries VALUES (1, 'eval-9', 'evaluations', '{}', NULL, 'x')",
    ],
)
def test_the_database_refuses_to_edit_a_sealed_baseline(
    published: Registry, statement: str
) -> None:
    url = published.settings.resolved_database_url
    with raw_database(url, drop_triggers=False, commit=False) as db:  # noqa: SIM117 - uses db
        with pytest.raises(db.Error, match=r"sealed|never edited|permanent"):
            db.execute(statement)


def test_amendments_fold_supersede_and_retract(published: Registry) -> None:
    doc = parse_document(
        """
evaluations:
  - {name: accuracy, value: 0.65, slice: "thal=fixed", supersedes: eval-2}
adversarial:
  - {pack: {name: default, version: "2"}, target: prod, attempts: 20, hits: 1}
evidence: ["https://monitoring.example/run/1"]
"""
    )
    am = published.amend_profile(model="m", version="1.0.0", document=doc, reason="new slice run")
    assert am.id == "am-1" and am.entry_ids == ("eval-3", "adv-1")
    retract = parse_document("retracts: [cons-1]")
    published.amend_profile(model="m", version="1.0.0", document=retract, reason="wrong limit")
    profile = published.profile(model="m", version="1.0.0")
    assert [e.id for e in profile.entries] == ["eval-1", "eval-3", "adv-1"]
    assert profile.superseded == (("eval-2", "eval-3"),)
    assert profile.retracted == (("cons-1", "am-2"),)
    assert profile.digest != profile.baseline_digest
    baseline = published.profile(model="m", version="1.0.0", baseline=True)
    assert [e.id for e in baseline.entries] == ["eval-1", "eval-2", "cons-1"]
    assert baseline.digest == baseline.baseline_digest
    history = published.profile_history(model="m", version="1.0.0")
    assert [h["type"] for h in history] == [
        "profile.entries_added",
        "version.published",
        "profile.amended",
        "profile.amended",
    ]
    assert history[-1]["reason"] == "wrong limit"


def test_as_of_reproduces_what_a_reviewer_saw(published: Registry) -> None:
    before = published.profile(model="m", version="1.0.0")
    moment = published.audit_log()[-1].time
    time.sleep(0.002)  # timestamps have microseconds; make the next one strictly later
    doc = parse_document("evaluations: [{name: accuracy, value: 0.5, supersedes: eval-1}]")
    published.amend_profile(model="m", version="1.0.0", document=doc, reason="regression found")
    then = published.profile(model="m", version="1.0.0", as_of=moment)
    assert then.digest == before.digest
    assert [e.id for e in then.entries] == [e.id for e in before.entries]
    now = published.profile(model="m", version="1.0.0")
    assert [e.id for e in now.entries] == ["eval-2", "cons-1", "eval-3"]  # in time order


def test_as_of_takes_any_iso_time_and_refuses_garbage(published: Registry) -> None:
    before = published.profile(model="m", version="1.0.0")
    moment = parse_time(published.audit_log()[-1].time)
    time.sleep(0.002)
    doc = parse_document("evaluations: [{name: accuracy, value: 0.5, supersedes: eval-1}]")
    published.amend_profile(model="m", version="1.0.0", document=doc, reason="regression found")
    # The same instant written with an offset: compared as an instant, not as text.
    east = moment.astimezone(timezone(timedelta(hours=5))).isoformat()
    then = published.profile(model="m", version="1.0.0", as_of=east)
    assert then.digest == before.digest and then.as_of == format_time(moment)
    day_before = (moment - timedelta(days=1)).date().isoformat()  # a bare date: midnight UTC
    assert not published.profile(model="m", version="1.0.0", as_of=day_before).entries
    for garbage in ("garbage", "2026-13-01", "0001-01-01T00:00:00+01:00"):
        with pytest.raises(InvalidInputError, match="invalid time"):
            published.profile(model="m", version="1.0.0", as_of=garbage)


@pytest.mark.parametrize(
    ("text", "reason", "error"),
    [
        ("retracts: [eval-9]", "r", NotFoundError),
        ("evaluations: [{name: a, value: 0.1, supersedes: eval-7}]", "r", NotFoundError),
        ("evaluations: [{name: a, value: 0.1, supersedes: cons-1}]", "r", InvalidInputError),
        ("evaluations: [{name: a, value: 0.1}]", "  ", InvalidInputError),
        ("evidence: [x]", "r", InvalidInputError),
        ("evaluations: [{id: eval-1, name: a, value: 0.1}]", "r", InvalidInputError),
    ],
)
def test_bad_amendments_change_nothing(
    published: Registry, text: str, reason: str, error: type[Exception]
) -> None:
    before = len(published.audit_log())
    with pytest.raises(error):
        published.amend_profile(
            model="m", version="1.0.0", document=parse_document(text), reason=reason
        )
    assert len(published.audit_log()) == before
    assert len(published.profile(model="m", version="1.0.0").entries) == 3


def test_drafts_take_additions_not_amendments(registry: Registry, artifact: Path) -> None:
    registry.create_model(name="m")
    registry.register(model="m", path=artifact, version="1.0.0")
    doc = parse_document("evaluations: [{name: accuracy, value: 0.9}]")
    with pytest.raises(InvalidInputError):
        registry.amend_profile(model="m", version="1.0.0", document=doc, reason="x")
    added = registry.add_profile(model="m", version="1.0.0", document=doc)
    assert [b["id"] for b in added] == ["eval-1"]
    again = registry.add_profile(model="m", version="1.0.0", document=doc)
    assert [b["id"] for b in again] == ["eval-2"]
    registry.publish(model="m", version="1.0.0")
    assert len(registry.profile(model="m", version="1.0.0", baseline=True).entries) == 2


def test_an_amendment_across_sections_verifies(published: Registry) -> None:
    """Regression: entry ids of a multi-section amendment read back in ledger order."""
    doc = parse_document(
        "evaluations: [{name: toxicity_rate, value: 0.01}]\n"
        "adversarial: [{pack: {name: p, version: '1'}, target: t, attempts: 4, hits: 1}]\n"
        "bias_audits: [{sensitive_feature: s, metric: selection_rate,"
        " groups: [{group: a, value: 0.5, size: 3}, {group: b, value: 0.4, size: 3}]}]"
    )
    am = published.amend_profile(model="m", version="1.0.0", document=doc, reason="monitoring")
    assert am.entry_ids == ("eval-3", "bias-1", "adv-1")
    assert published.profile(model="m", version="1.0.0").amendments[0].entry_ids == am.entry_ids
    assert published.verify().ok
