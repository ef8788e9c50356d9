"""Policy parsing, normalisation, digests, validation and tier defaults."""

from __future__ import annotations

import pytest
import yaml

from charter.domain.errors import InvalidInputError
from charter.domain.policy import (
    DEFAULT_POLICY,
    Policy,
    parse_policy,
    policy_digest,
    rules_for,
    validate_policy,
)

HEAD = "schema: charter.policy/v1\nstages: [staging, production]\n"
FULL = (
    HEAD
    + """\
rules:
  staging:
    metrics:
      - {metric: accuracy, min: 0.80}
      - {metric: accuracy, slice: "thal=fixed", min: 0.70}
      - {metric: toxicity_rate, max: 0.01}
    fairness: [{metric: selection_rate, ratio_min: 0.8}]
    redteam: {max_attack_success_rate: 0.05, categories: {prompt_injection: 0.02}}
    evidence: {require: [bias_audits, adversarial], metrics: [accuracy],
               max_age_days: {adversarial: 30}}
  production:
    regression: [{metric: accuracy, slice: "thal=fixed", against: production, max_drop: 0.02}]
    card: {must_be_current: true}
    approvals: {min: 2}
    carried_over: false
"""
)
KNOWN = {"accuracy", "toxicity_rate", "selection_rate", "auc"}


def error(text: str) -> InvalidInputError:
    with pytest.raises(InvalidInputError) as caught:
        parse_policy(text, source="policy.yaml")
    return caught.value


def test_the_default_policy_parses_and_is_its_own_normal_form() -> None:
    policy = parse_policy(DEFAULT_POLICY)
    assert policy.stages == ["staging", "production"]
    assert set(policy.defaults) == {"low", "medium", "high"}
    dumped = yaml.safe_dump(policy.model_dump(mode="json", by_alias=True, exclude_none=True))
    assert policy_digest(parse_policy(dumped)) == policy_digest(policy)


def test_a_full_policy_parses() -> None:
    policy = parse_policy(FULL)
    assert policy.rules["staging"].metrics is not None
    assert policy.rules["staging"].metrics[1].slice == "thal=fixed"
    assert validate_policy(policy, known_metrics=KNOWN) == []


def test_digest_is_stable_under_key_order_style_and_comments() -> None:
    reordered = """
# the same policy, written differently
rules:
  production:
    carried_over: false
    approvals:
      min: 2
    card: {must_be_current: true}
    regression:
      - {max_drop: 0.02, against: production, slice: "thal=fixed", metric: accuracy}
  staging:
    evidence:
      max_age_days: {adversarial: 30}
      metrics: [accuracy]
      require: [bias_audits, adversarial]
    redteam: {categories: {prompt_injection: 0.02}, max_attack_success_rate: 0.05}
    fairness: [{ratio_min: 0.8, metric: selection_rate}]
    metrics:
      - {min: 0.8, metric: accuracy}
      - {slice: "thal=fixed", min: 0.7, metric: accuracy}
      - {max: 0.01, metric: toxicity_rate}
stages: [staging, production]
schema: charter.policy/v1
"""
    assert policy_digest(parse_policy(reordered)) == policy_digest(parse_policy(FULL))
    changed = FULL.replace("min: 0.70", "min: 0.71")
    assert policy_digest(parse_policy(changed)) != policy_digest(parse_policy(FULL))


def test_restating_a_builtin_default_or_the_four_fifths_default_keeps_the_digest() -> None:
    plain = parse_policy(HEAD + "rules: {production: {fairness: [{metric: selection_rate}]}}")
    restated = parse_policy(
        HEAD + "defaults: {high: {redteam: {max_attack_success_rate: 0.05}}}\n"
        "rules: {production: {fairness: [{metric: selection_rate, ratio_min: 0.8}]}}"
    )
    assert policy_digest(plain) == policy_digest(restated)


