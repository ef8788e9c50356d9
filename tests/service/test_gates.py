"""Gates, sign-off, promotion and rollback through the service."""

from __future__ import annotations

import threading
import time
from datetime import timedelta, timezone
from pathlib import Path

import pytest

from charter.domain.entities import parse_time
from charter.domain.errors import (
    ConflictError,
    ForbiddenError,
    GateRefusedError,
    ImmutableError,
    InvalidInputError,
)
from charter.domain.profile import parse_document
from charter.sdk import open_registry
from charter.service import Registry
from charter.settings import Settings

GOOD = """
evaluations:
  - {name: accuracy, value: 0.91}
  - {name: accuracy, value: 0.80, slice: "thal=fixed"}
bias_audits:
  - sensitive_feature: sex
    metric: selection_rate
    groups: [{group: f, value: 0.45, size: 98}, {group: m, value: 0.50, size: 205}]
adversarial:
  - {pack: {name: charter-default, version: "1"}, target: t, attempts: 100, hits: 1}
"""

UNFAIR = GOOD.replace("value: 0.45, size: 98", "value: 0.30, size: 98")

POLICY = """
schema: charter.policy/v1
stages: [staging, production]
rules:
  staging:
    metrics: [{metric: accuracy, min: 0.85}]
  production:
    regression:
      - {metric: accuracy, slice: "thal=fixed", against: production, max_drop: 0.02}
"""


def as_user(settings: Settings, user: str) -> Registry:
    return open_registry(settings=settings.model_copy(update={"user": user}))


@pytest.fixture
def team(registry: Registry, settings: Settings) -> Registry:
    """alice (admin, from init) adds bob and carol as approvers, dave as contributor."""
    registry.add_user(name="bob", role="approver")
    registry.add_user(name="carol", role="approver")
    registry.add_user(name="dave", role="contributor")
    registry.set_policy(text=POLICY)
    return registry


def _publish(reg: Registry, artifact: Path, version: str, profile: str, **kw: object) -> None:
    reg.register(model="dx", path=artifact, version=version, profile=parse_document(profile),
                 **kw)  # type: ignore[arg-type]  # fmt: skip
    reg.publish(model="dx", version=version)


def test_a_passing_gate_promotes_and_is_recorded(team: Registry, artifact: Path) -> None:
    team.create_model(name="dx", risk_tier="low")
    _publish(team, artifact, "1.0.0", GOOD)
    decision_id, decision = team.gate(model="dx", version="1.0.0", stage="staging")
    assert decision.passed, decision.to_dict()
    move = team.promote(model="dx", version="1.0.0", stage="staging")
    assert (move.version, move.action, move.generation) == ("1.0.0", "promote", 1)
    assert move.gate_decision_id is not None and move.gate_decision_id > decision_id
    assert team.stages(model="dx") == [
        {"model": "dx", "stage": "staging", "version": "1.0.0", "generation": 1,
         "assigned_by": "alice", "assigned_at": move.at}
    ]  # fmt: skip
    types = [r.type for r in team.audit_log()]
    assert types[-2:] == ["gate.decided", "stage.assigned"]
    assert team.verify().ok


def test_a_failing_gate_refuses_and_changes_no_stage(team: Registry, artifact: Path) -> None:
    team.create_model(name="dx", risk_tier="low")
    _publish(team, artifact, "1.0.0", GOOD.replace("value: 0.91", "value: 0.70"))
    with pytest.raises(GateRefusedError) as err:
        team.promote(model="dx", version="1.0.0", stage="staging")
    assert "accuracy" in err.value.message and "0.85" in err.value.message
    assert team.stages(model="dx") == []
    assert [r.type for r in team.audit_log()][-1] == "gate.decided"  # the refusal is recorded


def test_high_tier_needs_fairness_and_two_distinct_approvers(
    team: Registry, settings: Settings, artifact: Path
) -> None:
    team.create_model(name="dx", risk_tier="high")
    _publish(team, artifact, "1.0.0", UNFAIR)
    _, decision = team.gate(model="dx", version="1.0.0", stage="staging")
    failed = " ".join(f.message for f in decision.failures)
    assert "0.6" in failed and "f" in failed  # names the group and the ratio
    _publish(team, artifact, "1.1.0", GOOD, parent="1.0.0")
    team.render_card(model="dx", version="1.1.0")
    with pytest.raises(GateRefusedError, match="approv"):
        team.promote(model="dx", version="1.1.0", stage="production")
    with pytest.raises(ForbiddenError, match="separation of duties"):
        team.approve(model="dx", version="1.1.0", stage="production", comment="mine")
    with pytest.raises(ForbiddenError, match="approver role"):
        as_user(settings, "dave").approve(
            model="dx", version="1.1.0", stage="production", comment="lgtm"
        )
    as_user(settings, "bob").approve(model="dx", version="1.1.0", stage="production", comment="ok")
    pending = team.pending_approvals()
    rows = {(p["ref"], p["stage"]): p for p in pending}
    assert rows[("dx@1.1.0", "production")]["also_failing"] == []
    assert rows[("dx@1.0.0", "staging")]["also_failing"]  # unfair, and unapproved
    as_user(settings, "carol").approve(
        model="dx", version="1.1.0", stage="production", comment="evidence reviewed"
    )
    move = team.promote(model="dx", version="1.1.0", stage="production")
    assert len(move.approval_ids) == 2
    assert team.verify().ok


