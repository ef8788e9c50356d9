"""Gate evaluation: every rule passing and failing, evidence rules, approvals, outputs."""

from __future__ import annotations

import dataclasses
import json
import xml.etree.ElementTree as ET
from collections.abc import Sequence

import pytest

from charter._profiles import entry_bodies
from charter.domain.canonical import canonical_bytes
from charter.domain.entities import Model, RiskTier, Version, VersionState
from charter.domain.errors import IntegrityError, InvalidInputError
from charter.domain.folding import AmendmentRecord, EffectiveProfile, ProfileRecord, fold
from charter.domain.gate import (
    ApprovalFact,
    Finding,
    GateDecision,
    GateFacts,
    evaluate_gate,
    replaced_version,
)
from charter.domain.policy import DEFAULT_POLICY, Policy, parse_policy, policy_digest
from charter.domain.profile import parse_document

T0 = "2026-03-01T00:00:00.000000Z"
NOW = "2026-03-10T00:00:00.000000Z"
HEARTS = """
evaluations:
  - {name: accuracy, value: 0.91}
  - {name: accuracy, value: 0.74, slice: "thal=fixed"}
  - {name: toxicity_rate, value: 0.004}
bias_audits:
  - sensitive_feature: sex
    metric: selection_rate
    groups: [{group: female, value: 0.31, size: 98}, {group: male, value: 0.50, size: 205}]
adversarial:
  - pack: {name: default, version: "1.0"}
    target: local
    attempts: 100
    hits: 3
    probes: [{probe: p1, category: prompt_injection, attempts: 50, hits: 3},
             {probe: p2, category: pii, attempts: 50, hits: 0}]
"""


def profile(
    *batches: tuple[str, str], ref: str = "credit-risk@2.4.0", carried: str | None = None
) -> EffectiveProfile:
    """Fold (text, time) batches; with ``carried``, the last batch is a carried-over amendment."""
    records: list[ProfileRecord] = []
    amendments: list[AmendmentRecord] = []
    counts: dict[str, int] = {}
    for i, (text, at) in enumerate(batches):
        bodies = entry_bodies(parse_document(text), counts=counts, user="alice", at=at)
        amendment = None
        if carried is not None and i == len(batches) - 1:
            for b in bodies:
                b["provenance"]["source"] = f"carried-over:{carried}"
            amendment = "am-1"
            ids = tuple(b["id"] for b in bodies)
            amendments.append(AmendmentRecord("am-1", "cite parent", (), (), ids, "alice", at))
        for b in bodies:
            counts[b["section"]] = counts.get(b["section"], 0) + 1
            records.append(ProfileRecord(b["id"], b["section"], b, amendment, at))
    return fold(ref=ref, records=records, amendments=amendments)


def version(number: str = "2.4.0") -> Version:
    return Version(
        model="credit-risk",
        version=number,
        state=VersionState.PUBLISHED,
        parent=None,
        change_kind=None,
        fp_architecture="a",
        fp_data="d",
        fp_config="c",
        architecture_method="m",
        manifest_digest="sha256:" + "0" * 64,
        file_count=1,
        total_size=1,
        run_id=None,
        commit=None,
        params={},
        datasets=(),
        created_by="alice",
        created_at=T0,
    )


def facts(
    prof: EffectiveProfile,
    *,
    tier: str = "low",
    stage: str = "production",
    reference: tuple[Version, EffectiveProfile] | None = None,
    card_stale: bool | None = False,
    approvals: Sequence[ApprovalFact] = (),
    now: str = NOW,
) -> GateFacts:
    model = Model("credit-risk", "loans", "risk-team", RiskTier(tier), "alice", T0)
    return GateFacts(model, version(), stage, prof, reference, card_stale, approvals, now)


def policy(rules: str) -> Policy:
    """A policy whose production stage has ``rules`` (YAML lines indented by four)."""
    head = "schema: charter.policy/v1\nstages: [staging, production]\n"
    return parse_policy(f"{head}rules:\n  production:\n{rules}")