@pytest.mark.parametrize(
    ("text", "where"),
    [
        (
            HEAD + "rules:\n  staging:\n    metrics: [{metric: accuracy, min: 0.8}\n",
            "(while parsing a flow sequence started at line 5, column 14)",
        ),
        (HEAD + "rules:\n  staging: {}\n   production: {}\n", "line 5, column 4"),
        ("schema: charter.policy/v1\nstages: [a, b\n", "line 3, column 1"),
        ("schema: charter.policy/v1\nstages: [a]\nrules: {a: @x}\n", "line 3, column 12"),
    ],
)
def test_malformed_yaml_reports_line_and_column(text: str, where: str) -> None:
    err = error(text)
    assert "policy.yaml is not valid YAML at " in err.message and where in err.message
    assert err.details["line"] >= 1 and err.details["column"] >= 1


def test_duplicate_keys_are_refused_with_their_line() -> None:
    err = error(HEAD + "rules:\n  staging: {}\n  staging: {approvals: {min: 1}}\n")
    assert "duplicate key 'staging'" in err.message and "line 5, column 3" in err.message


@pytest.mark.parametrize(
    ("text", "field", "valid"),
    [
        (HEAD + "rules: {staging: {treshold: 1}}", "rules.staging.treshold", "metrics, fairness"),
        (
            HEAD + "rules: {staging: {metrics: [{metric: acc, minimum: 1}]}}",
            "rules.staging.metrics[0].minimum",
            "metric, slice, min, max, if_missing",
        ),
        (
            HEAD + "rules: {staging: {redteam: {max_asr: 0.1}}}",
            "rules.staging.redteam.max_asr",
            "max_attack_success_rate, categories",
        ),
        (
            HEAD + "defaults: {high: {stages: {staging: {card: {current: true}}}}}",
            "defaults.high.stages.staging.card.current",
            "must_be_current",
        ),
        (HEAD + "owner: me", "owner", "schema, description, stages"),
    ],
)
def test_unknown_fields_are_named_with_path_and_valid_fields(
    text: str, field: str, valid: str
) -> None:
    err = error(text)
    assert err.details["field"] == field
    assert "unknown field (valid here: " in err.message and valid in err.message
    assert "(line 3, column" in err.message or "(line 4, column" in err.message


@pytest.mark.parametrize(
    ("rules", "field"),
    [
        ("{staging: {fairness: [{ratio_min: -0.1}]}}", "rules.staging.fairness[0].ratio_min"),
        (
            "{staging: {fairness: [{difference_max: -0.1}]}}",
            "rules.staging.fairness[0].difference_max",
        ),
        (
            "{staging: {redteam: {max_attack_success_rate: -0.01}}}",
            "rules.staging.redteam.max_attack_success_rate",
        ),
        ("{staging: {redteam: {categories: {pii: 1.5}}}}", "rules.staging.redteam.categories.pii"),
        (
            "{staging: {regression: [{metric: a, against: staging, max_drop: -0.01}]}}",
            "rules.staging.regression[0].max_drop",
        ),
        (
            "{staging: {regression: [{metric: a, against: staging, max_relative_drop: -1}]}}",
            "rules.staging.regression[0].max_relative_drop",
        ),
        (
            "{staging: {evidence: {max_age_days: {adversarial: 0}}}}",
            "rules.staging.evidence.max_age_days.adversarial",
        ),
        ("{staging: {approvals: {min: -1}}}", "rules.staging.approvals.min"),
        ("{staging: {metrics: [{metric: a, min: .nan}]}}", "rules.staging.metrics[0].min"),
    ],
)
def test_meaningless_negative_or_non_finite_thresholds(rules: str, field: str) -> None:
    assert error(HEAD + f"rules: {rules}").details["field"] == field


@pytest.mark.parametrize(
    ("rules", "field", "text"),
    [
        ("{staging: {metrics: [{metric: a}]}}", "rules.staging.metrics[0]", "give min, max"),
        (
            "{staging: {metrics: [{metric: a, min: 0.9, max: 0.1}]}}",
            "rules.staging.metrics[0]",
            "min (0.9) exceeds max (0.1)",
        ),
        (
            "{staging: {regression: [{metric: a, against: staging}]}}",
            "rules.staging.regression[0]",
            "exactly one of max_drop",
        ),
        (
            "{staging: {regression: [{metric: a, against: staging, max_drop: 1,"
            " max_relative_drop: 1}]}}",
            "rules.staging.regression[0]",
            "exactly one",
        ),
        ("{staging: {redteam: {}}}", "rules.staging.redteam", "give max_attack_success_rate"),
        (
            "{staging: {evidence: {require: [bias]}}}",
            "rules.staging.evidence.require[0]",
            "'evaluations', 'bias_audits'",
        ),
        (
            "{staging: {metrics: [{metric: Accuracy, min: 1}]}}",
            "rules.staging.metrics[0].metric",
            "pattern",
        ),
    ],
)
def test_inconsistent_rules(rules: str, field: str, text: str) -> None:
    err = error(HEAD + f"rules: {rules}")
    assert err.details["field"] == field and text in err.message


