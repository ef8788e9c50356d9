"""CycloneDX 1.6 ML-BOM export: schema-valid, complete, deterministic."""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import re
from collections import Counter
from typing import Any

import pytest

import charter
from charter._profiles import entry_bodies
from charter.domain.canonical import canonical_bytes, loads
from charter.domain.entities import DatasetRef, FileRecord, Model, RiskTier, Version, VersionState
from charter.domain.errors import InvalidInputError
from charter.domain.folding import (
    AmendmentRecord,
    EffectiveProfile,
    ProfileRecord,
    baseline_digest,
    fold,
)
from charter.domain.profile import parse_document
from charter.exports import cyclonedx_bom

CREATED = "2026-03-01T10:00:00.000000Z"
PUBLISHED = "2026-03-02T10:00:00.000000Z"
AMENDED = "2026-03-05T09:30:00.000000Z"

FULL = """
evaluations:
  - {name: accuracy, value: 0.91, slice: "region=EU", samples: 1200,
     ci: {low: 0.88, high: 0.94}, dataset: {name: holdout}}
  - {name: accuracy, value: 0.84, slice: "region=APAC", samples: 300}
  - {name: toxicity_rate, value: 0.02, provenance: {source: "evaluator:toxicity@1.0"}}
  - {name: latency_p95, value: 120, unit: milliseconds}
bias_audits:
  - sensitive_feature: sex
    metric: selection_rate
    reference_group: m
    groups: [{group: m, value: 0.5, size: 205}, {group: f, value: 0.3, size: 98},
             {group: x, value: 0.45, size: 12}]
  - sensitive_feature: age_band
    metric: false_positive_rate
    groups: [{group: "18-25", value: 0.12, size: 50}, {group: "26-60", value: 0.05, size: 400}]
constraints:
  max_input_chars: 4000
  max_output_tokens: 512
  blocked_terms: [secret, password]
  blocked_patterns: ["\\\\d{16}"]
  required_refusal_topics: [self-harm]
  allowed_languages: [en, pt-BR]
  input_schema: {type: object}
  intended_uses: [Pre-screening of consumer credit applications]
  out_of_scope_uses: [Final lending decisions without human review]
adversarial:
  - pack: {name: default, version: "1.0"}
    target: local llama
    attempts: 10
    hits: 3
    probes: [{probe: p1, category: injection, attempts: 6, hits: 3},
             {probe: p2, category: pii, attempts: 4, hits: 0}]
  - pack: {name: jailbreaks, version: "2.1"}
    target: local llama
    attempts: 40
    hits: 1
"""

AMENDMENT = """
evaluations:
  - {name: accuracy, value: 0.83, slice: "region=APAC", samples: 900, supersedes: eval-2}
adversarial:
  - pack: {name: encoding, version: "0.3"}
    target: production endpoint
    attempts: 20
    hits: 2
    probes: [{probe: b64, category: encoding, attempts: 20, hits: 2}]
retracts: [eval-4]
"""


