"""Policy rules, how a stage's layers resolve into one set, and which evidence counts.

Two layers apply to a stage: ``rules.<stage>`` and the tier defaults
(``defaults.<tier>``, then ``defaults.<tier>.stages.<stage>``, field by field).
**The stricter wins**: checks of both apply, the larger approval count, the
shorter maximum age; carried-over evidence counts only if both layers accept
it. Tier defaults are a floor; only ``defaults`` in the policy can lower them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from charter.domain.entities import parse_time
from charter.domain.profile import _METRIC, _SLICE, Finite

__all__ = ["ApprovalRule", "CardRule", "EvidenceRule", "FairnessRule", "MetricRule", "RedTeamRule"]
__all__ += ["RegressionRule", "Sourced", "StageRules", "StageRulesDoc", "TierDefaults", "resolve"]
__all__ += ["Evidence", "matches"]

STAGE_NAME = r"^[a-z][a-z0-9_-]{0,49}$"
FOUR_FIFTHS = 0.8


Rate = Annotated[float, Field(ge=0, le=1)]
NonNegative = Annotated[Finite, Field(ge=0)]
Name = Annotated[str, Field(min_length=1, max_length=500)]
Days = Annotated[float, Field(gt=0, le=36_500)]
Metric = Annotated[str, Field(pattern=_METRIC.pattern)]
Slice = Annotated[str, Field(pattern=_SLICE.pattern)]
Stage = Annotated[str, Field(pattern=STAGE_NAME)]
Section = Literal["evaluations", "bias_audits", "constraints", "adversarial"]
IfMissing = Literal["fail", "pass"]


class _Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _OnMetric(_Rule):
    metric: Metric
    slice: Slice | None = None

    @property
    def label(self) -> str:
        """``accuracy[thal=fixed]``, or the bare metric name without a slice."""
        return f"{self.metric}[{self.slice}]" if self.slice else self.metric


class MetricRule(_OnMetric):
    """A threshold on one evaluation metric of the effective profile.

    Attributes:
        metric: evaluation name (``accuracy``, ``toxicity_rate``).
        slice: ``feature=value`` slice; None judges the overall entry (no slice).
        min: the value must be at least this.
        max: the value must be at most this.
        if_missing: ``fail`` (default) when no entry counts; ``pass`` judges it only if present.
    """

    min: Finite | None = None
    max: Finite | None = None
    if_missing: IfMissing = "fail"

    @model_validator(mode="after")
    def _bounds(self) -> MetricRule:
        if self.min is None and self.max is None:
            raise ValueError("give min, max or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) exceeds max ({self.max})")
        return self

    def describe(self) -> str:
        """``accuracy[thal=fixed] >= 0.7``."""
        name = self.label
        if self.min is not None and self.max is not None:
            return f"{self.min:g} <= {name} <= {self.max:g}"
        return f"{name} >= {self.min:g}" if self.min is not None else f"{name} <= {self.max:g}"


class FairnessRule(_Rule):
    """A disparity bound on bias audits; without bounds, the four-fifths floor (0.8).

    Attributes:
        metric: the audited metric (``selection_rate``); None: every audit.
        sensitive_feature: the audited feature (``sex``); None: every feature.
        ratio_min: lowest group value / highest group value must be at least this
            (0.8 is the four-fifths rule of 29 CFR 1607.4(D)).
        difference_max: highest minus lowest group value must be at most this.
        if_missing: ``fail`` (default) when no audit matches; ``pass`` judges audits present.
    """

    metric: Metric | None = None
    sensitive_feature: Name | None = None
    ratio_min: Annotated[float, Field(gt=0, le=1)] | None = None
    difference_max: NonNegative | None = None
    if_missing: IfMissing = "fail"

    @model_validator(mode="before")
    @classmethod
    def _four_fifths(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("ratio_min") is data.get("difference_max") is None:
            data = {**data, "ratio_min": FOUR_FIFTHS}
        return data

    def describe(self) -> str:
        """``selection_rate[sex] ratio >= 0.8``."""
        what = self.metric or "every audit"
        what += f"[{self.sensitive_feature}]" if self.sensitive_feature else ""
        bounds = [f"ratio >= {self.ratio_min:g}"] if self.ratio_min is not None else []
        if self.difference_max is not None:
            bounds.append(f"difference <= {self.difference_max:g}")
        return f"{what} {' and '.join(bounds)}"


class RedTeamRule(_Rule):
    """Ceilings on red-team attack success rates (``adversarial`` entries).

    Each campaign that counts is judged: the newest per (pack name, target).

    Attributes:
        max_attack_success_rate: hits / attempts of a campaign must be at most this.
        categories: category -> ceiling on that category's rate (``prompt_injection: 0.02``).
        if_missing: ``fail`` (default) when no campaign (or none with the category)
            counts; ``pass`` judges campaigns present.
    """

    max_attack_success_rate: Rate | None = None
    categories: dict[Name, Rate] = Field(default_factory=dict)
    if_missing: IfMissing = "fail"

    @model_validator(mode="after")
    def _something(self) -> RedTeamRule:
        if self.max_attack_success_rate is None and not self.categories:
            raise ValueError("give max_attack_success_rate, categories or both")
        return self


class EvidenceRule(_Rule):
    """Evidence that must exist, and how old evidence may be to count at all.

    Attributes:
        require: sections that must hold at least one entry that counts.
        metrics: evaluation names that must have an entry that counts (any slice).
        max_age_days: section -> age limit; older entries (by ``provenance.recorded_at``
            against the decision time) do not count as evidence for any rule.
    """

    require: list[Section] = Field(default_factory=list)
    metrics: list[Metric] = Field(default_factory=list)
    max_age_days: dict[Section, Days] = Field(default_factory=dict)


class RegressionRule(_OnMetric):
    """A metric must not get worse than the version currently in a reference stage.

    Attributes:
        metric: evaluation name; compared with the reference's same metric and slice.
        slice: ``feature=value``; None compares the overall entries.
        against: the reference stage (declared in ``stages``), default ``production``.
        max_drop: absolute tolerance, in the metric's unit, in its worse direction.
        max_relative_drop: tolerance as a fraction of the reference value (0.05 = 5 %).
        missing_reference: ``fail`` (default) or ``pass`` when the reference version
            has no such entry. With no version in the reference stage the rule passes.
    """

    against: Stage = "production"
    max_drop: NonNegative | None = None
    max_relative_drop: NonNegative | None = None
    missing_reference: IfMissing = "fail"

    @model_validator(mode="after")
    def _one_tolerance(self) -> RegressionRule:
        if (self.max_drop is None) == (self.max_relative_drop is None):
            raise ValueError("give exactly one of max_drop (absolute) or max_relative_drop")
        return self

    def describe(self) -> str:
        """``accuracy[thal=fixed] drop <= 0.02 vs production``."""
        if self.max_drop is not None:
            return f"{self.label} drop <= {self.max_drop:g} vs {self.against}"
        return f"{self.label} relative drop <= {self.max_relative_drop:g} vs {self.against}"


class CardRule(_Rule):
    """The model card must have been rendered and not be stale (``must_be_current``)."""

    must_be_current: bool = True


class ApprovalRule(_Rule):
    """At least ``min`` distinct approvers (role approver/admin, not the registrant)."""

    min: int = Field(ge=0, le=20)


class StageRulesDoc(_Rule):
    """The rules of one stage as written; every field is optional (None: not set).

    Attributes:
        metrics: thresholds on evaluation metrics.
        fairness: disparity bounds on bias audits.
        redteam: attack success rate ceilings.
        evidence: required sections/metrics and maximum evidence age.
        regression: comparisons with the version in a reference stage.
        card: the model card must be current.
        approvals: minimum distinct approvers.
        carried_over: whether evidence carried over from a parent version counts.
    """

    metrics: list[MetricRule] | None = None
    fairness: list[FairnessRule] | None = None
    redteam: RedTeamRule | None = None
    evidence: EvidenceRule | None = None
    regression: list[RegressionRule] | None = None
    card: CardRule | None = None
    approvals: ApprovalRule | None = None
    carried_over: bool | None = None


class TierDefaults(StageRulesDoc):
    """Defaults for one risk tier: rules for every stage, then per-stage overrides.

    Attributes:
        stages: stage name -> rules that replace the tier-wide ones field by field.
    """

    stages: dict[Stage, StageRulesDoc] | None = None


R = TypeVar("R")


@dataclass(frozen=True)
class Sourced(Generic[R]):
    """A resolved rule with the policy path it came from (``rules.production.metrics[0]``)."""

    path: str
    rule: R


@dataclass(frozen=True)
class StageRules:
    """Everything that applies to one stage at one risk tier, resolved and ready to judge.

    Attributes:
        stage, risk_tier: what the rules apply to.
        metrics: metric thresholds of both layers (each distinct rule once).
        fairness: fairness bounds of both layers.
        redteam: red-team ceilings of both layers.
        required_sections: sections that must hold an entry that counts.
        required_metrics: evaluation names that must have an entry that counts.
        max_age_days: section -> the shortest maximum age of both layers.
        regression: comparisons with the version in one reference stage.
        card: the card rule, when a layer demands a current card (else None).
        approvals: the larger minimum number of approvers.
        carried_over: whether carried-over evidence counts (False if either layer says so).
    """

    stage: str
    risk_tier: str
    metrics: tuple[Sourced[MetricRule], ...]
    fairness: tuple[Sourced[FairnessRule], ...]
    redteam: tuple[Sourced[RedTeamRule], ...]
    required_sections: tuple[Sourced[str], ...]
    required_metrics: tuple[Sourced[str], ...]
    max_age_days: Mapping[str, Sourced[float]]
    regression: tuple[Sourced[RegressionRule], ...]
    card: Sourced[bool] | None
    approvals: Sourced[int]
    carried_over: Sourced[bool]

    @property
    def reference_stage(self) -> str | None:
        """The stage whose current version regression rules compare with (None: no rule)."""
        return self.regression[0].rule.against if self.regression else None

    def set_aside(self, entry: dict[str, Any], now: datetime) -> tuple[str, str] | None:
        """Why a profile entry does not count as evidence here: (filter, reason), or None.

        The filter is ``carried_over`` or the section whose maximum age the entry exceeds.
        """
        prov, eid, section = entry.get("provenance", {}), entry["id"], entry["section"]
        source = str(prov.get("source", ""))
        if source.startswith("carried-over:") and not self.carried_over.rule:
            where = f"{self.stage} at {self.risk_tier} tier"
            return "carried_over", f"{eid} was carried over ({source}): not accepted for {where}"
        limit, at = self.max_age_days.get(section), prov.get("recorded_at")
        if limit is None:
            return None
        if at is None:
            return section, f"{eid} has no recorded time to check its age against"
        age = (now - parse_time(at)).total_seconds() / 86400
        if age <= limit.rule:
            return None
        return section, f"{eid} is {age:.1f} days old (over {limit.rule:g} days for {section})"


def matches(entry: dict[str, Any], where: dict[str, Any]) -> bool:
    """Whether ``entry``'s fields equal ``where`` (an absent field equals None)."""
    return all(entry.get(k) == v for k, v in where.items())