@pytest.mark.parametrize(
    ("text", "field"),
    [
        (HEAD + "rules: {prod: {}}", "rules.prod"),
        (
            (HEAD + "rules: {staging: {regression: [{metric: a, max_drop: 0}]}}").replace(
                "[staging, production]", "[dev, staging]"
            ),
            "rules.staging.regression[0].against",
        ),
        (
            HEAD + "defaults: {high: {stages: {canary: {approvals: {min: 1}}}}}",
            "defaults.high.stages.canary",
        ),
    ],
)
def test_rules_may_only_name_declared_stages(text: str, field: str) -> None:
    err = error(text)
    assert err.details["field"] == field and "unknown stage" in err.message
    assert err.details["valid"] in (["staging", "production"], ["dev", "staging"])


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("schema: charter.policy/v2\nstages: [a]", "schema"),
        ("stages: [a]", "schema"),
        ("schema: charter.policy/v1", "stages"),
        ("schema: charter.policy/v1\nstages: []", "stages"),
        ("schema: charter.policy/v1\nstages: [Prod]", "stages[0]"),
        ("schema: charter.policy/v1\nstages: [a, a]", "stages"),
        ("- just\n- a list", "(document)"),
        ("", "(document)"),
        ("schema: charter.policy/v1\nstages: [a]\ndefaults: {extreme: {}}", "defaults.extreme"),
    ],
)
def test_document_level_errors(text: str, field: str) -> None:
    assert error(text).details["field"] == field


def test_unknown_metrics_are_errors_at_validation_naming_path_and_close_names() -> None:
    policy = parse_policy(
        HEAD + "rules:\n  staging:\n    metrics: [{metric: acuracy, min: 0.8}]\n"
        "    evidence: {metrics: [auroc]}\n"
        "    regression: [{metric: toxicity, against: production, max_drop: 0}]\n"
        "    fairness: [{metric: selection_rate}, {metric: tpr}]\n"
    )
    with pytest.raises(InvalidInputError) as caught:
        validate_policy(policy, known_metrics=KNOWN)
    err = caught.value
    assert err.details["field"] == "rules.staging.metrics[0].metric"
    assert "no evaluator produces metric 'acuracy'; did you mean accuracy, auc?" in err.message
    assert err.details["valid"] == ["accuracy", "auc"]
    fields = [p["field"] for p in err.details["problems"]]
    assert fields == [
        "rules.staging.metrics[0].metric",
        "rules.staging.fairness[1].metric",
        "rules.staging.regression[0].metric",
        "rules.staging.evidence.metrics[0]",
    ]


def test_validation_warns_about_legal_but_doubtful_rules() -> None:
    policy = parse_policy(
        "schema: charter.policy/v1\nstages: [dev, prod]\nrules:\n  prod:\n"
        "    metrics: [{metric: auc, min: -0.5}]\n    fairness: [{ratio_min: 0.6}]\n"
    )
    warnings = validate_policy(policy, known_metrics=KNOWN)
    assert any("rules.prod.metrics[0].min is negative" in w for w in warnings)
    assert any("ratio_min 0.6 is below the four-fifths rule" in w for w in warnings)
    assert any("no stage is named production" in w for w in warnings)


def test_rules_for_refuses_unknown_stages_and_tiers() -> None:
    policy = parse_policy(DEFAULT_POLICY)
    with pytest.raises(InvalidInputError) as caught:
        rules_for(policy, stage="prod", risk_tier="high")
    assert "unknown stage 'prod': the policy declares staging, production" in caught.value.message
    with pytest.raises(InvalidInputError):
        rules_for(policy, stage="production", risk_tier="extreme")