def _digest(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def make_version(**changes: Any) -> Version:
    base = Version(
        model="credit-risk", version="2.4.0", state=VersionState.PUBLISHED,
        parent="2.3.1", change_kind="minor", fp_architecture=_digest("arch"),
        fp_data=_digest("data"), fp_config=_digest("config"), architecture_method="hf-config",
        manifest_digest=_digest("manifest"), file_count=2, total_size=1234,
        run_id="run-77", commit="0f3c2a9", params={"lr": "0.001", "epochs": "3"},
        datasets=(
            DatasetRef("loans-2024", "train", "s3://data/loans-2024.parquet", _digest("t"), 99),
            DatasetRef("holdout", "eval", "my local folder/holdout 2024"),
        ),
        created_by="alice", created_at=CREATED, published_by="alice", published_at=PUBLISHED,
        tags={"team": "risk"},
    )  # fmt: skip
    return dataclasses.replace(base, **changes)


def make_profile(
    version: Version, text: str | None = FULL, amendment: str | None = None
) -> tuple[Version, EffectiveProfile]:
    """Fold a profile the way the registry does; seal the baseline if published."""
    records: list[ProfileRecord] = []
    if text:
        bodies = entry_bodies(parse_document(text), counts={}, user="alice", at=CREATED)
        records = [ProfileRecord(b["id"], b["section"], b, None, CREATED) for b in bodies]
    if version.state is VersionState.PUBLISHED:
        version = dataclasses.replace(version, baseline_digest=baseline_digest(records))
    amendments: list[AmendmentRecord] = []
    if amendment:
        doc = parse_document(amendment)
        counts = dict(Counter(r.section for r in records))
        bodies = entry_bodies(doc, counts=counts, user="bob", at=AMENDED)
        records += [ProfileRecord(b["id"], b["section"], b, "am-1", AMENDED) for b in bodies]
        amendments.append(AmendmentRecord(
            id="am-1", reason="production red-team and corrected APAC accuracy", evidence=(),
            retracts=tuple(doc.retracts), entry_ids=tuple(b["id"] for b in bodies),
            author="bob", created_at=AMENDED,
        ))  # fmt: skip
    sealed = version.baseline_digest
    return version, fold(ref=version.ref, records=records, amendments=amendments,
                         sealed_digest=sealed)  # fmt: skip


MODEL = Model(name="credit-risk", description="Scores consumer credit applications.",
              owner="risk-team", risk_tier=RiskTier.HIGH, created_by="alice",
              created_at=CREATED)  # fmt: skip
FILES = [FileRecord("config.json", _digest("config.json"), 34),
         FileRecord("weights/model.safetensors", _digest("weights"), 1200)]  # fmt: skip


def build(text: str | None = FULL, amendment: str | None = None, **changes: Any) -> dict[str, Any]:
    version, profile = make_profile(make_version(**changes), text, amendment)
    return cyclonedx_bom(model=MODEL, version=version, files=FILES, profile=profile)


@pytest.fixture(scope="module")
def validate() -> Any:
    """``validate(bom)``: None when the BOM is valid CycloneDX 1.6, else the first error."""
    pytest.importorskip("cyclonedx.validation.json")
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    validator = JsonStrictValidator(SchemaVersion.V1_6)
    return lambda bom: validator.validate_str(json.dumps(bom))


def card(bom: dict[str, Any]) -> dict[str, Any]:
    return bom["metadata"]["component"]["modelCard"]  # type: ignore[no-any-return]


def props(items: list[dict[str, str]]) -> dict[str, str]:
    return {p["name"]: p["value"] for p in items}


def test_a_full_profile_validates_against_cyclonedx_1_6(validate: Any) -> None:
    bom = build(amendment=AMENDMENT)
    assert validate(bom) is None, validate(bom)
    assert (bom["bomFormat"], bom["specVersion"], bom["version"]) == ("CycloneDX", "1.6", 1)
    model = bom["metadata"]["component"]
    assert model["type"] == "machine-learning-model"
    assert [model[k] for k in ("name", "version", "bom-ref")] == ["credit-risk", "2.4.0",
                                                                  "credit-risk@2.4.0"]  # fmt: skip
    assert model["hashes"] == [{"alg": "SHA-256", "content": _digest("manifest")[7:]}]
    tool = bom["metadata"]["tools"]["components"][0]
    assert (tool["name"], tool["version"]) == ("charter", charter.__version__)
    assert set(card(bom)) == {
        "modelParameters",
        "quantitativeAnalysis",
        "considerations",
        "properties",
    }


def test_an_empty_profile_of_a_bare_draft_validates(validate: Any) -> None:
    version, profile = make_profile(
        make_version(state=VersionState.DRAFT, parent=None, commit=None, datasets=(),
                     published_by=None, published_at=None, params={}, tags={}),
        text=None,
    )  # fmt: skip
    bom = cyclonedx_bom(model=MODEL, version=version, files=[], profile=profile)
    assert validate(bom) is None, validate(bom)
    assert "components" not in bom and "dependencies" not in bom
    assert set(card(bom)) == {"properties"}
    assert "charter:baseline:digest" not in props(card(bom)["properties"])
    assert bom["metadata"]["timestamp"] == CREATED


@pytest.mark.parametrize(
    "breakage",
    [
        lambda bom: card(bom).update(bogus="field"),
        lambda bom: card(bom)["quantitativeAnalysis"]["performanceMetrics"][0].update(value=0.9),
        lambda bom: card(bom)["considerations"].update(fairnessAssessments=[{"group": "f"}]),
        lambda bom: bom["metadata"]["component"].update(type="ml-model"),
        lambda bom: bom.update(serialNumber="not-a-urn"),
    ],
    ids=["unknown-card-field", "numeric-metric", "unknown-fairness-field", "bad-type", "serial"],
)
def test_the_validator_rejects_a_broken_bom(validate: Any, breakage: Any) -> None:
    bom = build()
    assert validate(bom) is None
    broken = copy.deepcopy(bom)
    breakage(broken)
    assert validate(broken) is not None


def test_the_same_inputs_export_the_same_bytes() -> None:
    first, second = build(amendment=AMENDMENT), build(amendment=AMENDMENT)
    assert json.dumps(first, sort_keys=True) == json.dumps(second, sort_keys=True)
    assert re.fullmatch(r"urn:uuid:[0-9a-f-]{36}", first["serialNumber"])
    # The default timestamp is the latest fact the BOM carries: the amendment.
    assert first["metadata"]["timestamp"] == AMENDED
    assert build()["metadata"]["timestamp"] == PUBLISHED


def test_bodies_read_back_from_canonical_json_export_the_same() -> None:
    version, profile = make_profile(make_version(), FULL, AMENDMENT)
    # The store keeps canonical JSON, where 120.0 comes back as the integer 120.
    entries = tuple(dataclasses.replace(e, body=loads(canonical_bytes(e.body)))
                    for e in profile.entries)  # fmt: skip
    again = dataclasses.replace(profile, entries=entries)
    bom = cyclonedx_bom(model=MODEL, version=version, files=FILES, profile=again)
    assert bom == cyclonedx_bom(model=MODEL, version=version, files=FILES, profile=profile)


def test_the_serial_changes_when_the_profile_or_files_change() -> None:
    serials = {
        build()["serialNumber"],
        build(amendment=AMENDMENT)["serialNumber"],
        build(manifest_digest=_digest("other manifest"))["serialNumber"],
    }
    assert len(serials) == 3


def test_a_given_serial_and_timestamp_are_used_and_normalised() -> None:
    version, profile = make_profile(make_version())
    bom = cyclonedx_bom(
        model=MODEL,
        version=version,
        files=FILES,
        profile=profile,
        serial="3E671687-395B-41F5-A30F-A58921A69B79",
        timestamp="2026-04-01T12:00:00+02:00",
    )
    assert bom["serialNumber"] == "urn:uuid:3e671687-395b-41f5-a30f-a58921a69b79"
    assert bom["metadata"]["timestamp"] == "2026-04-01T10:00:00.000000Z"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"serial": "urn:uuid:nope"}, "serial"), ({"timestamp": "yesterday"}, "time")],
)
def test_a_bad_serial_or_timestamp_is_refused(kwargs: dict[str, str], field: str) -> None:
    version, profile = make_profile(make_version())
    with pytest.raises(InvalidInputError) as err:
        cyclonedx_bom(model=MODEL, version=version, files=FILES, profile=profile, **kwargs)
    assert err.value.details["field"] == field