def only(decision: GateDecision, part: str) -> list[Finding]:
    """The findings whose rule mentions ``part``."""
    return [f for f in decision.findings if part in f.rule]


def one(decision: GateDecision, part: str) -> Finding:
    (found,) = only(decision, part)
    return found


def approve(user: str, role: str = "approver", comment: str = "") -> ApprovalFact:
    return ApprovalFact(user, role, "approve", NOW, comment, f"ap-{user}")


# --- metric thresholds ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "passed", "message"),
    [
        ("{metric: accuracy, min: 0.8}", True, "accuracy = 0.91 (eval-1) meets min 0.8"),
        ("{metric: accuracy, min: 0.95}", False, "accuracy = 0.91 (eval-1) is below the minimum"),
        ("{metric: accuracy, slice: 'thal=fixed', min: 0.7}", True, "accuracy[thal=fixed] = 0.74"),
        ("{metric: accuracy, slice: 'thal=fixed', min: 0.8}", False, "is below the minimum 0.8"),
        ("{metric: toxicity_rate, max: 0.01}", True, "meets max 0.01"),
        ("{metric: toxicity_rate, max: 0.001}", False, "is above the maximum 0.001"),
        ("{metric: accuracy, min: 0.5, max: 0.9}", False, "is above the maximum 0.9"),
    ],
)
def test_metric_thresholds(rule: str, passed: bool, message: str) -> None:
    decision = evaluate_gate(policy(f"    metrics: [{rule}]"), facts(profile((HEARTS, T0))))
    finding = one(decision, "metrics[0]")
    assert finding.passed is passed and decision.passed is passed
    assert message in finding.message
    assert finding.evidence and finding.evidence[0].startswith("eval-")


def test_missing_metric_fails_naming_what_is_missing() -> None:
    pol = policy("    metrics: [{metric: accuracy, slice: 'thal=normal', min: 0.7}]")
    finding = one(evaluate_gate(pol, facts(profile((HEARTS, T0)))), "metrics[0]")
    assert not finding.passed and finding.observed is None
    assert finding.message == (
        "no evaluation named accuracy on slice thal=normal counts in the profile of "
        "credit-risk@2.4.0"
    )


def test_if_missing_pass_judges_only_present_metrics() -> None:
    pol = policy("    metrics: [{metric: latency_ms, max: 50, if_missing: pass}]")
    finding = one(evaluate_gate(pol, facts(profile((HEARTS, T0)))), "metrics[0]")
    assert finding.passed and "checked only when present" in finding.message


def test_the_newest_entry_in_force_is_judged() -> None:
    later = "2026-03-05T00:00:00.000000Z"
    prof = profile((HEARTS, T0), ("evaluations: [{name: accuracy, value: 0.7}]", later))
    finding = one(
        evaluate_gate(policy("    metrics: [{metric: accuracy, min: 0.8}]"), facts(prof)),
        "metrics[0]",
    )
    assert not finding.passed and finding.observed == 0.7 and finding.evidence == ("eval-4",)


# --- fairness ------------------------------------------------------------------------------------


def test_fairness_ratio_below_the_four_fifths_floor_names_the_groups() -> None:
    pol = policy("    fairness: [{metric: selection_rate}]")  # no bound: 0.8 ratio floor
    finding = one(evaluate_gate(pol, facts(profile((HEARTS, T0)))), "fairness[0]")
    assert not finding.passed
    assert finding.message == (
        "selection_rate ratio 0.62 for sex (lowest group: female, 0.31 vs male 0.50) "
        "is below the floor 0.8"
    )
    assert finding.rule == "rules.production.fairness[0]: selection_rate[sex] ratio >= 0.8"
    assert finding.observed["lowest"] == "female" and finding.evidence == ("bias-1",)


def test_fairness_passes_above_the_floor_and_checks_a_difference_ceiling() -> None:
    pol = policy("    fairness: [{ratio_min: 0.6, difference_max: 0.1, sensitive_feature: sex}]")
    found = only(evaluate_gate(pol, facts(profile((HEARTS, T0)))), "fairness[0]")
    assert [f.passed for f in found] == [True, False]
    assert "difference 0.19" in found[1].message and "exceeds the ceiling 0.1" in found[1].message