def test_risk_tiers_produce_different_rules() -> None:
    policy = parse_policy(DEFAULT_POLICY)
    low, medium, high = (
        rules_for(policy, stage="production", risk_tier=t) for t in ("low", "medium", "high")
    )
    assert [r.approvals.rule for r in (low, medium, high)] == [0, 1, 2]
    assert [r.carried_over.rule for r in (low, medium, high)] == [True, True, False]
    assert [r.card is not None for r in (low, medium, high)] == [False, True, True]
    assert [s.rule for s in high.required_sections] == ["evaluations", "bias_audits", "adversarial"]
    assert [s.rule for s in medium.required_sections] == ["evaluations"]
    assert not low.required_sections and not low.fairness and not low.redteam
    assert {k: v.rule for k, v in high.max_age_days.items()} == {
        "adversarial": 30,
        "bias_audits": 180,
    }
    assert medium.max_age_days["adversarial"].rule == 90
    assert high.fairness[0].rule.ratio_min == 0.8 and high.fairness[0].rule.if_missing == "fail"
    assert medium.fairness[0].rule.if_missing == "pass"
    staging = rules_for(policy, stage="staging", risk_tier="high")
    assert staging.approvals.rule == 1 and staging.carried_over.rule


def test_stage_rules_and_tier_defaults_combine_the_stricter_winning() -> None:
    policy = parse_policy(
        HEAD + "rules:\n  production:\n    approvals: {min: 1}\n    carried_over: true\n"
        "    evidence: {max_age_days: {adversarial: 10, bias_audits: 365}}\n"
        "    fairness: [{ratio_min: 0.8}, {metric: selection_rate, ratio_min: 0.9}]\n"
    )
    high = rules_for(policy, stage="production", risk_tier="high")
    assert (high.approvals.rule, high.approvals.path) == (
        2,
        "defaults.high.stages.production.approvals",
    )
    assert not high.carried_over.rule
    assert (
        high.max_age_days["adversarial"].path
        == "rules.production.evidence.max_age_days.adversarial"
    )
    assert high.max_age_days["bias_audits"].rule == 180
    # The identical four-fifths rule of both layers applies once.
    assert [f.path for f in high.fairness] == [
        "rules.production.fairness[0]",
        "rules.production.fairness[1]",
    ]
    low = rules_for(policy, stage="production", risk_tier="low")
    assert (low.approvals.rule, low.approvals.path) == (1, "rules.production.approvals")
    assert low.carried_over.rule


def test_policy_defaults_override_the_builtin_ones() -> None:
    policy = parse_policy(
        HEAD + "defaults:\n  high:\n    approvals: {min: 3}\n"
        "    stages: {production: {carried_over: true}}\n"
        "  low: {evidence: {require: [evaluations]}}\n"
    )
    high = rules_for(policy, stage="production", risk_tier="high")
    # A tier-wide override also replaces the built-in per-stage value.
    assert high.approvals.rule == 3 and high.carried_over.rule
    assert [
        s.rule for s in rules_for(policy, stage="staging", risk_tier="low").required_sections
    ] == ["evaluations"]
    assert isinstance(policy, Policy) and policy.defaults["medium"].fairness


def test_reference_stage_of_regression_rules() -> None:
    policy = parse_policy(FULL)
    assert rules_for(policy, stage="production", risk_tier="low").reference_stage == "production"
    assert rules_for(policy, stage="staging", risk_tier="low").reference_stage is None


def test_two_reference_stages_for_one_stage_are_refused() -> None:
    text = HEAD + (
        "rules: {production: {regression: [{metric: a, against: staging, max_drop: 0},"
        " {metric: b, against: production, max_drop: 0}]}}"
    )
    err = error(text)
    assert "several stages (production, staging)" in err.message
    assert err.details["field"] == "rules.production.regression[1]"
    tiered = HEAD + (
        "defaults: {high: {regression: [{metric: a, against: staging, max_drop: 0}]}}\n"
        "rules: {production: {regression: [{metric: b, against: production, max_drop: 0}]}}"
    )
    assert error(tiered).details["field"] == "defaults.high.regression[0]"
