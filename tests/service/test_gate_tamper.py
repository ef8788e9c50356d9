"""`audit verify` catches edits to sign-off state: decisions, approvals, stages, users…"""

from __future__ import annotations

from pathlib import Path

import pytest

from _postgres import raw_database
from charter.domain.profile import parse_document
from charter.sdk import open_registry
from charter.service import Registry
from charter.settings import Settings

GOOD = "evaluations: [{name: accuracy, value: 0.9}]"


@pytest.fixture
def home(registry: Registry, settings: Settings, artifact: Path) -> Path:
    registry.add_user(name="bob", role="approver")
    registry.set_policy(text="schema: charter.policy/v1\nstages: [staging, production]\n")
    registry.create_model(name="m", risk_tier="medium")
    for version, parent in (("1.0.0", None), ("1.1.0", "1.0.0")):
        registry.register(model="m", path=artifact, version=version, parent=parent,
                          profile=parse_document(GOOD))  # fmt: skip
        registry.publish(model="m", version=version)
        registry.render_card(model="m", version=version)
        with open_registry(settings=settings.model_copy(update={"user": "bob"})) as bob:
            bob.approve(model="m", version=version, stage="production", comment="ok")
        registry.promote(model="m", version=version, stage="production")
    registry.rollback(model="m", stage="production", reason="incident")
    registry.deprecate(model="m", version="1.1.0", reason="regressed")
    # json.dumps echoes each probe back: a (very leaky) real target for a real run.
    registry.set_model_target(model="m", target={"kind": "callable", "function": "json:dumps"})
    registry.redteam(model="m", version="1.0.0", max_probes=6)
    assert registry.verify().ok, registry.verify().problems
    return registry.settings.home


def _attack(settings: Settings, statement: str) -> None:
    with raw_database(settings.resolved_database_url) as db:
        db.execute(statement)


@pytest.mark.parametrize(
    ("statement", "where"),
    [
        ("UPDATE gate_decisions SET passed = NOT passed WHERE id = 1", "gate decision 1"),
        ("UPDATE gate_decisions SET document = replace(document, '\"passed\": true',"
         " '\"passed\": false') WHERE id = 1", "gate decision 1"),
        ("DELETE FROM gate_decisions WHERE id = 2", "gate decision 2"),
        ('UPDATE approvals SET "user" = \'mallory\'', "approval"),
        ("DELETE FROM approvals WHERE id = 1", "approval 1"),
        ("UPDATE stages SET version_id = (SELECT max(id) FROM versions)", "stage m/production"),
        ("DELETE FROM stage_history WHERE generation = 3", "stage move m/production#3"),
        ("UPDATE users SET role = 'admin' WHERE name = 'bob'", "user bob"),
        ("INSERT INTO users VALUES ('eve', 'admin', 'eve', 'x')", "user eve"),
        ("UPDATE policies SET text = replace(text, 'production', 'prod')", "policy"),
        ("DELETE FROM version_status", "status of m@1.1.0"),
        ("UPDATE evaluation_runs SET document = replace(document, 'redteam', 'manual')",
         "evaluation run"),
        ("UPDATE model_targets SET document = replace(document, 'json', 'os')",
         "red-team target of m"),
        ("DELETE FROM policy_assignments", "policy assignment *"),
    ],
)  # fmt: skip
def test_sign_off_tampering_is_reported(
    home: Path, settings: Settings, statement: str, where: str
) -> None:
    _attack(settings, statement)
    with open_registry(settings=settings) as reg:
        report = reg.verify()
    assert not report.ok
    assert any(where in p.where for p in report.problems), report.problems
