"""Profile schema validation: what can be judged is accepted, the rest named by path."""

from __future__ import annotations

import pytest

from charter.domain.errors import InvalidInputError
from charter.domain.profile import entries_from_metrics, parse_document

GOOD = """
evaluations:
  - {name: accuracy, value: 0.91, slice: "thal=fixed", samples: 18,
     ci: {low: 0.8, high: 0.97}, dataset: {name: hearts}}
  - {name: toxicity_rate, value: 0.02, provenance: {source: "evaluator:redteam@1.0"}}
bias_audits:
  - sensitive_feature: sex
    metric: selection_rate
    reference_group: m
    groups: [{group: f, value: 0.3, size: 98}, {group: m, value: 0.5, size: 205}]
constraints: {max_output_chars: 2000, blocked_terms: [secret], blocked_patterns: ["\\\\d{16}"],
              allowed_languages: [en, pt-BR], input_schema: {type: object}}
adversarial:
  - pack: {name: default, version: "1.0"}
    target: local llama
    attempts: 10
    hits: 3
    probes: [{probe: p1, category: injection, attempts: 6, hits: 3},
             {probe: p2, category: pii, attempts: 4, hits: 0}]
"""


def test_a_complete_document_parses_and_derives_aggregates() -> None:
    doc = parse_document(GOOD)
    assert doc.evaluations[1].direction == "lower_is_better"
    assert doc.evaluations[0].direction == "higher_is_better"
    assert doc.bias_audits[0].ratio == pytest.approx(0.6)
    assert doc.bias_audits[0].difference == pytest.approx(0.2)
    assert doc.adversarial[0].attack_success_rate == pytest.approx(0.3)
    assert doc.adversarial[0].categories["injection"].rate == pytest.approx(0.5)
    assert len(doc.constraints) == 1  # a single mapping is accepted as one entry


@pytest.mark.parametrize(
    ("text", "path"),
    [
        ("evaluations: [{name: acc, value: .nan}]", "evaluations[0].value"),
        ("evaluations: [{name: acc, value: .inf}]", "evaluations[0].value"),
        ("evaluations: [{name: acc, value: 1.5}]", "evaluations[0]"),
        ("evaluations: [{name: acc, value: 0.5, unit: count, samples: -1}]",
         "evaluations[0].samples"),
        ("evaluations: [{name: acc, value: 0.5, ci: {low: 0.6, high: 0.4}}]", "evaluations[0].ci"),
        ("evaluations: [{name: Bad Name, value: 0.5}]", "evaluations[0].name"),
        ("evaluations: [{name: acc, value: 0.5, slice: nonsense}]", "evaluations[0].slice"),
        ("evaluations: [{name: acc, value: 0.5, bogus: 1}]", "evaluations[0].bogus"),
        ("evaluations: [{name: acc, value: 'high'}]", "evaluations[0].value"),
        ("bias_audits: [{sensitive_feature: s, metric: selection_rate,"
         " groups: [{group: a, value: 1.2, size: 3}]}]", "bias_audits[0]"),
        ("bias_audits: [{sensitive_feature: s, metric: tpr,"
         " groups: [{group: a, value: 0.5, size: -3}]}]", "bias_audits[0].groups[0].size"),
        ("bias_audits: [{sensitive_feature: s, metric: tpr, ratio: 0.9,"
         " groups: [{group: a, value: 0.5, size: 3}, {group: b, value: 0.25, size: 3}]}]",
         "bias_audits[0]"),
        ("adversarial: [{pack: {name: p, version: '1'}, target: t, attempts: 2, hits: 3}]",
         "adversarial[0]"),
        ("constraints: {blocked_patterns: ['(']}", "constraints[0].blocked_patterns"),
        ("constraints: {max_output_chars: 0}", "constraints[0].max_output_chars"),
        ("constraints: {allowed_languages: [english]}", "constraints[0].allowed_languages"),
        ("constraints: {input_schema: {type: 12}}", "constraints[0].input_schema"),
        ("surprises: []", "surprises"),
        ("schema: charter.profile/v9", "schema"),
    ],
)  # fmt: skip
def test_unjudgeable_values_are_refused_with_their_path(text: str, path: str) -> None:
    with pytest.raises(InvalidInputError) as err:
        parse_document(text, source="p.yaml")
    assert err.value.details["field"] == path
    assert err.value.message.startswith(f"p.yaml: {path}:")


@pytest.mark.parametrize("text", ["a: [", "- 1\n- 2", "just text", ""])
def test_non_documents_are_refused(text: str) -> None:
    with pytest.raises(InvalidInputError):
        parse_document(text)


def test_metrics_files_become_evaluations() -> None:
    doc = entries_from_metrics('{"accuracy": 0.93, "loss": 0.21, "latency_ms": 35}')
    by_name = {e.name: e for e in doc.evaluations}
    assert by_name["accuracy"].unit == "ratio"
    assert by_name["latency_ms"].unit == "score"
    assert by_name["loss"].direction == "lower_is_better"
    assert by_name["accuracy"].provenance.source == "pipeline"
    with pytest.raises(InvalidInputError):
        entries_from_metrics("{accuracy: high}")
    with pytest.raises(InvalidInputError):
        entries_from_metrics("[1, 2]")
