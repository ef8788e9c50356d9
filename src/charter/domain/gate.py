"""Gate evaluation: a policy and the facts about a version in, a decision out (pure).

Every rule yields at least one :class:`Finding`; the gate passes when all pass.

- **Evidence that counts**: the newest entry in force that counts. Entries
  carried over from another version (``provenance.source: carried-over:…``) where
  the stage forbids it, and entries older than their section's maximum age
  (``provenance.recorded_at`` vs the decision time) do not count; filter findings
  (always passing) list them, and a check left without evidence fails saying why.
- **Fairness**: a finding per audit (newest per feature and metric) and bound.
  **Red-team**: newest campaign per (pack, target); the worst one is reported.
- **Regression**: with no version in the reference stage the rule passes
  ("nothing to regress against"), so a first promotion is possible; a reference
  lacking the metric fails unless ``missing_reference: pass``. The reference
  profile is taken as it stands (no age or carried-over filter). A version that
  itself holds the reference stage is judged as it was promoted: against the
  version it replaced there (:func:`replaced_version`), never against itself.
- **Approvals**: distinct users with role ``approver`` or ``admin``, never the
  registrant; any reject in the round fails the rule, whoever made it.
"""

from __future__ import annotations

import dataclasses
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from charter.domain import _rules as r_
from charter.domain.entities import Model, Version, parse_time
from charter.domain.errors import IntegrityError
from charter.domain.folding import EffectiveProfile
from charter.domain.policy import Policy, rules_for
from charter.domain.policy import policy_digest as _policy_digest

__all__ = [
    "ApprovalFact",
    "Finding",
    "GateDecision",
    "GateFacts",
    "evaluate_gate",
    "replaced_version",
]

SCHEMA_ID = "charter.gate/v1"
EPS = 1e-9  # comparisons tolerate this much float rounding
APPROVER_ROLES = frozenset({"approver", "admin"})


@dataclass(frozen=True)
class ApprovalFact:
    """One sign-off of the current round (``id``: the stored approval id, if any)."""

    user: str
    role: str
    decision: Literal["approve", "reject"]
    at: str
    comment: str = ""
    id: str | None = None


@dataclass(frozen=True)
class GateFacts:
    """Everything a gate judges, gathered by the service.

    Attributes:
        model: the model (its risk tier selects the tier defaults).
        version: the version at the gate (``created_by`` is the registrant).
        stage: the stage it would enter.
        profile: its effective profile now.
        reference: (version, profile) now in ``StageRules.reference_stage``, or None;
            when ``incumbent``, the version it replaced there instead.
        card_stale: whether the model card is stale (None: no card rendered).
        approvals: sign-offs of the current round for this stage.
        now: decision time, Charter's ISO-8601 ``Z`` format.
        incumbent: whether the version itself holds the reference stage.
    """

    model: Model
    version: Version
    stage: str
    profile: EffectiveProfile
    reference: tuple[Version, EffectiveProfile] | None
    card_stale: bool | None
    approvals: Sequence[ApprovalFact]
    now: str
    incumbent: bool = False


def replaced_version(moves: Sequence[tuple[str, str]], version: str) -> str | None:
    """The version ``version`` replaced when it was last promoted into a stage.

    The reference of a regression rule is the version a candidate would replace.
    The version holding the stage has replaced one already: re-judged there (by
    monitoring, or after a policy change) it is compared with that one, as when it
    was promoted. Rollbacks are not promotions: a version restored by one keeps
    the predecessor of its promotion, never the version rolled back for being worse.

    Args:
        moves: the stage's history as ``(version, action)``, oldest first
            (actions ``promote``, ``override``, ``rollback``).
        version: the version holding the stage.

    Returns:
        The version it replaced, or None (it was the first, or only ever restored).
    """
    replaced, holder = None, None
    for number, action in moves:
        if number == version and action != "rollback" and holder != version:
            replaced = holder
        holder = number
    return replaced


