"""Policies (``charter.policy/v1``): per-stage rules, with defaults by risk tier.

A policy is YAML text. :func:`parse_policy` validates it and *normalises* it:
the built-in tier defaults below are merged into its ``defaults`` and every
declared stage gets a ``rules`` entry, so the normalised document states every
rule that will apply and :func:`policy_digest` (recorded with each gate
decision) pins them all — a later Charter release with other built-ins gives
another digest.

Rules for a stage at a tier (:func:`rules_for`) combine ``rules.<stage>`` with
``defaults.<tier>`` (then ``defaults.<tier>.stages.<stage>``) so that the
stricter wins (see :mod:`charter.domain._rules`). A policy relaxes a tier
default only by overriding it under ``defaults``; its fields replace the
built-in ones field by field (a tier-wide field also replaces the built-in
per-stage value of that field).

Built-in tier defaults (the ``defaults`` of :data:`DEFAULT_POLICY`):

========================  ==========  ==========================  =================================
rule                      low         medium                      high
========================  ==========  ==========================  =================================
approvals, every stage    0           0                           1
approvals, production     0           1                           2
fairness (every audit)    —           ratio >= 0.8, if present    ratio >= 0.8, audits required
red-team (every campaign) —           ASR <= 0.10, if present     ASR <= 0.05, campaign required
required evidence         —           evaluations                 evaluations, bias_audits,
                                                                  adversarial
maximum evidence age      —           adversarial 90 days         adversarial 30, bias_audits 180
model card current        —           production                  every stage
carried-over evidence     accepted    accepted                    not in production
========================  ==========  ==========================  =================================

The 0.8 ratio floor is the four-fifths rule, 29 CFR 1607.4(D). "production"
defaults apply to the stage named ``production``; a policy whose release stage
has another name states them under ``defaults.<tier>.stages.<name>``.
"""

from __future__ import annotations

import difflib
from typing import Any, Literal, cast

import yaml
from pydantic import BaseModel, Field, ValidationError

from charter.domain import _rules
from charter.domain._rules import FOUR_FIFTHS, Stage, StageRules, StageRulesDoc, TierDefaults
from charter.domain.canonical import canonical_digest
from charter.domain.entities import RiskTier
from charter.domain.errors import InvalidInputError

__all__ = ["DEFAULT_POLICY", "SCHEMA_ID", "Policy", "StageRules", "StageRulesDoc", "TierDefaults"]
__all__ += ["parse_policy", "policy_digest", "rules_for", "validate_policy"]

SCHEMA_ID = "charter.policy/v1"
TIERS = ("low", "medium", "high")
Tier = Literal["low", "medium", "high"]

DEFAULT_POLICY = """\
# Charter's built-in policy, used when neither the registry nor the model has one.
# Its `defaults` are the built-in tier defaults merged into every policy.
schema: charter.policy/v1
description: Charter built-in policy
stages: [staging, production]
defaults:
  low: {approvals: {min: 0}, carried_over: true}
  medium:
    fairness: [{ratio_min: 0.8, if_missing: pass}]   # four-fifths rule, 29 CFR 1607.4(D)
    redteam: {max_attack_success_rate: 0.10, if_missing: pass}
    evidence: {require: [evaluations], max_age_days: {adversarial: 90}}
    approvals: {min: 0}
    carried_over: true
    stages:
      production: {approvals: {min: 1}, card: {must_be_current: true}}
  high:
    fairness: [{ratio_min: 0.8}]
    redteam: {max_attack_success_rate: 0.05}
    evidence:
      require: [evaluations, bias_audits, adversarial]
      max_age_days: {adversarial: 30, bias_audits: 180}
    card: {must_be_current: true}
    approvals: {min: 1}
    carried_over: true
    stages:
      production: {approvals: {min: 2}, carried_over: false}
rules: {staging: {}, production: {}}
"""