class Evidence:
    """The entries in force of ``ref``'s profile: which count under ``rules``, and why not."""

    def __init__(self, entries: list[Any], rules: StageRules, now: datetime, *, ref: str) -> None:
        self.entries, self.ref = entries, ref
        aside = {e["id"]: rules.set_aside(e, now) for e in entries}
        self.rejected = {eid: why for eid, why in aside.items() if why is not None}

    def match(self, section: str, **where: Any) -> tuple[list[dict[str, Any]], str]:
        """Counted entries of ``section`` with fields equal to ``where``, and why others don't."""
        fits = [e for e in self.entries if e["section"] == section and matches(e, where)]
        why = "".join(f"; {self.rejected[e['id']][1]}" for e in fits if e["id"] in self.rejected)
        return [e for e in fits if e["id"] not in self.rejected], why


Layer = dict[str, tuple[str, Any]]
FIELDS = tuple(StageRulesDoc.model_fields)


def _layer(doc: StageRulesDoc | None, path: str, base: Layer | None = None) -> Layer:
    # Fields set in ``doc`` as ``{field: (path, value)}``, replacing those of ``base``.
    out = dict(base or {})
    out.update({k: (path, getattr(doc, k)) for k in FIELDS if getattr(doc, k, None) is not None})
    return out