@dataclass(frozen=True)
class Finding:
    """The outcome of one rule (or of one audit under a fairness rule)."""

    rule: str
    passed: bool
    observed: Any
    required: Any
    evidence: tuple[str, ...]
    message: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: rule, passed, observed, required, evidence, message."""
        return {**dataclasses.asdict(self), "evidence": list(self.evidence)}


@dataclass(frozen=True)
class GateDecision:
    """A gate's verdict with its findings and the digests it was judged on."""

    passed: bool
    stage: str
    policy_digest: str
    findings: tuple[Finding, ...]
    evaluated_at: str
    ref: str = ""
    risk_tier: str = ""
    profile_digest: str = ""
    reference: str | None = None

    @property
    def failures(self) -> tuple[Finding, ...]:
        """The findings that failed."""
        return tuple(f for f in self.findings if not f.passed)

    def to_dict(self) -> dict[str, Any]:
        """Stable JSON (``charter.gate/v1``): ``schema``, ``passed``, ``stage``, ``ref``,
        ``risk_tier``, ``policy_digest``, ``profile_digest``, ``reference``
        (``name@version`` compared with, or null), ``evaluated_at``, ``summary`` (``total``,
        ``passed``, ``failed``) and ``findings`` (each: ``rule``, ``passed``,
        ``observed``, ``required``, ``evidence`` (entry or approval ids), ``message``).
        """
        keys = ("passed", "stage", "ref", "risk_tier", "policy_digest", "profile_digest")
        total, failed = len(self.findings), len(self.failures)
        return {
            "schema": SCHEMA_ID,
            **{k: getattr(self, k) for k in (*keys, "reference", "evaluated_at")},
            "summary": {"total": total, "passed": total - failed, "failed": failed},
            "findings": [f.to_dict() for f in self.findings],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GateDecision:
        """Rebuild a decision from :meth:`to_dict` output (e.g. from a ledger entry)."""
        found = tuple(Finding(**f | {"evidence": tuple(f["evidence"])}) for f in data["findings"])
        keys = [f.name for f in dataclasses.fields(cls) if f.name != "findings"]
        return cls(findings=found, **{k: data[k] for k in keys})

    def to_junit_xml(self) -> str:
        """JUnit XML: one ``<testsuite name="charter.gate.<stage>">``, a testcase per finding.

        The suite has ``tests``/``failures`` counts, a UTC ``timestamp`` without zone
        (as the JUnit schema wants) and properties (ref, tier, digests); a failed
        finding has ``<failure message=… type="charter.gate">`` with observed,
        required and evidence in its text.
        """
        name, failures = f"charter.gate.{self.stage}", str(len(self.failures))
        attrs = {"tests": str(len(self.findings)), "failures": failures, "errors": "0"}
        attrs |= {"skipped": "0", "time": "0", "timestamp": self.evaluated_at[:19]}
        suite = ET.Element("testsuite", {"name": name, **attrs})
        props = ET.SubElement(suite, "properties")
        for key in ("ref", "risk_tier", "policy_digest", "profile_digest", "reference"):
            ET.SubElement(props, "property", name=key, value=_xml(getattr(self, key) or ""))
        for f in self.findings:
            case = ET.SubElement(suite, "testcase", classname=name, name=_xml(f.rule), time="0")
            if not f.passed:
                fail = ET.SubElement(case, "failure", message=_xml(f.message), type="charter.gate")
                used = ", ".join(f.evidence) or "none"
                detail = f"observed: {f.observed}\nrequired: {f.required}\nevidence: {used}"
                fail.text = _xml(detail)
        ET.indent(suite)
        return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suite, "unicode") + "\n"


def _xml(text: str) -> str:
    # XML 1.0 cannot carry most control characters, and user comments might hold some.
    return re.sub(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]", "\ufffd", text)


class _Pool(r_.Evidence):
    def missing(self, rule: str, what: str, why: str, if_missing: str, required: Any) -> Finding:
        """The finding of a check without evidence (fails unless ``if_missing`` is pass)."""
        ok = if_missing == "pass"
        note = "; checked only when present" if ok else ""
        message = f"no {what} {'in' if ok else 'counts in'} the profile of {self.ref}{note}{why}"
        return Finding(rule, ok, None, required, (), message)