class Policy(_rules._Rule):
    """A policy document.

    Attributes:
        schema_: always ``charter.policy/v1`` (written ``schema``).
        description: free text for people.
        stages: the stage names rules may refer to, in promotion order.
        defaults: risk tier -> :class:`TierDefaults` (normalised: all three tiers).
        rules: stage -> :class:`StageRulesDoc` (normalised: every declared stage).
    """

    schema_: Literal["charter.policy/v1"] = Field(alias="schema")
    description: str | None = Field(default=None, max_length=2000)
    stages: list[Stage] = Field(min_length=1, max_length=50)
    defaults: dict[Tier, TierDefaults] = Field(default_factory=dict)
    rules: dict[Stage, StageRulesDoc] = Field(default_factory=dict)


class _Loader(yaml.SafeLoader):
    """Safe loader refusing duplicate keys (a repeated stage would silently drop rules)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        keys = [self.construct_object(k, deep=True) for k, _ in node.value]
        for i, key in enumerate(keys):
            if key in keys[:i]:
                mark = node.value[i][0].start_mark
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", mark)
        return super().construct_mapping(node, deep=deep)


def _load(text: str, *, source: str) -> tuple[Any, yaml.Node | None]:
    try:
        loader = _Loader(text)  # the reader refuses control characters right here
    except yaml.YAMLError as exc:
        raise InvalidInputError(
            f"{source} is not valid YAML: {exc}".splitlines()[0], source=source, field="(document)"
        ) from None
    try:
        node = loader.get_single_node()
        return (loader.construct_document(node) if node else None), node
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        at = {"line": mark.line + 1, "column": mark.column + 1} if mark else {}
        where = f" at line {at['line']}, column {at['column']}" if at else ""
        problem = getattr(exc, "problem", None) or "malformed"
        context, start = getattr(exc, "context", None), getattr(exc, "context_mark", None)
        if context and start and start is not mark:
            problem += f" ({context} started at line {start.line + 1}, column {start.column + 1})"
        message = f"{source} is not valid YAML{where}: {problem}"
        raise InvalidInputError(message, source=source, field="(document)", **at) from None
    finally:
        loader.dispose()


def _path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in (p for p in loc if p != "[key]"):
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(document)"


def _mark(node: yaml.Node | None, loc: tuple[int | str, ...]) -> str:
    """`` (line L, column C)`` of the deepest YAML node along ``loc``."""
    for i, part in enumerate(loc):
        if isinstance(node, yaml.MappingNode):
            pairs = [(k, v) for k, v in node.value if k.value == part]
            node = (pairs[0][0] if i == len(loc) - 1 else pairs[0][1]) if pairs else node
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            node = node.value[part] if part < len(node.value) else node
    mark = node.start_mark if node is not None else None
    return f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""


# Field -> (model of its items, how many key/index parts follow it in an error location).
_NESTED: dict[str, tuple[type[BaseModel], int]] = {
    "defaults": (TierDefaults, 1), "rules": (StageRulesDoc, 1), "stages": (StageRulesDoc, 1),
    "metrics": (_rules.MetricRule, 1), "fairness": (_rules.FairnessRule, 1),
    "regression": (_rules.RegressionRule, 1), "redteam": (_rules.RedTeamRule, 0),
    "evidence": (_rules.EvidenceRule, 0), "card": (_rules.CardRule, 0),
    "approvals": (_rules.ApprovalRule, 0),
}  # fmt: skip


def _fields_at(loc: tuple[int | str, ...]) -> str:
    """The fields valid at ``loc`` (the parent of an unknown field)."""
    model: type[BaseModel] = Policy
    skip = 0
    for part in loc:
        if skip:
            skip -= 1
        elif isinstance(part, str) and part in _NESTED:
            model, skip = _NESTED[part]
    return ", ".join(f.alias or name for name, f in model.model_fields.items())


def _invalid(message: str, *, source: str, field: str, **details: Any) -> InvalidInputError:
    return InvalidInputError(f"{source}: {field}: {message}", source=source, field=field, **details)


def _validate(data: dict[str, Any], *, source: str, node: yaml.Node | None) -> Policy:
    try:
        return Policy.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            loc = tuple(error["loc"])
            message = str(error["msg"]).removeprefix("Value error, ")
            if error["type"] == "extra_forbidden":
                message = f"unknown field (valid here: {_fields_at(loc[:-1])})"
            problems.append({"field": _path(loc), "message": message + _mark(node, loc)})
        first = problems[0]
        raise _invalid(
            first["message"], source=source, field=first["field"], problems=problems
        ) from None


def _docs(policy: Policy) -> list[tuple[str, StageRulesDoc]]:
    docs: list[tuple[str, StageRulesDoc]] = [(f"rules.{s}", d) for s, d in policy.rules.items()]
    for tier, defaults in policy.defaults.items():
        docs.append((f"defaults.{tier}", defaults))
        docs += [(f"defaults.{tier}.stages.{s}", d) for s, d in (defaults.stages or {}).items()]
    return docs


def _check_stages(policy: Policy, *, source: str) -> None:
    if len(set(policy.stages)) != len(policy.stages):
        raise _invalid("each stage may be declared once", source=source, field="stages")
    used = [(path, path.rpartition(".")[2]) for path, _ in _docs(policy) if ".stages." in path]
    used += [(f"rules.{s}", s) for s in policy.rules]
    for path, doc in _docs(policy):
        used += [
            (f"{path}.regression[{i}].against", r.against)
            for i, r in enumerate(doc.regression or ())
        ]
    for path, name in used:
        if name not in policy.stages:
            message = f"unknown stage {name!r} (the policy declares: {', '.join(policy.stages)})"
            raise _invalid(message, source=source, field=path, value=name, valid=policy.stages)


def _set(doc: BaseModel | None) -> dict[str, Any]:
    return doc.model_dump(mode="json", by_alias=True, exclude_none=True) if doc else {}


def _normalise(policy: Policy) -> dict[str, Any]:
    """The document with built-in tier defaults merged in and every stage's rules present."""
    document = _set(policy)
    document["rules"] = {s: document.get("rules", {}).get(s, {}) for s in policy.stages}
    document["defaults"] = {}
    for tier in TIERS:
        builtin, own = _set(_BUILTIN[tier]), _set(policy.defaults.get(cast(Tier, tier)))
        merged = {k: v for k, v in {**builtin, **own}.items() if k != "stages"}
        stages: dict[str, Any] = {}
        for stage in policy.stages:
            # A tier-wide field the policy sets overrides the built-in per-stage value too.
            base = builtin.get("stages", {}).get(stage, {})
            entry = {k: v for k, v in base.items() if k not in own}
            entry |= own.get("stages", {}).get(stage, {})
            stages |= {stage: entry} if entry else {}
        document["defaults"][tier] = merged | ({"stages": stages} if stages else {})
    return document