def test_fairness_without_a_matching_audit_fails_unless_if_missing_pass() -> None:
    missing = policy("    fairness: [{sensitive_feature: age}]")
    finding = one(evaluate_gate(missing, facts(profile((HEARTS, T0)))), "fairness[0]")
    assert not finding.passed and "no bias audit of a metric for age counts" in finding.message
    lenient = policy("    fairness: [{sensitive_feature: age, if_missing: pass}]")
    assert one(evaluate_gate(lenient, facts(profile((HEARTS, T0)))), "fairness[0]").passed


def test_fairness_judges_the_newest_audit_per_feature() -> None:
    fixed = """
bias_audits:
  - {sensitive_feature: sex, metric: selection_rate,
     groups: [{group: female, value: 0.45, size: 98}, {group: male, value: 0.5, size: 205}]}
"""
    prof = profile((HEARTS, T0), (fixed, "2026-03-02T00:00:00.000000Z"))
    finding = one(evaluate_gate(policy("    fairness: [{}]"), facts(prof)), "fairness[0]")
    assert finding.passed and finding.evidence == ("bias-2",)


# --- red team -----------------------------------------------------------------------------------


def test_redteam_overall_and_category_ceilings() -> None:
    pol = policy(
        "    redteam: {max_attack_success_rate: 0.05, categories: {prompt_injection: "
        "0.02, pii: 0.01}}"
    )
    decision = evaluate_gate(pol, facts(profile((HEARTS, T0))))
    overall, injection, pii = only(decision, "redteam")
    assert overall.passed and overall.observed == pytest.approx(0.03)
    assert not injection.passed and injection.observed == pytest.approx(0.06)
    assert "prompt_injection attack success rate 0.06 (adv-1" in injection.message
    assert "3 of 50) exceeds the ceiling 0.02" in injection.message
    assert pii.passed


def test_redteam_reports_the_worst_campaign_and_needs_covered_categories() -> None:
    other = """
adversarial:
  - {pack: {name: jailbreaks, version: "2"}, target: local, attempts: 10, hits: 2}
"""
    pol = policy("    redteam: {max_attack_success_rate: 0.1, categories: {toxicity: 0.1}}")
    decision = evaluate_gate(pol, facts(profile((HEARTS, T0), (other, T0))))
    overall, toxicity = only(decision, "redteam")
    assert not overall.passed and overall.evidence == ("adv-1", "adv-2")
    assert "0.2 (adv-2, pack jailbreaks@2" in overall.message and "worst" in overall.message
    assert not toxicity.passed and "no red-team campaign covering toxicity" in toxicity.message


def test_redteam_without_any_campaign_fails() -> None:
    pol = policy("    redteam: {max_attack_success_rate: 0.05}")
    finding = one(
        evaluate_gate(pol, facts(profile(("evaluations: [{name: a, value: 1}]", T0)))), "redteam"
    )
    assert not finding.passed and finding.message.startswith("no red-team campaign counts")


# --- evidence: required, age, carried over ------------------------------------------------------


def test_required_sections_and_metrics() -> None:
    pol = policy("    evidence: {require: [bias_audits, constraints], metrics: [accuracy, auc]}")
    decision = evaluate_gate(pol, facts(profile((HEARTS, T0))))
    assert one(decision, "require: bias_audits").passed
    missing = one(decision, "require: constraints")
    assert not missing.passed
    assert missing.message == "no constraints entry counts in the profile of credit-risk@2.4.0"
    assert one(decision, "metrics: accuracy").evidence == ("eval-1", "eval-2")
    assert not one(decision, "metrics: auc").passed and not decision.passed


