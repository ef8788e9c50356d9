"""What a card shows: :class:`CardInput` turned into one plain view model.

Both templates (Markdown and HTML) read the same view model, so the two
formats cannot drift apart in content; they differ only in presentation.
Everything here is pure: domain objects in, dicts of display values out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from charter.cards._format import (
    digest_prefix,
    human_size,
    number,
    scalar,
    summarize,
    truncate,
)
from charter.domain.entities import FileRecord, Model, Version
from charter.domain.folding import ActiveEntry, EffectiveProfile
from charter.domain.gate import EPS
from charter.domain.lineage import Lineage

__all__ = ["FOUR_FIFTHS", "CardInput", "build_context"]

# 29 CFR 1607.4(D): a group's rate below 80% of the highest group's rate is
# evidence of adverse impact.
FOUR_FIFTHS = 0.8
SAMPLE_TRANSCRIPTS = 2
TRANSCRIPT_CHARS = 300
_MAX_GENERIC_COLUMNS = 8


@dataclass(frozen=True, kw_only=True)
class CardInput:
    """Everything a model card shows, gathered by the caller (no store access here).

    Fields are keyword-only, so the optional ones can be left out in any order.

    Attributes:
        model: the model line.
        version: the version the card describes.
        files: the version's manifest.
        lineage: the version with its ancestors and descendants.
        profile: the effective profile in force (baseline + amendments).
        baseline: the baseline profile alone (as sealed at publish).
        trend: metric name -> ``[(version, value)]`` along the lineage, oldest first.
        decisions: gate decisions (free-form mappings), newest last.
        approvals: approvals (free-form mappings), newest last.
        rendered_at: ISO-8601 time of rendering, printed in the footer.
    """

    model: Model
    version: Version
    files: Sequence[FileRecord]
    lineage: Lineage
    profile: EffectiveProfile
    baseline: EffectiveProfile
    trend: Mapping[str, Sequence[tuple[str, float]]] = field(
        default_factory=lambda: MappingProxyType({})
    )
    decisions: Sequence[Mapping[str, Any]] = ()
    approvals: Sequence[Mapping[str, Any]] = ()
    rendered_at: str


def _origin(entry: ActiveEntry) -> dict[str, Any]:
    amended = entry.amendment_id is not None
    return {"amended": amended, "origin": entry.amendment_id or "baseline"}


def _dataset(info: Mapping[str, Any] | None) -> str:
    if not info:
        return ""
    digest = digest_prefix(info.get("digest"))
    return f"{info.get('name')} ({digest})" if digest else str(info.get("name"))


def _overview(card: CardInput) -> dict[str, Any]:
    m, v = card.model, card.version
    return {
        "name": m.name,
        "ref": v.ref,
        "version": v.version,
        "description": m.description,
        "owner": m.owner,
        "risk_tier": m.risk_tier.value,
        "state": v.state.value,
        "change_kind": v.change_kind or "",
        "parent": f"{v.model}@{v.parent}" if v.parent else "",
        "created_by": v.created_by,
        "created_at": v.created_at,
        "published_by": v.published_by or "",
        "published_at": v.published_at or "",
        "run_id": v.run_id or "",
        "commit": v.commit or "",
        "tags": sorted(v.tags.items()),
        "params": sorted(v.params.items()),
        "file_count": v.file_count,
        "total_size": human_size(v.total_size),
    }


def _evaluations(card: CardInput) -> list[dict[str, Any]]:
    known = {e.id: e.body for e in (*card.baseline.entries, *card.profile.entries)}
    rows = []
    for entry in card.profile.entries:
        if entry.section != "evaluations":
            continue
        b = entry.body
        ci = b.get("ci")
        old = b.get("supersedes")
        rows.append(
            {
                **_origin(entry),
                "id": entry.id,
                "name": b["name"],
                "value": b["value"],
                "display": number(b["value"], b.get("unit")),
                "unit": b.get("unit", "ratio"),
                "direction": "↓ lower is better"
                if b.get("direction") == "lower_is_better"
                else "↑ higher is better",
                "slice": b.get("slice", ""),
                "ci": f"{number(ci['low'])}–{number(ci['high'])} ({ci.get('level', 0.95):.0%})"
                if ci
                else "",
                "samples": number(b["samples"], "count") if b.get("samples") is not None else "",
                "dataset": _dataset(b.get("dataset")),
                "dataset_name": (b.get("dataset") or {}).get("name", ""),
                "supersedes": f"{old} ({summarize(known[old])})" if old in known else old or "",
            }
        )
    return rows


def _bias(card: CardInput) -> list[dict[str, Any]]:
    audits = []
    for entry in card.profile.entries:
        if entry.section != "bias_audits":
            continue
        b = entry.body
        groups = b.get("groups", [])
        best = max((g["value"] for g in groups), default=0.0)
        ratio = float(b.get("ratio", 1.0))
        rows = []
        for g in groups:
            rel = g["value"] / best if best > 0 else 1.0
            rows.append(
                {
                    "group": g["group"],
                    "size": number(g["size"], "count"),
                    "value": number(g["value"]),
                    "relative": number(rel),
                    "below": rel < FOUR_FIFTHS,
                    "reference": g["group"] == b.get("reference_group"),
                }
            )
        audits.append(
            {
                **_origin(entry),
                "id": entry.id,
                "entry": b,
                "metric": b["metric"],
                "feature": b["sensitive_feature"],
                "dataset": _dataset(b.get("dataset")),
                "groups": rows,
                "difference": number(b.get("difference")),
                "ratio": number(ratio),
                # Same tolerance as the gate, so 0.36/0.45 passes in both.
                "fails": ratio < FOUR_FIFTHS - EPS,
                "threshold": number(best * FOUR_FIFTHS),
                "chart": None,
            }
        )
    return audits


def _adversarial(card: CardInput) -> list[dict[str, Any]]:
    campaigns = []
    for entry in card.profile.entries:
        if entry.section != "adversarial":
            continue
        b = entry.body
        pack = b.get("pack", {})
        categories = [
            {
                "name": name,
                "attempts": number(c["attempts"], "count"),
                "hits": number(c["hits"], "count"),
                "rate": number(c["rate"]),
            }
            for name, c in sorted(b.get("categories", {}).items())
        ]
        samples = [
            {
                "probe": s["probe"],
                "category": s["category"],
                "detector": s.get("detector", ""),
                "prompt": truncate(s["prompt"], TRANSCRIPT_CHARS),
                "response": truncate(s["response"], TRANSCRIPT_CHARS),
            }
            for s in b.get("samples", [])[:SAMPLE_TRANSCRIPTS]
        ]
        campaigns.append(
            {
                **_origin(entry),
                "id": entry.id,
                "pack": f"{pack.get('name')}@{pack.get('version')}",
                "pack_digest": digest_prefix(pack.get("digest")),
                "target": b["target"],
                "attempts": number(b["attempts"], "count"),
                "hits": number(b["hits"], "count"),
                "rate": number(b.get("attack_success_rate", 0.0)),
                "categories": categories,
                "samples": samples,
                "more_samples": max(0, len(b.get("samples", [])) - SAMPLE_TRANSCRIPTS),
            }
        )
    return campaigns


_LIMITS = (
    ("max_input_chars", "Max input characters"),
    ("max_output_chars", "Max output characters"),
    ("max_input_tokens", "Max input tokens"),
    ("max_output_tokens", "Max output tokens"),
)


def _count(items: Sequence[Any], noun: str) -> str:
    return f"{len(items)} {noun}{'' if len(items) == 1 else 's'}"


def _constraints(card: CardInput) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    uses: list[dict[str, Any]] = []
    guards: list[dict[str, Any]] = []
    for entry in card.profile.entries:
        if entry.section != "constraints":
            continue
        b = entry.body
        for kind, key in (("intended", "intended_uses"), ("out_of_scope", "out_of_scope_uses")):
            uses += [
                {**_origin(entry), "id": entry.id, "kind": kind, "text": t} for t in b.get(key, [])
            ]
        items = [(label, number(b[k], "count")) for k, label in _LIMITS if b.get(k) is not None]
        if b.get("blocked_terms"):
            items.append(("Blocked terms", f"{_count(b['blocked_terms'], 'term')} (in {entry.id})"))
        if b.get("blocked_patterns"):
            items.append(("Blocked patterns", _count(b["blocked_patterns"], "regular expression")))
        if b.get("required_refusal_topics"):
            items.append(("Must refuse", ", ".join(b["required_refusal_topics"])))
        if b.get("allowed_languages"):
            items.append(("Allowed languages", ", ".join(b["allowed_languages"])))
        if b.get("input_schema") is not None:
            props = b["input_schema"].get("properties", {})
            items.append(("Input schema", f"JSON Schema ({len(props)} properties)"))
        if items:
            guards.append({**_origin(entry), "id": entry.id, "settings": items})
    return uses, guards


def _amendments(card: CardInput) -> list[dict[str, Any]]:
    known = {e.id: e.body for e in (*card.baseline.entries, *card.profile.entries)}
    by_new = dict((new, old) for old, new in card.profile.superseded)
    log = []
    for am in card.profile.amendments:
        superseded = [
            f"{by_new[new]} → {new}"
            + (f" ({summarize(known[by_new[new]])})" if by_new[new] in known else "")
            for new in am.entry_ids
            if new in by_new
        ]
        retracted = [
            f"{old} ({summarize(known[old])})" if old in known else old for old in am.retracts
        ]
        log.append(
            {
                "id": am.id,
                "author": am.author,
                "created_at": am.created_at,
                "reason": am.reason,
                "evidence": list(am.evidence),
                "added": list(am.entry_ids),
                "superseded": superseded,
                "retracted": retracted,
            }
        )
    return log


def _records(items: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Free-form mappings as a table: the first keys seen become the columns."""
    columns: list[str] = []
    for item in items:
        columns += [k for k in item if k not in columns]
    columns = columns[:_MAX_GENERIC_COLUMNS]
    rows = [[scalar(item.get(c)) for c in columns] for item in items]
    return {"columns": columns, "rows": rows}