def parse_policy(text: str, *, source: str = "policy") -> Policy:
    """Parse, validate and normalise a policy.

    Args:
        text: YAML (or JSON) text of a ``charter.policy/v1`` document.
        source: name used in error messages (a file name).

    Returns:
        The normalised policy (built-in tier defaults merged, every stage present).

    Raises:
        InvalidInputError: malformed YAML (with line and column), duplicate keys,
            unknown or invalid fields (with the field path, line and column), stages
            used but not declared, or a stage comparing with two reference stages.
    """
    data, node = _load(text, source=source)
    if not isinstance(data, dict):
        message = f"{source} must be a mapping with schema, stages and rules"
        raise InvalidInputError(message, source=source, field="(document)")
    policy = _validate(data, source=source, node=node)
    _check_stages(policy, source=source)
    normalised = Policy.model_validate(_normalise(policy))
    for stage, tier in ((s, t) for s in normalised.stages for t in TIERS):
        try:
            rules_for(normalised, stage=stage, risk_tier=tier)
        except InvalidInputError as exc:
            raise _invalid(exc.message, source=source, field=exc.details["field"]) from None
    return normalised


def policy_digest(policy: Policy) -> str:
    """``sha256:…`` of the canonical JSON of the normalised policy.

    Key order, comments, restated defaults and built-in tier defaults written out
    do not change it; any change to a rule does.
    """
    return canonical_digest(_set(policy))


def _metric_refs(path: str, doc: StageRulesDoc) -> list[tuple[str, str | None]]:
    refs: list[tuple[str, str | None]] = [
        (f"{path}.metrics[{i}].metric", r.metric) for i, r in enumerate(doc.metrics or ())
    ]
    refs += [(f"{path}.fairness[{i}].metric", r.metric) for i, r in enumerate(doc.fairness or ())]
    refs += [
        (f"{path}.regression[{i}].metric", r.metric) for i, r in enumerate(doc.regression or ())
    ]
    metrics = doc.evidence.metrics if doc.evidence else []
    return refs + [(f"{path}.evidence.metrics[{i}]", m) for i, m in enumerate(metrics)]