def test_a_profile_of_another_version_is_refused() -> None:
    version, _ = make_profile(make_version())
    _, other = make_profile(make_version(version="9.9.9"))
    with pytest.raises(InvalidInputError, match=re.escape("credit-risk@9.9.9")):
        cyclonedx_bom(model=MODEL, version=version, files=FILES, profile=other)


def test_evaluations_become_metrics_with_slices_and_intervals() -> None:
    metrics = card(build(amendment=AMENDMENT))["quantitativeAnalysis"]["performanceMetrics"]
    assert metrics == [
        {"type": "accuracy", "value": "0.91", "slice": "region=EU",
         "confidenceInterval": {"lowerBound": "0.88", "upperBound": "0.94"}},
        {"type": "toxicity_rate", "value": "0.02"},
        # eval-2 superseded by the amendment's APAC figure; eval-4 (latency) retracted.
        {"type": "accuracy", "value": "0.83", "slice": "region=APAC"},
    ]  # fmt: skip


def test_fairness_assessments_name_the_group_at_risk() -> None:
    selection, fpr = card(build())["considerations"]["fairnessAssessments"]
    # Selection rate: higher is better, so the lowest group is at risk.
    assert selection["groupAtRisk"] == "f"
    assert "ratio lowest/highest 0.6, below the four-fifths rule's 0.8" in selection["harms"]
    assert "difference highest-lowest 0.2" in selection["harms"]
    assert "m (0.5)" in selection["benefits"] and "f 0.3 (n=98)" in selection["benefits"]
    assert "bias-1" in selection["mitigationStrategy"]
    # False positive rate: lower is better, so the highest group is at risk.
    assert fpr["groupAtRisk"] == "18-25"
    assert "higher is worse" in fpr["harms"]
    assert "ratio lowest/highest 0.4167;" in fpr["harms"]  # four-fifths: selection rates only


def test_tied_groups_are_all_named() -> None:
    text = """
bias_audits:
  - {sensitive_feature: s, metric: tpr, groups: [{group: a, value: 0.4, size: 9},
     {group: b, value: 0.9, size: 9}, {group: c, value: 0.4, size: 9}]}
"""
    (assessment,) = card(build(text))["considerations"]["fairnessAssessments"]
    assert assessment["groupAtRisk"] == "a, c"