def test_a_reject_blocks_until_the_profile_changes(
    team: Registry, settings: Settings, artifact: Path
) -> None:
    team.create_model(name="dx", risk_tier="medium")
    _publish(team, artifact, "1.0.0", GOOD)
    team.render_card(model="dx", version="1.0.0")
    bob = as_user(settings, "bob")
    bob.approve(
        model="dx", version="1.0.0", stage="production", comment="no slice CI", decision="reject"
    )
    as_user(settings, "carol").approve(
        model="dx", version="1.0.0", stage="production", comment="fine"
    )
    with pytest.raises(GateRefusedError, match="rejected by bob"):
        team.promote(model="dx", version="1.0.0", stage="production")
    doc = parse_document("evaluations: [{name: accuracy, value: 0.8, slice: 'thal=fixed',"
                         " ci: {low: 0.7, high: 0.88}, supersedes: eval-2}]")  # fmt: skip
    team.amend_profile(model="dx", version="1.0.0", document=doc, reason="added CI")
    team.render_card(model="dx", version="1.0.0")
    with pytest.raises(GateRefusedError, match="0 of 1"):  # old approvals do not carry over
        team.promote(model="dx", version="1.0.0", stage="production")
    bob.approve(model="dx", version="1.0.0", stage="production", comment="CI added, thanks")
    assert team.promote(model="dx", version="1.0.0", stage="production").version == "1.0.0"


def test_slice_regression_against_production_is_caught(team: Registry, artifact: Path) -> None:
    team.create_model(name="dx", risk_tier="low")
    _publish(team, artifact, "1.0.0", GOOD)
    team.promote(model="dx", version="1.0.0", stage="production")
    worse = GOOD.replace("value: 0.80, slice", "value: 0.70, slice").replace("0.91", "0.95")
    _publish(team, artifact, "1.1.0", worse, parent="1.0.0")
    with pytest.raises(GateRefusedError, match="thal=fixed"):
        team.promote(model="dx", version="1.1.0", stage="production")
    assert team.stages(model="dx")[0]["version"] == "1.0.0"


def test_the_production_holder_is_judged_against_the_version_it_replaced(
    team: Registry, artifact: Path
) -> None:
    # Re-judged in production (monitoring, a new policy), a version is compared with
    # the one it replaced there, as at its promotion: never with itself.
    team.create_model(name="dx", risk_tier="low")
    _publish(team, artifact, "1.0.0", GOOD)
    team.promote(model="dx", version="1.0.0", stage="production")
    _publish(team, artifact, "1.1.0", GOOD, parent="1.0.0")
    team.promote(model="dx", version="1.1.0", stage="production")
    worse = parse_document("evaluations: [{name: accuracy, value: 0.70, slice: 'thal=fixed'}]")
    team.observe(model="dx", version="1.1.0", document=worse, reason="production, week 2")
    _, held = team.gate(model="dx", version="1.1.0", stage="production")
    (finding,) = [f for f in held.findings if "regression" in f.rule]
    assert held.reference == "dx@1.0.0"
    assert not finding.passed and finding.observed["reference"] == 0.80
    assert "on dx@1.0.0 (eval-2, production before it): worse by +0.1" in finding.message
    team.rollback(model="dx", stage="production", reason="slice regression")
    # Restored by a rollback, 1.0.0 keeps the predecessor of its promotion: none.
    _, restored = team.gate(model="dx", version="1.0.0", stage="production")
    (finding,) = [f for f in restored.findings if "regression" in f.rule]
    assert restored.reference is None and finding.passed
    assert finding.message == (
        "dx@1.0.0 holds production and replaced no version there: nothing to regress against"
    )
    _, candidate = team.gate(model="dx", version="1.1.0", stage="production")
    assert candidate.reference == "dx@1.0.0" and not candidate.passed