def _metric(s: r_.Sourced[r_.MetricRule], pool: _Pool) -> Finding:
    r, rule = s.rule, f"{s.path}: {s.rule.describe()}"
    required = {k: v for k, v in (("min", r.min), ("max", r.max)) if v is not None}
    counted, why = pool.match("evaluations", name=r.metric, slice=r.slice)
    if not counted:
        what = f"evaluation named {r.metric} " + (f"on slice {r.slice}" if r.slice else "(overall)")
        return pool.missing(rule, what, why, r.if_missing, required)
    entry, value, verdict = counted[-1], float(counted[-1]["value"]), None
    if r.min is not None and value < r.min - EPS:
        verdict = f"is below the minimum {r.min:g}"
    elif r.max is not None and value > r.max + EPS:
        verdict = f"is above the maximum {r.max:g}"
    met = "meets " + " and ".join(f"{k} {v:g}" for k, v in required.items())
    message = f"{r.label} = {value:g} ({entry['id']}) {verdict or met}"
    return Finding(rule, verdict is None, value, required, (entry["id"],), message)


def _fairness(s: r_.Sourced[r_.FairnessRule], pool: _Pool) -> Iterator[Finding]:
    r = s.rule
    bounds = {"ratio_min": r.ratio_min, "difference_max": r.difference_max}
    required = {k: v for k, v in bounds.items() if v is not None}
    where = {"metric": r.metric, "sensitive_feature": r.sensitive_feature}
    counted, why = pool.match("bias_audits", **{k: v for k, v in where.items() if v})
    if not counted:
        what = f"bias audit of {r.metric or 'a metric'} for {r.sensitive_feature or 'a feature'}"
        yield pool.missing(f"{s.path}: {r.describe()}", what, why, r.if_missing, required)
    for audit in {(b["sensitive_feature"], b["metric"]): b for b in counted}.values():
        feature, metric = audit["sensitive_feature"], audit["metric"]
        low, high = (sorted(audit["groups"], key=lambda g: g["value"])[i] for i in (0, -1))
        pair = f"lowest group: {low['group']}, {low['value']:.2f} vs {high['group']}"
        observed = {k: audit[k] for k in ("ratio", "difference")}
        observed |= {"lowest": low["group"], "highest": high["group"]}
        for key, bound in required.items():
            name, floor = key.split("_")[0], key.endswith("_min")
            value = audit[name]
            ok = value >= bound - EPS if floor else value <= bound + EPS
            verdict = (("is below", "meets") if floor else ("exceeds", "is within"))[ok]
            message = (
                f"{metric} {name} {value:.2f} for {feature} ({pair} {high['value']:.2f}) "
                f"{verdict} the {'floor' if floor else 'ceiling'} {bound:g}"
            )
            rule = f"{s.path}: {metric}[{feature}] {name} {'>=' if floor else '<='} {bound:g}"
            yield Finding(rule, ok, observed, {key: bound}, (audit["id"],), message)


def _redteam(s: r_.Sourced[r_.RedTeamRule], pool: _Pool) -> Iterator[Finding]:
    r = s.rule
    counted, why = pool.match("adversarial")
    campaigns = {(b["pack"]["name"], b["target"]): b for b in counted}.values()
    checks = [(None, r.max_attack_success_rate), *r.categories.items()]
    for category, ceiling in ((c, v) for c, v in checks if v is not None):
        label = f"{category or 'overall'} attack success rate"
        rule = f"{s.path}: {label} <= {ceiling:g}"
        cells = [(b["categories"].get(category, {}) if category else b, b) for b in campaigns]
        rows = [
            (float(c.get("rate", c.get("attack_success_rate", 0.0))), b, c) for c, b in cells if c
        ]
        if not rows:
            what = "red-team campaign" + (f" covering {category}" if category else "")
            yield pool.missing(rule, what, why, r.if_missing, ceiling)
            continue
        rate, body, cell = max(rows, key=lambda row: row[0])
        ok = rate <= ceiling + EPS
        message = (
            f"{label} {rate:.3g} ({body['id']}, pack {body['pack']['name']}@"
            f"{body['pack']['version']} on {body['target']}: {cell['hits']} of "
            f"{cell['attempts']}){' (worst campaign)' if len(rows) > 1 else ''} "
            f"{'is within' if ok else 'exceeds'} the ceiling {ceiling:g}"
        )
        yield Finding(rule, ok, rate, ceiling, tuple(b["id"] for _, b, _ in rows), message)