def test_red_team_categories_become_ethical_considerations_with_guardrails() -> None:
    risks = card(build(amendment=AMENDMENT))["considerations"]["ethicalConsiderations"]
    names = [r["name"] for r in risks]
    assert names[0].startswith("Adversarial injection: attack success rate 50.00% (3/6 attempts")
    assert names[1].startswith("Adversarial pii: attack success rate 0.00% (0/4")
    assert names[2].startswith("Adversarial all probes: attack success rate 2.50% (1/40")
    assert "pack jailbreaks@2.1 against local llama, entry adv-2" in names[2]
    assert names[3].startswith("Adversarial encoding: attack success rate 10.00% (2/20")
    mitigation = risks[0]["mitigationStrategy"]
    assert "Input limited to 4000 characters" in mitigation
    assert "2 blocked term(s) filtered" in mitigation
    assert "Refuses requests about: self-harm" in mitigation


def test_risks_have_no_mitigation_without_guardrails(validate: Any) -> None:
    text = "adversarial: [{pack: {name: p, version: '1'}, target: t, attempts: 4, hits: 1}]"
    bom = build(text)
    assert validate(bom) is None
    (risk,) = card(bom)["considerations"]["ethicalConsiderations"]
    assert set(risk) == {"name"}


def test_constraints_become_use_cases_and_limitations() -> None:
    considerations = card(build())["considerations"]
    assert considerations["useCases"] == ["Pre-screening of consumer credit applications"]
    limits = considerations["technicalLimitations"]
    assert limits[0] == "Out of scope: Final lending decisions without human review"
    assert "Output limited to 512 tokens" in limits
    assert "Languages supported: en, pt-BR" in limits


def test_datasets_are_data_components_referenced_by_the_model_card(validate: Any) -> None:
    bom = build()
    assert validate(bom) is None
    train, holdout = bom["components"]
    assert (train["type"], train["name"]) == ("data", "loans-2024")
    assert train["hashes"] == [{"alg": "SHA-256", "content": _digest("t")[7:]}]
    assert train["data"][0]["contents"] == {"url": "s3://data/loans-2024.parquet"}
    # No digest: no hash. A URI the iri-reference format would refuse stays a property.
    assert "hashes" not in holdout and "contents" not in holdout["data"][0]
    assert props(holdout["properties"])["charter:dataset:uri"] == "my local folder/holdout 2024"
    refs = [d["ref"] for d in card(bom)["modelParameters"]["datasets"]]
    assert refs == [train["bom-ref"], holdout["bom-ref"]]
    assert bom["dependencies"][0] == {"ref": "credit-risk@2.4.0", "dependsOn": refs}


def test_a_dataset_listed_twice_keeps_distinct_refs(validate: Any) -> None:
    ds = DatasetRef("loans", "train", "s3://data/loans")
    bom = build(datasets=(ds, ds))
    assert validate(bom) is None
    refs = [c["bom-ref"] for c in bom["components"]]
    assert len(set(refs)) == 2


def test_files_are_nested_file_components_with_sha256() -> None:
    files = build()["metadata"]["component"]["components"]
    assert [(f["type"], f["name"]) for f in files] == [
        ("file", "config.json"),
        ("file", "weights/model.safetensors"),
    ]
    assert files[1]["hashes"] == [{"alg": "SHA-256", "content": _digest("weights")[7:]}]
    assert props(files[1]["properties"])["charter:file:size"] == "1200"


def test_version_facts_are_properties_and_pedigree() -> None:
    model = build()["metadata"]["component"]
    facts = props(model["properties"])
    assert facts["charter:fingerprint:architecture"] == _digest("arch")
    assert facts["charter:fingerprint:architecture_method"] == "hf-config"
    assert facts["charter:model:risk_tier"] == "high"
    assert facts["charter:version:state"] == "published"
    assert facts["charter:version:parent"] == "credit-risk@2.3.1"
    assert facts["charter:param:lr"] == "0.001"
    assert model["pedigree"]["ancestors"][0]["version"] == "2.3.1"
    assert model["pedigree"]["commits"] == [{"uid": "0f3c2a9"}]


def test_card_properties_carry_digests_entries_and_amendments() -> None:
    version, profile = make_profile(make_version(), FULL, AMENDMENT)
    bom = cyclonedx_bom(model=MODEL, version=version, files=FILES, profile=profile)
    facts = props(card(bom)["properties"])
    assert facts["charter:profile:digest"] == profile.digest
    assert facts["charter:baseline:digest"] == version.baseline_digest
    assert facts["charter:entry:eval-1"].startswith("evaluations; accuracy=0.91 ratio on region=EU")
    assert "0.95 CI [0.88, 0.94]" in facts["charter:entry:eval-1"]
    assert facts["charter:entry:eval-5"].endswith("origin=am-1")
    assert facts["charter:superseded:eval-2"] == "eval-5"
    assert facts["charter:retracted:eval-4"] == "am-1"
    assert facts["charter:amendment:am-1"].startswith("production red-team")