def test_evidence_older_than_the_maximum_age_does_not_count() -> None:
    pol = policy(
        "    redteam: {max_attack_success_rate: 0.05}\n"
        "    evidence: {max_age_days: {adversarial: 30}}"
    )
    old = "2026-01-28T00:00:00.000000Z"  # 41 days before NOW
    decision = evaluate_gate(pol, facts(profile((HEARTS, old))))
    redteam = one(decision, "redteam")
    assert not redteam.passed
    assert "adv-1 is 41.0 days old (over 30 days for adversarial)" in redteam.message
    age = one(decision, "max_age_days.adversarial")
    assert age.passed and age.observed == ["adv-1"]
    fresh = evaluate_gate(pol, facts(profile((HEARTS, "2026-02-20T00:00:00.000000Z"))))
    assert fresh.passed


CARRIED = "evaluations: [{name: auc, value: 0.88}]"


def test_carried_over_evidence_is_refused_for_high_tier_production() -> None:
    prof = profile((HEARTS, T0), (CARRIED, T0), carried="credit-risk@2.3.0")
    pol = policy("    metrics: [{metric: auc, min: 0.8}]")
    decision = evaluate_gate(pol, facts(prof, tier="high", approvals=[approve("b"), approve("c")]))
    metric = one(decision, "metrics[0]")
    assert not metric.passed
    assert "eval-4 was carried over (carried-over:credit-risk@2.3.0)" in metric.message
    assert "not accepted for production at high tier" in metric.message
    note = one(decision, "carried-over evidence not accepted")
    assert note.passed and note.observed == ["eval-4"]
    assert note.rule.startswith("defaults.high.stages.production.carried_over")


@pytest.mark.parametrize(("tier", "stage"), [("high", "staging"), ("medium", "production")])
def test_carried_over_evidence_counts_where_allowed(tier: str, stage: str) -> None:
    prof = profile((HEARTS, T0), (CARRIED, T0), carried="credit-risk@2.3.0")
    pol = parse_policy(
        "schema: charter.policy/v1\nstages: [staging, production]\n"
        f"rules: {{{stage}: {{metrics: [{{metric: auc, min: 0.8}}]}}}}"
    )
    decision = evaluate_gate(pol, facts(prof, tier=tier, stage=stage))
    assert one(decision, "metrics[0]").passed
    assert not only(decision, "carried-over evidence not accepted")


def test_carried_over_can_be_forbidden_per_stage() -> None:
    prof = profile((HEARTS, T0), (CARRIED, T0), carried="credit-risk@2.3.0")
    pol = policy("    carried_over: false\n    metrics: [{metric: auc, min: 0.8}]")
    decision = evaluate_gate(pol, facts(prof))
    assert not one(decision, "metrics[0]").passed
    assert one(decision, "carried_over").rule.startswith("rules.production.carried_over")


# --- regression ---------------------------------------------------------------------------------


def reference(text: str) -> tuple[Version, EffectiveProfile]:
    return version("2.3.0"), profile((text, T0), ref="credit-risk@2.3.0")


@pytest.mark.parametrize(
    ("rule", "old", "passed", "text"),
    [
        ("max_drop: 0.02", 0.75, True, "worse by +0.01, within the tolerance 0.02"),
        ("max_drop: 0.02", 0.80, False, "worse by +0.06, beyond the tolerance 0.02"),
        ("max_drop: 0.0", 0.70, True, "worse by -0.04"),  # improved
        ("max_relative_drop: 0.05", 0.77, True, "relative, within the tolerance 0.05"),
        ("max_relative_drop: 0.05", 0.80, False, "worse by +0.075 relative, beyond"),
    ],
)
def test_regression_against_the_reference_slice(
    rule: str, old: float, passed: bool, text: str
) -> None:
    pol = policy(f"    regression: [{{metric: accuracy, slice: 'thal=fixed', {rule}}}]")
    ref = reference(f"evaluations: [{{name: accuracy, value: {old}, slice: 'thal=fixed'}}]")
    finding = one(evaluate_gate(pol, facts(profile((HEARTS, T0)), reference=ref)), "regression")
    assert finding.passed is passed and text in finding.message
    assert finding.evidence == ("eval-2", "credit-risk@2.3.0#eval-1")
    assert finding.observed["reference"] == old


