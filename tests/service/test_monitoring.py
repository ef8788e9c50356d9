"""Production observations: monitoring amendments, at-risk flags and their audit trail."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import update

from charter.domain.errors import InvalidInputError
from charter.domain.profile import entries_from_metrics, parse_document
from charter.service import Registry
from charter.store import schema as t

PROFILE = """
evaluations:
  - {name: accuracy, value: 0.91}
  - {name: accuracy, value: 0.82, slice: "thal=fixed"}
"""

POLICY = """
schema: charter.policy/v1
stages: [staging, production]
rules:
  production:
    metrics:
      - {metric: accuracy, min: 0.85}
      - {metric: accuracy, slice: "thal=fixed", min: 0.75}
"""

# The policy for high-risk models asks approvals: an observation restarts the round.
POLICY_WITH_APPROVALS = (
    POLICY
    + """
    approvals: {min: 1}
"""
)


def _deploy(reg: Registry, artifact: Path, policy: str = POLICY, tier: str = "low") -> None:
    reg.set_policy(text=policy)
    reg.create_model(name="dx", risk_tier=tier)
    reg.register(model="dx", path=artifact, version="1.0.0", profile=parse_document(PROFILE))
    reg.publish(model="dx", version="1.0.0")


def _slice(value: float) -> str:
    return f"""
evaluations:
  - {{name: accuracy, value: {value}, slice: "thal=fixed", samples: 40}}
"""


def test_a_regressing_observation_flags_the_version_and_a_good_one_clears_it(
    registry: Registry, artifact: Path
) -> None:
    _deploy(registry, artifact)
    registry.promote(model="dx", version="1.0.0", stage="production")
    seen = registry.observe(model="dx", version="1.0.0", document=parse_document(_slice(0.61)),
                            reason="prod monitor, week 12")  # fmt: skip
    assert seen.at_risk and seen.changed and list(seen.findings) == ["production"]
    (finding,) = seen.findings["production"]
    assert "thal=fixed" in finding["rule"] and finding["observed"] == pytest.approx(0.61)
    assert registry.at_risk()[0]["ref"] == "dx@1.0.0"
    entries = registry.profile(model="dx", version="1.0.0").entries
    assert entries[-1].body["provenance"]["source"] == "monitoring"
    assert registry.audit_log()[-1].type == "version.at_risk"
    # The same bad news again changes nothing; good news clears the flag.
    again = registry.observe(model="dx", version="1.0.0", document=parse_document(_slice(0.6)),
                             reason="week 13")  # fmt: skip
    assert again.at_risk and not again.changed
    cleared = registry.observe(model="dx", version="1.0.0", document=parse_document(_slice(0.8)),
                               reason="week 14, after retraining the slice")  # fmt: skip
    assert not cleared.at_risk and cleared.changed and registry.at_risk() == []
    assert registry.audit_log()[-1].type == "version.risk_cleared"
    assert registry.verify().ok


def test_sign_off_findings_never_flag_a_version(registry: Registry, artifact: Path) -> None:
    registry.add_user(name="bob", role="approver")
    _deploy(registry, artifact, POLICY_WITH_APPROVALS)
    registry.as_user("bob").approve(model="dx", version="1.0.0", stage="production",
                                    comment="ok")  # fmt: skip
    registry.promote(model="dx", version="1.0.0", stage="production")
    week = entries_from_metrics("accuracy: 0.9")
    seen = registry.observe(model="dx", version="1.0.0", document=week, reason="week 1")
    # The amendment restarts the approval round, but the evidence still passes.
    assert not seen.at_risk and seen.findings == {} and "production" in seen.decisions


def test_a_version_in_no_stage_is_recorded_but_not_judged(
    registry: Registry, artifact: Path
) -> None:
    _deploy(registry, artifact)
    seen = registry.observe(model="dx", version="1.0.0", document=parse_document(_slice(0.1)),
                            reason="shadow traffic")  # fmt: skip
    assert not seen.at_risk and seen.decisions == {}


def test_bad_observations_change_nothing(registry: Registry, artifact: Path) -> None:
    registry.create_model(name="dx")
    registry.register(model="dx", path=artifact, version="1.0.0")
    size = registry.audit_log()[-1].seq
    with pytest.raises(InvalidInputError, match="draft"):
        registry.observe(model="dx", version="1.0.0", document=parse_document(_slice(0.5)),
                         reason="x")  # fmt: skip
    registry.publish(model="dx", version="1.0.0")
    size = registry.audit_log()[-1].seq
    with pytest.raises(InvalidInputError, match="reason"):
        registry.observe(model="dx", version="1.0.0", document=parse_document(_slice(0.5)),
                         reason=" ")  # fmt: skip
    assert registry.audit_log()[-1].seq == size


def test_audit_catches_an_erased_flag(registry: Registry, artifact: Path) -> None:
    _deploy(registry, artifact)
    registry.promote(model="dx", version="1.0.0", stage="production")
    registry.observe(model="dx", version="1.0.0", document=parse_document(_slice(0.5)),
                     reason="week 2")  # fmt: skip
    assert registry.verify().ok
    engine = registry.store.engine
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.exec_driver_sql("DROP TRIGGER version_flags_no_update")
        else:
            conn.exec_driver_sql("ALTER TABLE version_flags DISABLE TRIGGER USER")
        conn.execute(update(t.version_flags).values(at_risk=False))
    report = registry.verify()
    assert not report.ok and any("monitoring flag" in p.where for p in report.problems)
