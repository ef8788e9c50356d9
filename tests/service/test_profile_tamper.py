"""`audit verify` catches edits to baselines, amendments and cards (raw SQL, triggers dropped)."""

from __future__ import annotations

from pathlib import Path

import pytest

from _postgres import raw_database
from charter.domain.profile import parse_document
from charter.sdk import open_registry
from charter.service import Registry
from charter.settings import Settings

BASE = "evaluations: [{name: accuracy, value: 0.9}, {name: accuracy, value: 0.7, slice: 'a=b'}]"


@pytest.fixture
def home(registry: Registry, artifact: Path) -> Path:
    registry.create_model(name="m")
    registry.register(model="m", path=artifact, version="1.0.0", profile=parse_document(BASE))
    registry.publish(model="m", version="1.0.0")
    doc = parse_document("evaluations: [{name: accuracy, value: 0.6, supersedes: eval-2}]")
    registry.amend_profile(model="m", version="1.0.0", document=doc, reason="re-measured")
    registry.render_card(model="m", version="1.0.0")
    assert registry.verify().ok
    return registry.settings.home


def _attack(settings: Settings, *statements: str) -> None:
    with raw_database(settings.resolved_database_url) as db:
        for statement in statements:
            db.execute(statement)


@pytest.mark.parametrize(
    ("statements", "where"),
    [
        (["UPDATE profile_entries SET body = replace(body, '0.9', '0.99')"
          " WHERE entry_id = 'eval-1'"], "eval-1"),
        (["DELETE FROM profile_entries WHERE entry_id = 'eval-2'"], "eval-2"),
        (["UPDATE profile_amendments SET reason = 'nothing to see'"], "am-1"),
        (["DELETE FROM profile_amendments"], "am-1"),
        # moving an amended entry into the baseline breaks both the amendment and the seal
        (["UPDATE profile_entries SET amendment_id = NULL WHERE entry_id = 'eval-3'"], "am-1"),
        (["UPDATE model_cards SET profile_digest = 'sha256:' || substr(digest, 8)"], "card-1"),
        (["INSERT INTO profile_entries SELECT version_id, 'eval-9', section, body, NULL,"
          " recorded_at FROM profile_entries WHERE entry_id = 'eval-1'"], "eval-9"),
    ],
)  # fmt: skip
def test_profile_tampering_is_reported(
    home: Path, settings: Settings, statements: list[str], where: str
) -> None:
    _attack(settings, *statements)
    with open_registry(settings=settings) as reg:
        report = reg.verify()
    assert not report.ok
    assert any(where in p.where for p in report.problems), report.problems


def test_a_rewritten_baseline_no_longer_matches_its_seal(home: Path, settings: Settings) -> None:
    """Even rewriting the baseline rows *and* their ledger-side copy is caught by the seal."""
    _attack(settings, "UPDATE profile_entries SET body = replace(body, '0.9', '0.95')"
                  " WHERE entry_id = 'eval-1'")  # fmt: skip
    with open_registry(settings=settings) as reg:
        problems = reg.verify().problems
    assert any("baseline of m@1.0.0" in p.where for p in problems)