@pytest.mark.parametrize(("old", "passed"), [(0.002, False), (0.006, True)])
def test_regression_is_direction_aware(old: float, passed: bool) -> None:
    # toxicity_rate is lower-is-better: a rise from 0.002 to 0.004 is the regression.
    pol = policy("    regression: [{metric: toxicity_rate, max_drop: 0.001}]")
    ref = reference(f"evaluations: [{{name: toxicity_rate, value: {old}}}]")
    finding = one(evaluate_gate(pol, facts(profile((HEARTS, T0)), reference=ref)), "regression")
    assert finding.passed is passed


def test_regression_without_a_reference_version_passes() -> None:
    pol = policy("    regression: [{metric: accuracy, max_drop: 0.01}]")
    finding = one(evaluate_gate(pol, facts(profile((HEARTS, T0)))), "regression")
    assert finding.passed
    assert finding.message == "no version in production yet: nothing to regress against"


def test_regression_when_the_reference_lacks_the_metric() -> None:
    ref = reference("evaluations: [{name: auc, value: 0.9}]")
    strict = policy("    regression: [{metric: accuracy, max_drop: 0.01}]")
    finding = one(evaluate_gate(strict, facts(profile((HEARTS, T0)), reference=ref)), "regression")
    assert not finding.passed
    assert finding.message == (
        "credit-risk@2.3.0 in production has no evaluation accuracy to compare with"
    )
    lenient = policy(
        "    regression: [{metric: accuracy, max_drop: 0.01, missing_reference: pass}]"
    )
    assert one(evaluate_gate(lenient, facts(profile((HEARTS, T0)), reference=ref)), "regr").passed


def test_regression_fails_when_the_version_lacks_the_metric() -> None:
    pol = policy("    regression: [{metric: auc, max_relative_drop: 0.1}]")
    ref = reference("evaluations: [{name: auc, value: 0.9}]")
    finding = one(evaluate_gate(pol, facts(profile((HEARTS, T0)), reference=ref)), "regression")
    assert not finding.passed and finding.message.startswith("no evaluation auc counts")


def test_relative_regression_from_a_zero_reference() -> None:
    pol = policy("    regression: [{metric: toxicity_rate, max_relative_drop: 0.5}]")
    ref = reference("evaluations: [{name: toxicity_rate, value: 0.0}]")
    finding = one(evaluate_gate(pol, facts(profile((HEARTS, T0)), reference=ref)), "regression")
    assert not finding.passed and "without bound" in finding.message
    assert finding.observed["relative_drop"] is None


@pytest.mark.parametrize(
    ("moves", "version", "replaced"),
    [
        ([("1.0.0", "promote")], "1.0.0", None),
        ([("1.0.0", "promote"), ("1.1.0", "promote")], "1.1.0", "1.0.0"),
        ([("1.0.0", "promote"), ("1.1.0", "override")], "1.1.0", "1.0.0"),
        # restored by a rollback: judged as at its promotion, not against 1.1.0
        ([("1.0.0", "promote"), ("1.1.0", "promote"), ("1.0.0", "rollback")], "1.0.0", None),
        ([("1.0.0", "promote"), ("1.1.0", "promote"), ("1.0.0", "rollback"),
          ("1.2.0", "promote"), ("1.1.0", "promote")], "1.1.0", "1.2.0"),
        ([("1.0.0", "promote"), ("1.1.0", "promote"), ("1.2.0", "rollback")], "1.2.0", None),
    ],
)  # fmt: skip
def test_the_version_a_holder_replaced(
    moves: list[tuple[str, str]], version: str, replaced: str | None
) -> None:
    assert replaced_version(moves, version) == replaced


def test_regression_of_the_holder_names_the_version_it_replaced() -> None:
    pol = policy("    regression: [{metric: accuracy, slice: 'thal=fixed', max_drop: 0.02}]")
    held = facts(profile((HEARTS, T0)), reference=reference(
        "evaluations: [{name: accuracy, value: 0.8, slice: 'thal=fixed'}]"))  # fmt: skip
    held = dataclasses.replace(held, incumbent=True)
    finding = one(evaluate_gate(pol, held), "regression")
    assert not finding.passed
    assert "vs 0.8 on credit-risk@2.3.0 (eval-1, production before it)" in finding.message
    first = dataclasses.replace(held, reference=None)
    finding = one(evaluate_gate(pol, first), "regression")
    assert finding.passed and finding.message == (
        "credit-risk@2.4.0 holds production and replaced no version there: "
        "nothing to regress against"
    )