def _listed(layers: Sequence[Layer], name: str) -> list[Sourced[Any]]:
    # Rules of every layer, each distinct rule once; a single rule (redteam) has no index.
    out: list[Sourced[Any]] = []
    for path, rules in (lay[name] for lay in layers if name in lay):
        items = enumerate(rules) if isinstance(rules, list) else [(None, rules)]
        for i, rule in items:
            if all(rule != o.rule for o in out):
                out.append(Sourced(f"{path}.{name}" + ("" if i is None else f"[{i}]"), rule))
    return out


def _evidence(layers: Sequence[Layer], key: str) -> dict[str, Sourced[Any]]:
    # Required sections/metrics: union; maximum ages: the shortest per section.
    out: dict[str, Sourced[Any]] = {}
    for path, rule in (lay["evidence"] for lay in layers if "evidence" in lay):
        items = getattr(rule, key)
        for name, value in items.items() if isinstance(items, dict) else ((n, n) for n in items):
            if name not in out or (key == "max_age_days" and value < out[name].rule):
                suffix = f".{name}" if key == "max_age_days" else ""
                out[name] = Sourced(f"{path}.evidence.{key}{suffix}", value)
    return out


def _strictest(
    layers: Sequence[Layer],
    name: str,
    stricter: Callable[[Any, Any], bool],
    get: Callable[[Any], Any] = bool,
) -> Sourced[Any] | None:
    best: Sourced[Any] | None = None
    for path, value in (lay[name] for lay in layers if name in lay):
        if best is None or stricter(get(value), best.rule):
            best = Sourced(f"{path}.{name}", get(value))
    return best