def _lineage(card: CardInput) -> list[dict[str, Any]]:
    chain = [("this version", card.lineage.version)]
    chain += [("parent" if i == 0 else "ancestor", v) for i, v in enumerate(card.lineage.ancestors)]
    chain += [("descendant", v) for v in card.lineage.descendants]
    return [
        {
            "relation": relation,
            "ref": v.ref,
            "change_kind": v.change_kind or "",
            "state": v.state.value,
            "run_id": v.run_id or "",
            "commit": digest_prefix(v.commit, 12) if v.commit else "",
            "created_at": v.created_at,
        }
        for relation, v in chain
    ]


def build_context(card: CardInput) -> dict[str, Any]:
    """Turn a :class:`CardInput` into the view model both templates render.

    Args:
        card: the gathered facts.

    Returns:
        A dict of display-ready values (strings, lists, flags); chart slots are None
        until the HTML renderer fills them.
    """
    uses, guards = _constraints(card)
    profile, baseline = card.profile, card.baseline
    sealed = profile.baseline_digest or card.version.baseline_digest
    return {
        "overview": _overview(card),
        "uses": uses,
        "datasets": [
            {
                **d.state(),
                "digest_short": digest_prefix(d.digest),
                "size_text": human_size(d.size) if d.size is not None else "",
            }
            for d in card.version.datasets
        ],
        "lineage": _lineage(card),
        "evaluations": _evaluations(card),
        "bias": _bias(card),
        "adversarial": _adversarial(card),
        "guardrails": guards,
        "amendments": _amendments(card),
        "decisions": _records(card.decisions),
        "approvals": _records(card.approvals),
        "trend": [
            {"metric": m, "points": [(v, number(x)) for v, x in pts], "chart": None}
            for m, pts in sorted(card.trend.items())
            if pts
        ],
        "files": [
            {
                "path": f.path,
                "size": human_size(f.size),
                "bytes": f.size,
                "sha": digest_prefix(f.digest),
            }
            for f in sorted(card.files, key=lambda f: f.path)
        ],
        "profile_digest": profile.digest,
        "baseline_digest": sealed or baseline.digest,
        "baseline_sealed": sealed is not None,
        "as_of": profile.as_of,
        "rendered_at": card.rendered_at,
        "four_fifths": FOUR_FIFTHS,
        "charts_note": None,
    }