def test_concurrent_promotions_have_one_winner(
    team: Registry, settings: Settings, artifact: Path
) -> None:
    team.create_model(name="dx", risk_tier="low")
    _publish(team, artifact, "1.0.0", GOOD)
    _publish(team, artifact, "1.0.1", GOOD, parent="1.0.0")
    barrier = threading.Barrier(2)
    results: list[object] = []

    def promote(version: str) -> None:
        reg = open_registry(settings=settings)
        barrier.wait()
        try:
            results.append(reg.promote(model="dx", version=version, stage="staging"))
        except ConflictError as exc:
            results.append(exc)
        finally:
            reg.close()

    threads = [threading.Thread(target=promote, args=(v,)) for v in ("1.0.0", "1.0.1")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    conflicts = [r for r in results if isinstance(r, ConflictError)]
    assert len(results) == 2 and len(conflicts) <= 1
    history = team.stage_history(model="dx", stage="staging")
    # each winner moved the pointer exactly once from the generation it read
    assert [m.generation for m in history] == list(range(1, len(history) + 1))
    assert team.verify().ok


def test_rollback_paths(team: Registry, settings: Settings, artifact: Path) -> None:
    team.create_model(name="dx", risk_tier="low")
    _publish(team, artifact, "1.0.0", GOOD)
    team.promote(model="dx", version="1.0.0", stage="production")
    _publish(team, artifact, "1.1.0", GOOD, parent="1.0.0")
    team.promote(model="dx", version="1.1.0", stage="production")
    moment = team.stage_history(model="dx", stage="production")[-1].at
    time.sleep(0.002)
    back = team.rollback(model="dx", stage="production", reason="monitoring: slice regression")
    assert (back.version, back.action) == ("1.0.0", "rollback")
    assert team.audit_log()[-1].type == "stage.rolled_back"
    held = team.stage_at(model="dx", stage="production", time=moment)
    assert held is not None and held.version == "1.1.0"
    assert team.stage_at(model="dx", stage="production", time="2000-01-01T00:00:00.000000Z") is None
    # Any ISO-8601 form names an instant: the same moment two hours west, and a date.
    west = parse_time(moment).astimezone(timezone(timedelta(hours=-2))).isoformat()
    assert team.stage_at(model="dx", stage="production", time=west) == held
    assert team.stage_at(model="dx", stage="production", time="2000-01-01") is None
    with pytest.raises(InvalidInputError, match="invalid time"):
        team.stage_at(model="dx", stage="production", time="garbage")
    _publish(team, artifact, "1.2.0", GOOD, parent="1.1.0")
    dave = as_user(settings, "dave")
    with pytest.raises(GateRefusedError, match="never passed"):
        dave.rollback(model="dx", stage="production", to="1.2.0", reason="try")
    with pytest.raises(ForbiddenError):
        dave.rollback(model="dx", stage="production", to="1.2.0", reason="try", force=True)
    forced = team.rollback(model="dx", stage="production", to="1.2.0", reason="hotfix", force=True)
    assert forced.version == "1.2.0"
    with pytest.raises(InvalidInputError, match="nothing to roll back"):
        team.rollback(model="dx", stage="staging", reason="x")
    assert team.verify().ok


def test_deprecated_and_draft_versions_are_never_promoted(team: Registry, artifact: Path) -> None:
    team.create_model(name="dx", risk_tier="low")
    team.register(model="dx", path=artifact, version="0.9.0")
    with pytest.raises(InvalidInputError, match="draft"):
        team.promote(model="dx", version="0.9.0", stage="staging")
    with pytest.raises(InvalidInputError, match="draft"):
        team.approve(model="dx", version="0.9.0", stage="staging", comment="x")
    _publish(team, artifact, "1.0.0", GOOD)
    team.deprecate(model="dx", version="1.0.0", reason="trained on leaked labels")
    with pytest.raises(ImmutableError, match="deprecated"):
        team.promote(model="dx", version="1.0.0", stage="staging")


def test_policies_are_validated_and_admin_only(team: Registry, settings: Settings) -> None:
    with pytest.raises(InvalidInputError, match="line"):
        team.set_policy(text="schema: charter.policy/v1\nstages: [a\n")
    with pytest.raises(InvalidInputError, match="no evaluator produces"):
        team.set_policy(text=POLICY.replace("min: 0.85", "min: 0.85}, {metric: acuracy, min: 1"))
    with pytest.raises(InvalidInputError, match=r"unknown stage|declares"):
        team.set_policy(text=POLICY.replace("against: production", "against: canary"))
    with pytest.raises(ForbiddenError):
        as_user(settings, "bob").set_policy(text=POLICY)
    digest, _, scope = team.policy()
    assert scope == "registry default" and digest.startswith("sha256:")