# --- model card ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stale", "passed", "state"),
    [(False, True, "current"), (True, False, "stale"), (None, False, "missing")],
)
def test_model_card_must_be_current(stale: bool | None, passed: bool, state: str) -> None:
    pol = policy("    card: {must_be_current: true}")
    finding = one(evaluate_gate(pol, facts(profile((HEARTS, T0)), card_stale=stale)), "card")
    assert finding.passed is passed and finding.observed == state


# --- approvals ----------------------------------------------------------------------------------


def test_separation_of_duties_and_roles() -> None:
    pol = policy("    approvals: {min: 2}")
    votes = [
        approve("alice"),
        approve("eve", "viewer"),
        approve("dan", "contributor"),
        approve("bob"),
        approve("bob"),
    ]
    finding = one(evaluate_gate(pol, facts(profile((HEARTS, T0)), approvals=votes)), "approvals")
    assert not finding.passed and finding.observed["approvers"] == ["bob"]
    assert "alice (registrant of credit-risk@2.4.0: separation of duties)" in finding.message
    assert "eve (role viewer cannot approve)" in finding.message
    enough = [*votes, approve("carol", "admin")]
    finding = one(evaluate_gate(pol, facts(profile((HEARTS, T0)), approvals=enough)), "approvals")
    assert finding.passed and finding.evidence == ("ap-bob", "ap-carol")


def test_a_reject_blocks_whatever_the_approvals() -> None:
    votes = [
        approve("bob"),
        approve("carol"),
        ApprovalFact("dave", "approver", "reject", NOW, "bias audit is stale"),
    ]
    decision = evaluate_gate(
        policy("    approvals: {min: 1}"), facts(profile((HEARTS, T0)), approvals=votes)
    )
    finding = one(decision, "approvals")
    assert not finding.passed and not decision.passed
    assert finding.message.startswith("rejected by dave (approver): 'bias audit is stale'")


@pytest.mark.parametrize(("tier", "needed"), [("low", 0), ("medium", 1), ("high", 2)])
def test_approvals_by_risk_tier(tier: str, needed: int) -> None:
    decision = evaluate_gate(parse_policy(DEFAULT_POLICY), facts(profile((HEARTS, T0)), tier=tier))
    finding = one(decision, "approvals")
    assert finding.required == needed and finding.passed is (needed == 0)


# --- risk tiers end to end ----------------------------------------------------------------------


def test_the_default_policy_differs_by_tier() -> None:
    pol = parse_policy(DEFAULT_POLICY)
    bare = profile(("evaluations: [{name: accuracy, value: 0.9}]", T0))
    votes = [approve("bob"), approve("carol")]
    low = evaluate_gate(pol, facts(bare, tier="low", card_stale=None))
    medium = evaluate_gate(pol, facts(bare, tier="medium", approvals=votes))
    high = evaluate_gate(pol, facts(bare, tier="high", approvals=votes))
    assert low.passed
    assert [f.rule for f in low.findings] == [
        "defaults.low.approvals: at least 0 distinct approvers"
    ]
    assert medium.passed and only(medium, "fairness") and only(medium, "redteam")
    assert one(medium, "approvals").required == 1
    assert not high.passed
    failed = {f.rule for f in high.failures}
    assert "defaults.high.evidence.require: bias_audits" in failed
    assert "defaults.high.evidence.require: adversarial" in failed


def test_high_tier_passes_with_full_fresh_evidence() -> None:
    fair = HEARTS.replace("value: 0.31", "value: 0.45")
    votes = [approve("bob"), approve("carol")]
    decision = evaluate_gate(
        parse_policy(DEFAULT_POLICY), facts(profile((fair, T0)), tier="high", approvals=votes)
    )
    assert decision.passed, [f.message for f in decision.failures]