def validate_policy(policy: Policy, *, known_metrics: set[str]) -> list[str]:
    """Check a parsed policy against the metrics evaluators produce.

    Args:
        policy: a policy from :func:`parse_policy`.
        known_metrics: every metric name an evaluator can produce, including the
            metrics bias audits report (``selection_rate``…).

    Returns:
        Warnings: rules that are legal but probably not meant.

    Raises:
        InvalidInputError: a rule names a metric no evaluator produces; the error
            names the rule path and the closest known metrics (``problems`` lists all).
    """
    known, problems = sorted(known_metrics), []
    for path, doc in _docs(policy):
        for field, metric in _metric_refs(path, doc):
            if metric is None or metric in known_metrics:
                continue
            close = difflib.get_close_matches(metric, known, n=5, cutoff=0.5)
            hint = (
                f"did you mean {', '.join(close)}?"
                if close
                else (f"known: {', '.join(known[:20]) or 'none'}")
            )
            message = f"no evaluator produces metric {metric!r}; {hint}"
            problems.append({"field": field, "value": metric, "close": close, "message": message})
    if problems:
        first = problems[0]
        raise InvalidInputError(
            f"{first['field']}: {first['message']}",
            field=first["field"],
            value=first["value"],
            valid=first["close"],
            problems=problems,
        )
    return _warnings(policy)


def _warnings(policy: Policy) -> list[str]:
    warnings = []
    for path, doc in _docs(policy):
        for i, m in enumerate(doc.metrics or ()):
            warnings += [
                f"{path}.metrics[{i}].{k} is negative ({v:g}): meaningful only for "
                "metrics with unit score"
                for k, v in (("min", m.min), ("max", m.max))
                if v is not None and v < 0
            ]
        warnings += [
            f"{path}.fairness[{i}].ratio_min {f.ratio_min:g} is below the four-fifths "
            "rule (0.8, 29 CFR 1607.4(D))"
            for i, f in enumerate(doc.fairness or ())
            if f.ratio_min is not None and f.ratio_min < FOUR_FIFTHS
        ]
    if "production" not in policy.stages and not any(d.stages for d in policy.defaults.values()):
        warnings.append(
            "no stage is named production, so the built-in production defaults "
            "(2 approvals at high tier, no carried-over evidence) apply to no stage: "
            "state them under defaults.<tier>.stages.<release stage>"
        )
    return warnings


def rules_for(policy: Policy, *, stage: str, risk_tier: str) -> StageRules:
    """The rules that apply to ``stage`` for a model of ``risk_tier``.

    Args:
        policy: a policy from :func:`parse_policy`.
        stage: a stage the policy declares.
        risk_tier: ``low``, ``medium`` or ``high`` (a :class:`RiskTier` works too).

    Returns:
        The resolved rules: stage rules and tier defaults combined, the stricter winning.

    Raises:
        InvalidInputError: unknown stage (listing the declared ones) or risk tier, or
            regression rules of the stage naming more than one reference stage.
    """
    tier = RiskTier.parse(str(risk_tier)).value
    if stage not in policy.stages:
        message = f"unknown stage {stage!r}: the policy declares {', '.join(policy.stages)}"
        raise InvalidInputError(message, field="stage", value=stage, valid=list(policy.stages))
    defaults, own = policy.defaults.get(cast(Tier, tier)), policy.rules.get(stage)
    rules = _rules.resolve(stage=stage, risk_tier=tier, rules=own, defaults=defaults)
    against = sorted({r.rule.against for r in rules.regression})
    if len(against) > 1:
        message = (
            f"regression rules for {stage} at {tier} tier compare with several stages "
            f"({', '.join(against)}): use one reference stage per stage"
        )
        raise InvalidInputError(message, field=rules.regression[-1].path, valid=against)
    return rules


_BUILTIN = {
    t: TierDefaults.model_validate(yaml.safe_load(DEFAULT_POLICY)["defaults"][t]) for t in TIERS
}
