"""CycloneDX 1.6 ML-BOM of a version: its files, datasets and safety profile.

The BOM is plain JSON written here (``cyclonedx-python-lib`` has no model-card
model); the tests validate it against the official 1.6 schema. Facts the
schema has no field for travel as ``charter:*`` properties, so nothing the
profile says is lost. The output is a pure function of its inputs: with no
``serial`` or ``timestamp`` given, both are derived from the content, so the
same version and profile always export to the same bytes.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

import charter
from charter.domain.canonical import canonical_digest
from charter.domain.entities import (
    FileRecord,
    Model,
    Version,
    canonical_time,
    format_time,
    parse_time,
)
from charter.domain.errors import InvalidInputError
from charter.domain.folding import EffectiveProfile

# The heuristic the profile schema uses to guess a metric's direction; reused
# so "the group at risk" agrees with how evaluations are judged.
from charter.domain.profile import _LOWER_IS_BETTER, SCHEMA_ID

__all__ = ["SPEC_VERSION", "cyclonedx_bom"]

SPEC_VERSION = "1.6"
_SHA256 = re.compile(r"^sha256:([0-9a-f]{64})$")
# Only URIs this pattern accepts go into ``contents.url`` (the schema checks the
# ``iri-reference`` format); any other URI is still kept as a property.
_SAFE_URI = re.compile(
    r"^[a-z][a-z0-9+.-]*://[A-Za-z0-9._~-]*(?::[0-9]+)?"
    r"(?:/[A-Za-z0-9._~!$&'()*+,;=:@/-]*)?(?:\?[A-Za-z0-9._~!$&'()*+,;=:@/?-]*)?$"
)
_SERIAL_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://charter.dev/exports/cyclonedx")
_FOUR_FIFTHS = 0.8


def cyclonedx_bom(
    *,
    model: Model,
    version: Version,
    files: Sequence[FileRecord],
    profile: EffectiveProfile,
    serial: str | None = None,
    timestamp: str | None = None,
) -> dict[str, Any]:
    """Build a CycloneDX 1.6 ML-BOM describing one version and its safety profile.

    Args:
        model: the model the version belongs to (name, description, risk tier).
        version: the version; its manifest digest identifies the model component.
        files: the version's manifest, one nested ``file`` component each.
        profile: the effective profile to describe in the model card.
        serial: ``urn:uuid:…`` (or a bare UUID) for ``serialNumber``; default: a
            UUIDv5 of the BOM's content, so identical content gets an identical serial.
        timestamp: ISO-8601 creation time; default: the latest time among the
            facts the BOM carries (registration, publish, entries, amendments).

    Returns:
        A JSON-ready dict that validates against the CycloneDX 1.6 JSON schema.

    Raises:
        InvalidInputError: ``serial`` is not a UUID, ``timestamp`` is not ISO-8601,
            or ``profile`` belongs to another version.
    """
    if profile.ref != version.ref:
        raise InvalidInputError(
            f"the profile is of {profile.ref}, not {version.ref}", field="profile"
        )
    ref = version.ref
    datasets = _dataset_components(version)
    component = _model_component(model, version, files)
    component["modelCard"] = _model_card(version, profile, [d["bom-ref"] for d in datasets])
    bom: dict[str, Any] = {
        "$schema": "http://cyclonedx.org/schema/bom-1.6.schema.json",
        "bomFormat": "CycloneDX",
        "specVersion": SPEC_VERSION,
        "version": 1,
        "metadata": {
            "timestamp": _timestamp(timestamp, version, profile),
            "tools": {
                "components": [
                    {"type": "application", "name": "charter", "version": charter.__version__}
                ]
            },
            "component": component,
        },
    }
    if datasets:
        bom["components"] = datasets
        bom["dependencies"] = [
            {"ref": ref, "dependsOn": [d["bom-ref"] for d in datasets]},
            *({"ref": d["bom-ref"]} for d in datasets),
        ]
    if serial is None:
        serial = str(uuid.uuid5(_SERIAL_NAMESPACE, canonical_digest(bom)))
    return {**bom, "serialNumber": _serial(serial)}


def _serial(serial: str) -> str:
    try:
        return f"urn:uuid:{uuid.UUID(serial.removeprefix('urn:uuid:'))}"
    except ValueError:
        raise InvalidInputError(
            f"invalid BOM serial {serial!r}: use urn:uuid:<uuid>", field="serial"
        ) from None


def _timestamp(given: str | None, version: Version, profile: EffectiveProfile) -> str:
    if given is not None:
        return canonical_time(given)
    times = [version.created_at, version.published_at]
    times += [e.body.get("provenance", {}).get("recorded_at") for e in profile.entries]
    times += [a.created_at for a in profile.amendments]
    return format_time(max(parse_time(t) for t in times if t))


def _prop(name: str, value: object) -> dict[str, str]:
    return {"name": name, "value": str(value)}


def _hashes(digest: str | None) -> list[dict[str, str]]:
    match = _SHA256.match(digest or "")
    return [{"alg": "SHA-256", "content": match.group(1)}] if match else []


def _num(value: Any) -> str:
    """Render a number the way canonical JSON does (1.0 -> "1"), stable across stores."""
    number = float(value)
    return str(int(number)) if number.is_integer() and abs(number) < 1e16 else repr(number)


def _model_component(model: Model, version: Version, files: Sequence[FileRecord]) -> dict[str, Any]:
    ref = version.ref
    facts: dict[str, object] = {
        "model:owner": model.owner,
        "model:risk_tier": model.risk_tier.value,
        "version:state": version.state.value,
        "version:parent": f"{version.model}@{version.parent}" if version.parent else None,
        "version:change_kind": version.change_kind,
        "version:created_by": version.created_by,
        "version:created_at": version.created_at,
        "version:published_by": version.published_by,
        "version:published_at": version.published_at,
        "version:run_id": version.run_id,
        "version:commit": version.commit,
        "manifest:digest": version.manifest_digest,
        "manifest:file_count": version.file_count,
        "manifest:total_size": version.total_size,
        "fingerprint:architecture": version.fp_architecture,
        "fingerprint:architecture_method": version.architecture_method,
        "fingerprint:data": version.fp_data,
        "fingerprint:config": version.fp_config,
    }
    props = [_prop(f"charter:{k}", v) for k, v in facts.items() if v is not None]
    props += [_prop(f"charter:param:{k}", v) for k, v in sorted(version.params.items())]
    props += [_prop(f"charter:tag:{k}", v) for k, v in sorted(version.tags.items())]
    component: dict[str, Any] = {
        "type": "machine-learning-model",
        "bom-ref": ref,
        "name": model.name,
        "version": version.version,
        "description": model.description,
        "hashes": _hashes(version.manifest_digest),
    }
    pedigree: dict[str, Any] = {}
    if version.parent:
        pedigree["ancestors"] = [
            {
                "type": "machine-learning-model",
                "bom-ref": f"{version.model}@{version.parent}",
                "name": model.name,
                "version": version.parent,
            }
        ]
    if version.commit:
        pedigree["commits"] = [{"uid": version.commit}]
    if pedigree:
        component["pedigree"] = pedigree
    if files:
        component["components"] = [_file_component(ref, f) for f in files]
    component["properties"] = props
    return component


def _file_component(ref: str, record: FileRecord) -> dict[str, Any]:
    return {
        "type": "file",
        "bom-ref": f"{ref}#file:{record.path}",
        "name": record.path,
        "hashes": _hashes(record.digest),
        "properties": [_prop("charter:file:size", record.size)],
    }


def _dataset_components(version: Version) -> list[dict[str, Any]]:
    components: list[dict[str, Any]] = []
    seen: set[str] = set()
    for ds in version.datasets:
        bom_ref = base = f"{version.ref}#dataset:{ds.role}:{ds.name}"
        n = 1
        while bom_ref in seen:  # the same dataset listed twice keeps distinct refs
            n += 1
            bom_ref = f"{base}~{n}"
        seen.add(bom_ref)
        data: dict[str, Any] = {"type": "dataset", "name": ds.name, "description": ds.role}
        if _SAFE_URI.match(ds.uri):
            data["contents"] = {"url": ds.uri}
        facts = {"role": ds.role, "uri": ds.uri, "digest": ds.digest, "size": ds.size}
        component: dict[str, Any] = {
            "type": "data",
            "bom-ref": bom_ref,
            "name": ds.name,
            "description": f"{ds.role} dataset of {version.ref}",
        }
        if hashes := _hashes(ds.digest):
            component["hashes"] = hashes
        component["data"] = [data]
        component["properties"] = [
            _prop(f"charter:dataset:{k}", v) for k, v in facts.items() if v is not None
        ]
        components.append(component)
    return components


def _model_card(
    version: Version, profile: EffectiveProfile, dataset_refs: list[str]
) -> dict[str, Any]:
    card: dict[str, Any] = {}
    if dataset_refs:
        card["modelParameters"] = {"datasets": [{"ref": r} for r in dataset_refs]}
    if metrics := [_metric(e) for e in profile.section("evaluations")]:
        card["quantitativeAnalysis"] = {"performanceMetrics": metrics}
    if considerations := _considerations(profile):
        card["considerations"] = considerations
    card["properties"] = _card_properties(version, profile)
    return card


def _metric(entry: dict[str, Any]) -> dict[str, Any]:
    metric: dict[str, Any] = {"type": entry["name"], "value": _num(entry["value"])}
    if entry.get("slice"):
        metric["slice"] = entry["slice"]
    if ci := entry.get("ci"):
        metric["confidenceInterval"] = {
            "lowerBound": _num(ci["low"]),
            "upperBound": _num(ci["high"]),
        }
    return metric


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _considerations(profile: EffectiveProfile) -> dict[str, Any]:
    constraints = profile.section("constraints")
    guardrails = _unique(line for c in constraints for line in _guardrails(c))
    out: dict[str, Any] = {}
    if uses := _unique(u for c in constraints for u in c.get("intended_uses", [])):
        out["useCases"] = uses
    limits = _unique(
        f"Out of scope: {u}" for c in constraints for u in c.get("out_of_scope_uses", [])
    )
    if limits or guardrails:
        out["technicalLimitations"] = limits + guardrails
    # The schema's risk has a name and a mitigation only: the rate goes in the name.
    mitigation = {"mitigationStrategy": "Guardrails declared in the safety profile: "
                  + "; ".join(guardrails) + "."} if guardrails else {}  # fmt: skip
    adversarial = profile.section("adversarial")
    if risks := [{"name": n, **mitigation} for e in adversarial for n in _attack_summaries(e)]:
        out["ethicalConsiderations"] = risks
    if fairness := [_fairness(entry) for entry in profile.section("bias_audits")]:
        out["fairnessAssessments"] = fairness
    return out


def _guardrails(entry: dict[str, Any]) -> list[str]:
    lines = [
        f"{label} limited to {entry[key]} {unit}"
        for key, label, unit in (
            ("max_input_chars", "Input", "characters"),
            ("max_input_tokens", "Input", "tokens"),
            ("max_output_chars", "Output", "characters"),
            ("max_output_tokens", "Output", "tokens"),
        )
        if entry.get(key) is not None
    ]
    if terms := entry.get("blocked_terms"):
        lines.append(f"{len(terms)} blocked term(s) filtered")
    if patterns := entry.get("blocked_patterns"):
        lines.append(f"{len(patterns)} blocked output pattern(s) filtered")
    if topics := entry.get("required_refusal_topics"):
        lines.append("Refuses requests about: " + ", ".join(topics))
    if languages := entry.get("allowed_languages"):
        lines.append("Languages supported: " + ", ".join(languages))
    if entry.get("input_schema") is not None:
        lines.append("Inputs validated against a JSON Schema")
    return lines


def _attack_summaries(entry: dict[str, Any]) -> list[str]:
    pack = entry["pack"]
    where = f"pack {pack['name']}@{pack['version']} against {entry['target']}, entry {entry['id']}"
    totals = {"attempts": entry["attempts"], "hits": entry["hits"],
              "rate": entry.get("attack_success_rate", 0.0)}  # fmt: skip
    categories: dict[str, dict[str, Any]] = entry.get("categories") or {"all probes": totals}
    return [
        f"Adversarial {name}: attack success rate {float(c['rate']):.2%} "
        f"({c['hits']}/{c['attempts']} attempts; {where})"
        for name, c in sorted(categories.items())
    ]


def _fairness(entry: dict[str, Any]) -> dict[str, str]:
    groups: list[dict[str, Any]] = entry["groups"]
    metric, feature = entry["metric"], entry["sensitive_feature"]
    lower_is_better = bool(_LOWER_IS_BETTER.search(metric))
    values = [float(g["value"]) for g in groups]
    worst = max(values) if lower_is_better else min(values)
    best = min(values) if lower_is_better else max(values)
    at_risk = [g for g in groups if float(g["value"]) == worst]
    favoured = [g for g in groups if float(g["value"]) == best]
    ratio, difference = float(entry["ratio"]), float(entry["difference"])
    # 29 CFR 1607.4(D) speaks of selection rates only; other ratios are just reported.
    adverse = metric == "selection_rate" and ratio < _FOUR_FIFTHS
    verdict = f", below the four-fifths rule's {_FOUR_FIFTHS} threshold" if adverse else ""
    shown = "; ".join(f"{g['group']} {_num(g['value'])} (n={g['size']})" for g in groups)
    return {
        "groupAtRisk": ", ".join(str(g["group"]) for g in at_risk),
        "benefits": (
            f"Most favourable {metric} by {feature}: "
            + ", ".join(f"{g['group']} ({_num(g['value'])})" for g in favoured)
            + f". All groups: {shown}."
        ),
        "harms": (
            f"Least favourable {metric} by {feature} "
            f"({'higher' if lower_is_better else 'lower'} is worse): "
            + ", ".join(f"{g['group']} ({_num(g['value'])})" for g in at_risk)
            + f"; ratio lowest/highest {ratio:.4g}{verdict}; "
            f"difference highest-lowest {difference:.4g}."
        ),
        "mitigationStrategy": (
            f"No mitigation recorded in the safety profile (Charter entry {entry['id']})."
        ),
    }


def _card_properties(version: Version, profile: EffectiveProfile) -> list[dict[str, str]]:
    props = [
        _prop("charter:profile:schema", SCHEMA_ID),
        _prop("charter:profile:digest", profile.digest),
    ]
    baseline = version.baseline_digest or profile.baseline_digest
    if baseline is not None:
        props.append(_prop("charter:baseline:digest", baseline))
    if profile.as_of is not None:
        props.append(_prop("charter:profile:as_of", profile.as_of))
    for active in profile.entries:
        body = active.body
        source = body.get("provenance", {}).get("source", "manual")
        props.append(
            _prop(
                f"charter:entry:{active.id}",
                f"{active.section}; {_entry_label(body)}; source={source}; "
                f"origin={active.amendment_id or 'baseline'}",
            )
        )
    props += [_prop(f"charter:superseded:{old}", new) for old, new in profile.superseded]
    props += [_prop(f"charter:retracted:{old}", by) for old, by in profile.retracted]
    props += [
        _prop(f"charter:amendment:{a.id}", f"{a.reason} ({a.author}, {a.created_at})")
        for a in profile.amendments
    ]
    return props


def _entry_label(body: dict[str, Any]) -> str:
    section = body["section"]
    if section == "evaluations":
        label = f"{body['name']}={_num(body['value'])} {body.get('unit', 'ratio')}"
        if body.get("slice"):
            label += f" on {body['slice']}"
        if ci := body.get("ci"):
            label += f", {_num(ci.get('level', 0.95))} CI [{_num(ci['low'])}, {_num(ci['high'])}]"
        return label
    if section == "bias_audits":
        return f"{body['metric']} by {body['sensitive_feature']}"
    if section == "adversarial":
        return f"{body['hits']}/{body['attempts']} hits against {body['target']}"
    return "guardrails and intended use"