# --- decision and outputs -----------------------------------------------------------------------


def decision_with_failures() -> GateDecision:
    pol = policy("    metrics: [{metric: accuracy, min: 0.95}, {metric: accuracy, min: 0.5}]")
    reject = ApprovalFact("dave\x1b", "approver", "reject", NOW, "nope <&>")
    return evaluate_gate(pol, facts(profile((HEARTS, T0)), approvals=[reject]))


def test_decision_json_is_stable_and_round_trips() -> None:
    decision = decision_with_failures()
    data = decision.to_dict()
    assert list(data) == [
        "schema",
        "passed",
        "stage",
        "ref",
        "risk_tier",
        "policy_digest",
        "profile_digest",
        "reference",
        "evaluated_at",
        "summary",
        "findings",
    ]
    assert data["schema"] == "charter.gate/v1" and data["passed"] is False
    assert data["summary"] == {"total": 3, "passed": 1, "failed": 2}
    assert list(data["findings"][0]) == [
        "rule",
        "passed",
        "observed",
        "required",
        "evidence",
        "message",
    ]
    assert json.loads(json.dumps(data)) == data
    canonical_bytes(data)  # the ledger can carry it
    assert GateDecision.from_dict(data) == decision


def test_decision_records_the_policy_and_profile_digests() -> None:
    pol = policy("    metrics: [{metric: accuracy, min: 0.5}]")
    prof = profile((HEARTS, T0))
    decision = evaluate_gate(pol, facts(prof))
    assert decision.passed and decision.policy_digest == policy_digest(pol)
    assert decision.profile_digest == prof.digest and decision.evaluated_at == NOW
    assert decision.ref == "credit-risk@2.4.0" and decision.risk_tier == "low"


def test_junit_xml_parses_with_counts_and_failures() -> None:
    xml = decision_with_failures().to_junit_xml()
    suite = ET.fromstring(xml)
    assert suite.tag == "testsuite" and suite.get("name") == "charter.gate.production"
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("3", "2", "0")
    cases = suite.findall("testcase")
    assert len(cases) == 3 and all(c.get("classname") == "charter.gate.production" for c in cases)
    failures = [c.find("failure") for c in cases if c.find("failure") is not None]
    assert len(failures) == 2 and failures[0].get("message", "").startswith("accuracy = 0.91")
    assert "evidence: eval-1" in (failures[0].text or "")
    assert "dave\ufffd (approver): 'nope <&>'" in (failures[1].get("message") or "")
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert props["ref"] == "credit-risk@2.4.0" and props["policy_digest"].startswith("sha256:")


def test_unknown_stage_at_the_gate() -> None:
    with pytest.raises(InvalidInputError) as err:
        evaluate_gate(parse_policy(DEFAULT_POLICY), facts(profile((HEARTS, T0)), stage="canary"))
    assert err.value.details["valid"] == ["staging", "production"]


def test_the_decision_names_the_reference_it_compared_with() -> None:
    pol = policy("    regression: [{metric: accuracy, max_drop: 0.05}]")
    ref = reference("evaluations: [{name: accuracy, value: 0.94}]")
    decision = evaluate_gate(pol, facts(profile((HEARTS, T0)), reference=ref))
    assert decision.passed and decision.reference == "credit-risk@2.3.0"
    suite = ET.fromstring(decision.to_junit_xml())
    assert {p.get("name"): p.get("value") for p in suite.iter("property")}["reference"] == (
        "credit-risk@2.3.0"
    )


def test_a_stored_policy_digest_must_match_the_policy() -> None:
    pol = policy("    metrics: [{metric: accuracy, min: 0.5}]")
    prof = facts(profile((HEARTS, T0)))
    assert evaluate_gate(pol, prof, policy_digest=policy_digest(pol)).passed
    with pytest.raises(IntegrityError) as caught:
        evaluate_gate(pol, prof, policy_digest="sha256:" + "1" * 64)
    assert caught.value.details["computed"] == policy_digest(pol)