def resolve(
    *, stage: str, risk_tier: str, rules: StageRulesDoc | None, defaults: TierDefaults | None
) -> StageRules:
    """Combine ``rules.<stage>`` with ``defaults.<tier>`` (and its ``stages.<stage>``).

    Returns:
        The resolved rules, the stricter winning, each with the policy path it came from.
    """
    tier = _layer(defaults, f"defaults.{risk_tier}")
    overrides = (defaults.stages or {}).get(stage) if defaults else None
    tier = _layer(overrides, f"defaults.{risk_tier}.stages.{stage}", tier)
    layers = [_layer(rules, f"rules.{stage}"), tier]
    approvals = _strictest(layers, "approvals", lambda a, b: a > b, lambda a: a.min)
    card = _strictest(layers, "card", lambda a, b: a and not b, lambda c: c.must_be_current)
    carried = _strictest(layers, "carried_over", lambda a, b: b and not a)
    return StageRules(
        stage=stage,
        risk_tier=risk_tier,
        metrics=tuple(_listed(layers, "metrics")),
        fairness=tuple(_listed(layers, "fairness")),
        redteam=tuple(_listed(layers, "redteam")),
        required_sections=tuple(_evidence(layers, "require").values()),
        required_metrics=tuple(_evidence(layers, "metrics").values()),
        max_age_days=_evidence(layers, "max_age_days"),
        regression=tuple(_listed(layers, "regression")),
        card=card if card is not None and card.rule else None,
        approvals=approvals or Sourced("(none)", 0),
        carried_over=carried or Sourced("(none)", True),
    )