def _regression(s: r_.Sourced[r_.RegressionRule], pool: _Pool, facts: GateFacts) -> Finding:
    r, rule, name = s.rule, f"{s.path}: {s.rule.describe()}", s.rule.label
    key = "max_drop" if r.max_drop is not None else "max_relative_drop"
    tolerance = float(getattr(r, key))
    counted, why = pool.match("evaluations", name=r.metric, slice=r.slice)
    if not counted:
        return pool.missing(rule, f"evaluation {name}", why, "fail", {key: tolerance})
    cur = counted[-1]
    value, used = float(cur["value"]), (cur["id"],)
    if facts.reference is None:
        message = f"no version in {r.against} yet: nothing to regress against"
        if facts.incumbent:
            message = (f"{facts.version.ref} holds {r.against} and replaced no version "
                       "there: nothing to regress against")  # fmt: skip
        return Finding(rule, True, {"value": value}, {key: tolerance}, used, message)
    ref_version, ref_profile = facts.reference
    where = f"{r.against} before it" if facts.incumbent else r.against
    wanted = {"name": r.metric, "slice": r.slice}
    olds = [b for b in ref_profile.section("evaluations") if r_.matches(b, wanted)]
    if not olds:
        ok = r.missing_reference == "pass"
        message = f"{ref_version.ref} in {where} has no evaluation {name} to compare with"
        message += " (missing_reference: pass)" if ok else ""
        observed = {"value": value, "reference": None}
        return Finding(rule, ok, observed, {key: tolerance}, used, message)
    old = olds[-1]
    base = float(old["value"])
    drop = value - base if cur.get("direction") == "lower_is_better" else base - value
    rel = drop / abs(base) if base else (0.0 if drop <= EPS else None)
    amount = drop if key == "max_drop" else rel
    ok = amount is not None and amount <= tolerance + EPS
    shown = "without bound" if amount is None else f"{amount:+.4g}"
    message = (
        f"{name} = {value:g} ({cur['id']}) vs {base:g} on {ref_version.ref} ({old['id']}, "
        f"{where}): worse by {shown}{'' if key == 'max_drop' else ' relative'}, "
        f"{'within' if ok else 'beyond'} the tolerance {tolerance:g}"
    )
    observed = {"value": value, "reference": base, "drop": drop, "relative_drop": rel}
    evidence = (cur["id"], f"{ref_version.ref}#{old['id']}")
    return Finding(rule, ok, observed, {key: tolerance}, evidence, message)


def _approvals(s: r_.Sourced[int], facts: GateFacts) -> Finding:
    need, registrant = s.rule, facts.version.created_by
    rule = f"{s.path}: at least {need} distinct approver{'s' if need != 1 else ''}"
    counted: dict[str, ApprovalFact] = {}
    ignored: list[str] = []
    for a in facts.approvals:
        if a.decision != "approve" or a.user in counted:
            continue
        if a.user == registrant:
            ignored.append(f"{a.user} (registrant of {facts.version.ref}: separation of duties)")
        elif a.role not in APPROVER_ROLES:
            ignored.append(f"{a.user} (role {a.role} cannot approve)")
        else:
            counted[a.user] = a
    rejects = [a for a in facts.approvals if a.decision == "reject"]
    message = f"{len(counted)} of {need} required approvals ({', '.join(counted) or 'none'})"
    message += "; not counted: " + ", ".join(ignored) if ignored else ""
    if rejects:
        by = [f"{a.user} ({a.role})" + (f": {a.comment!r}" if a.comment else "") for a in rejects]
        message = f"rejected by {'; '.join(by)}; {message}"
    observed = {"approvers": list(counted), "rejected_by": [a.user for a in rejects]}
    evidence = tuple(a.id or f"approval:{a.user}" for a in counted.values())
    return Finding(rule, not rejects and len(counted) >= need, observed, need, evidence, message)


def _filters(rules: r_.StageRules, pool: _Pool) -> Iterator[Finding]:
    filters: list[tuple[str, str, Any, str]] = []
    if not rules.carried_over.rule:
        path = rules.carried_over.path
        filters.append((path, "carried_over", "own evidence", "carried-over evidence not accepted"))
    for section, limit in rules.max_age_days.items():
        text = f"{section} evidence at most {limit.rule:g} days old"
        filters.append((limit.path, section, limit.rule, text))
    for path, kind, required, text in filters:
        ids = [i for i, (k, _) in pool.rejected.items() if k == kind]
        message = "; ".join(pool.rejected[i][1] for i in ids) or "nothing set aside"
        yield Finding(f"{path}: {text}", True, ids, required, tuple(ids), message)


def _evidence(rules: r_.StageRules, pool: _Pool) -> Iterator[Finding]:
    wanted: list[tuple[str, str, str, dict[str, str]]]
    wanted = [(s.path, s.rule, s.rule, {}) for s in rules.required_sections]
    wanted += [(m.path, m.rule, "evaluations", {"name": m.rule}) for m in rules.required_metrics]
    for path, item, section, where in wanted:
        counted, why = pool.match(section, **where)
        what = f"evaluation named {item}" if where else f"{section} entry"
        if not counted:
            yield pool.missing(f"{path}: {item}", what, why, "fail", 1)
            continue
        ids = tuple(b["id"] for b in counted)
        yield Finding(f"{path}: {item}", True, len(ids), 1, ids, f"{what}: {', '.join(ids)}")


def _card(s: r_.Sourced[bool], facts: GateFacts) -> Finding:
    state = {None: "missing", True: "stale", False: "current"}[facts.card_stale]
    ok = state == "current"
    message = f"the model card of {facts.version.ref} is {state}{'' if ok else ': render it'}"
    return Finding(f"{s.path}: model card current", ok, state, "current", (), message)


def evaluate_gate(
    policy: Policy, facts: GateFacts, *, policy_digest: str | None = None
) -> GateDecision:
    """Judge ``facts`` against the policy's rules for ``facts.stage``.

    Args:
        policy: a policy from :func:`charter.domain.policy.parse_policy`.
        facts: the version, its profile, reference, card state, approvals and the time.
        policy_digest: the digest the policy is stored under, checked against its own.

    Returns:
        The decision: passed only if every finding passed.

    Raises:
        InvalidInputError: the stage is not declared by the policy, or ``facts.now``
            or an entry's ``recorded_at`` is not a valid time.
        IntegrityError: ``policy_digest`` is not the digest of ``policy`` (a tampered
            store, or built-in tier defaults that changed since the policy was set).
    """
    digest = _policy_digest(policy)
    if policy_digest is not None and policy_digest != digest:
        raise IntegrityError(
            f"policy {policy_digest} normalises to {digest}: set the policy again",
            stored=policy_digest, computed=digest,
        )  # fmt: skip
    rules = rules_for(policy, stage=facts.stage, risk_tier=facts.model.risk_tier)
    entries = [e.body for e in facts.profile.entries]
    pool = _Pool(entries, rules, parse_time(facts.now), ref=facts.version.ref)
    findings = [*_filters(rules, pool), *_evidence(rules, pool)]
    findings += [_metric(s, pool) for s in rules.metrics]
    findings += [f for s in rules.fairness for f in _fairness(s, pool)]
    findings += [f for s in rules.redteam for f in _redteam(s, pool)]
    findings += [_regression(s, pool, facts) for s in rules.regression]
    findings += [_card(rules.card, facts)] if rules.card is not None else []
    findings.append(_approvals(rules.approvals, facts))
    return GateDecision(
        passed=all(f.passed for f in findings),
        stage=facts.stage,
        policy_digest=digest,
        findings=tuple(findings),
        evaluated_at=facts.now,
        ref=facts.version.ref,
        risk_tier=rules.risk_tier,
        profile_digest=facts.profile.digest,
        reference=facts.reference[0].ref if facts.reference and rules.regression else None,
    )
