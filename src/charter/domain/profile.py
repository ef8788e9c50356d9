"""The safety profile schema (``charter.profile/v1``): four sections of entries.

Every entry carries provenance and an id (``eval-3``, ``bias-1``, ``cons-1``,
``adv-2``) assigned by the registry. Values that a policy could not judge —
NaN, infinities, probabilities outside [0, 1], negative counts — are refused
with the path of the offending field. Parsing takes text, not files: reading
is the surfaces' job.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any, ClassVar, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from charter.domain.errors import InvalidInputError

__all__ = [
    "SCHEMA_ID",
    "SECTIONS",
    "AdversarialEntry",
    "Amendment",
    "BiasAuditEntry",
    "ConstraintsEntry",
    "EvaluationEntry",
    "ProfileDocument",
    "entries_from_metrics",
    "parse_document",
]

SCHEMA_ID = "charter.profile/v1"
SECTIONS = ("evaluations", "bias_audits", "constraints", "adversarial")
PREFIXES = {
    "evaluations": "eval",
    "bias_audits": "bias",
    "constraints": "cons",
    "adversarial": "adv",
}
ENTRY_ID = re.compile(r"^(eval|bias|cons|adv)-[1-9][0-9]{0,8}$")
_METRIC = re.compile(r"^[a-z][a-z0-9_.-]{0,99}$")
_SLICE = re.compile(r"^[^=\s][^=]{0,99}=[^=]{1,200}$")
# Metric names whose smaller values are better; everything else defaults to higher.
_LOWER_IS_BETTER = re.compile(
    r"(loss|error|rate_of_|leak|toxic|harm|violation|attack_success|injection|latency|"
    r"perplexity|mse|mae|rmse|false_positive|false_negative|fpr|fnr|drift|refusal_over|"
    r"over_refusal|jailbreak|blocked|miss_rate|compliance)"
)
RATE_METRICS = frozenset(
    {"selection_rate", "true_positive_rate", "false_positive_rate", "true_negative_rate",
     "false_negative_rate", "accuracy", "precision", "recall", "tpr", "fpr", "tnr", "fnr"}
)  # fmt: skip


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("must be a finite number (not NaN or infinity)")
    return value


Finite = Annotated[float, AfterValidator(_finite)]
Count = Annotated[int, Field(ge=0)]
Text = Annotated[str, Field(min_length=1, max_length=500)]
LongText = Annotated[str, Field(max_length=4000)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)


class DatasetInfo(_Model):
    """The data an entry was measured on."""

    name: Text
    digest: str | None = Field(default=None, pattern=r"^sha256:[0-9a-f]{64}$")


class Provenance(_Model):
    """Where an entry comes from. ``recorded_by``/``recorded_at`` are set by the registry."""

    source: Text = "manual"
    run_id: str | None = Field(default=None, max_length=200)
    dataset: DatasetInfo | None = None
    recorded_by: str | None = None
    recorded_at: str | None = None


class _Entry(_Model):
    section: ClassVar[str]
    id: str | None = Field(default=None, pattern=ENTRY_ID.pattern)
    supersedes: str | None = Field(default=None, pattern=ENTRY_ID.pattern)
    provenance: Provenance = Provenance()


class ConfidenceInterval(_Model):
    """A confidence interval around a value."""

    low: Finite
    high: Finite
    level: float = Field(default=0.95, gt=0, lt=1)

    @model_validator(mode="after")
    def _ordered(self) -> ConfidenceInterval:
        if self.low > self.high:
            raise ValueError("low must not exceed high")
        return self


class EvaluationEntry(_Entry):
    """A benchmark result: a metric's value, optionally on one slice of the data."""

    section: ClassVar[str] = "evaluations"
    name: str = Field(pattern=_METRIC.pattern)
    value: Finite
    unit: Literal["ratio", "percent", "count", "score", "seconds", "milliseconds", "tokens"] = (
        "ratio"
    )
    direction: Literal["higher_is_better", "lower_is_better"] | None = None
    dataset: DatasetInfo | None = None
    slice: str | None = Field(default=None, pattern=_SLICE.pattern)
    samples: Count | None = None
    ci: ConfidenceInterval | None = None

    @model_validator(mode="after")
    def _in_range(self) -> EvaluationEntry:
        bounds = {"ratio": (0.0, 1.0), "percent": (0.0, 100.0)}.get(self.unit)
        if self.unit in ("count", "seconds", "milliseconds", "tokens"):
            bounds = (0.0, math.inf)
        if bounds is not None:
            low, high = bounds
            for label, v in (("value", self.value), *self._ci_values()):
                if not low <= v <= high:
                    raise ValueError(
                        f"{label} {v} is outside [{low}, {high}] for unit {self.unit} "
                        "(set unit: score, count, percent… for other scales)"
                    )
        if self.direction is None:
            guess = "lower_is_better" if _LOWER_IS_BETTER.search(self.name) else "higher_is_better"
            object.__setattr__(self, "direction", guess)
        return self

    def _ci_values(self) -> list[tuple[str, float]]:
        return [("ci.low", self.ci.low), ("ci.high", self.ci.high)] if self.ci else []


class GroupValue(_Model):
    """One protected group's value and size."""

    group: Text
    value: Finite
    size: Count


class BiasAuditEntry(_Entry):
    """A metric per group of one sensitive feature, with the gap between groups."""

    section: ClassVar[str] = "bias_audits"
    sensitive_feature: Text
    metric: str = Field(pattern=_METRIC.pattern)
    groups: list[GroupValue] = Field(min_length=1, max_length=1000)
    reference_group: str | None = None
    difference: Finite | None = None
    ratio: Finite | None = None
    dataset: DatasetInfo | None = None

    @model_validator(mode="after")
    def _consistent(self) -> BiasAuditEntry:
        names = [g.group for g in self.groups]
        if len(set(names)) != len(names):
            raise ValueError("each group may appear once")
        if self.reference_group is not None and self.reference_group not in names:
            raise ValueError(f"reference_group {self.reference_group!r} is not one of the groups")
        if self.metric in RATE_METRICS:
            for g in self.groups:
                if not 0.0 <= g.value <= 1.0:
                    raise ValueError(f"group {g.group!r}: a {self.metric} must lie in [0, 1]")
        values = [g.value for g in self.groups]
        difference = max(values) - min(values)
        ratio = (min(values) / max(values)) if max(values) > 0 else 1.0
        for label, given, computed in (("difference", self.difference, difference),
                                       ("ratio", self.ratio, ratio)):  # fmt: skip
            if given is not None and abs(given - computed) > 1e-6:
                raise ValueError(f"{label} {given} disagrees with the groups ({computed:.6g})")
        object.__setattr__(self, "difference", difference)
        object.__setattr__(self, "ratio", ratio)
        return self


class ConstraintsEntry(_Entry):
    """Declared input/output guardrails and intended use."""

    section: ClassVar[str] = "constraints"
    max_input_chars: int | None = Field(default=None, gt=0)
    max_output_chars: int | None = Field(default=None, gt=0)
    max_input_tokens: int | None = Field(default=None, gt=0)
    max_output_tokens: int | None = Field(default=None, gt=0)
    blocked_terms: list[Text] = Field(default_factory=list, max_length=10_000)
    blocked_patterns: list[Text] = Field(default_factory=list, max_length=1000)
    required_refusal_topics: list[Text] = Field(default_factory=list, max_length=1000)
    allowed_languages: list[str] = Field(default_factory=list, max_length=200)
    input_schema: dict[str, Any] | None = None
    intended_uses: list[LongText] = Field(default_factory=list, max_length=100)
    out_of_scope_uses: list[LongText] = Field(default_factory=list, max_length=100)

    @field_validator("blocked_patterns")
    @classmethod
    def _compiles(cls, patterns: list[str]) -> list[str]:
        for i, pattern in enumerate(patterns):
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"pattern {i} ({pattern!r}) is not a valid regex: {exc}") from None
        return patterns

    @field_validator("allowed_languages")
    @classmethod
    def _languages(cls, codes: list[str]) -> list[str]:
        for code in codes:
            if not re.fullmatch(r"[a-z]{2,3}(-[A-Za-z0-9]{2,8})*", code):
                raise ValueError(f"{code!r} is not a BCP 47 language tag such as en or pt-BR")
        return codes

    @field_validator("input_schema")
    @classmethod
    def _schema(cls, schema: dict[str, Any] | None) -> dict[str, Any] | None:
        if schema is not None:
            # Imported here: jsonschema takes ~1.5 s to import, paid by every CLI call.
            import jsonschema

            try:
                jsonschema.Draft202012Validator.check_schema(schema)
            except jsonschema.SchemaError as exc:
                raise ValueError(f"not a valid JSON Schema: {exc.message}") from None
        return schema


class ProbeResult(_Model):
    """Attempts and hits of one probe."""

    probe: Text
    category: Text
    attempts: Count
    hits: Count

    @model_validator(mode="after")
    def _hits(self) -> ProbeResult:
        if self.hits > self.attempts:
            raise ValueError(f"hits ({self.hits}) exceed attempts ({self.attempts})")
        return self


class Transcript(_Model):
    """One successful attack, kept as evidence."""

    probe: Text
    category: Text
    prompt: LongText
    response: LongText
    detector: str | None = None


class PackRef(_Model):
    """The probe pack a campaign ran."""

    name: Text
    version: Text
    digest: str | None = Field(default=None, pattern=r"^sha256:[0-9a-f]{64}$")


class CategoryResult(_Model):
    """Totals of one attack category."""

    attempts: Count
    hits: Count
    rate: float = Field(ge=0, le=1)


class AdversarialEntry(_Entry):
    """A red-team campaign: attempts, hits, attack success rate, sample transcripts."""

    section: ClassVar[str] = "adversarial"
    pack: PackRef
    target: Text
    attempts: Count
    hits: Count
    attack_success_rate: float | None = Field(default=None, ge=0, le=1)
    probes: list[ProbeResult] = Field(default_factory=list, max_length=100_000)
    categories: dict[str, CategoryResult] = Field(default_factory=dict)
    samples: list[Transcript] = Field(default_factory=list, max_length=20)

    @model_validator(mode="after")
    def _totals(self) -> AdversarialEntry:
        if self.hits > self.attempts:
            raise ValueError(f"hits ({self.hits}) exceed attempts ({self.attempts})")
        rate = self.hits / self.attempts if self.attempts else 0.0
        if self.attack_success_rate is not None and abs(self.attack_success_rate - rate) > 1e-6:
            raise ValueError(f"attack_success_rate disagrees with hits/attempts ({rate:.6g})")
        object.__setattr__(self, "attack_success_rate", rate)
        if self.probes and not self.categories:
            totals: dict[str, list[int]] = {}
            for p in self.probes:
                t = totals.setdefault(p.category, [0, 0])
                t[0] += p.attempts
                t[1] += p.hits
            cats = {c: CategoryResult(attempts=a, hits=h, rate=h / a if a else 0.0)
                    for c, (a, h) in sorted(totals.items())}  # fmt: skip
            object.__setattr__(self, "categories", cats)
        return self


Entry = EvaluationEntry | BiasAuditEntry | ConstraintsEntry | AdversarialEntry
ENTRY_TYPES: dict[str, type[_Entry]] = {
    "evaluations": EvaluationEntry,
    "bias_audits": BiasAuditEntry,
    "constraints": ConstraintsEntry,
    "adversarial": AdversarialEntry,
}


class ProfileDocument(_Model):
    """A file of profile entries (``profile add``) or an amendment (``profile amend``)."""

    schema_: str = Field(default=SCHEMA_ID, alias="schema")
    evaluations: list[EvaluationEntry] = Field(default_factory=list, max_length=10_000)
    bias_audits: list[BiasAuditEntry] = Field(default_factory=list, max_length=1000)
    constraints: list[ConstraintsEntry] = Field(default_factory=list, max_length=100)
    adversarial: list[AdversarialEntry] = Field(default_factory=list, max_length=1000)
    retracts: list[Annotated[str, Field(pattern=ENTRY_ID.pattern)]] = Field(default_factory=list)
    evidence: list[LongText] = Field(default_factory=list, max_length=100)

    @field_validator("schema_")
    @classmethod
    def _known_schema(cls, value: str) -> str:
        if value != SCHEMA_ID:
            raise ValueError(f"unknown schema {value!r}: this registry reads {SCHEMA_ID}")
        return value

    @model_validator(mode="before")
    @classmethod
    def _single_constraints(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("constraints"), dict):
            data = {**data, "constraints": [data["constraints"]]}
        return data

    def entries(self) -> list[_Entry]:
        """All entries, section by section."""
        return [*self.evaluations, *self.bias_audits, *self.constraints, *self.adversarial]


class Amendment(_Model):
    """An append-only change to a published profile, as recorded."""

    id: str
    reason: Text
    evidence: list[str]
    retracts: list[str]
    entries: list[dict[str, Any]]
    author: str
    created_at: str


def _error_path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(document)"


def parse_document(text: str, *, source: str = "profile") -> ProfileDocument:
    """Parse YAML or JSON text into a validated :class:`ProfileDocument`.

    Raises:
        InvalidInputError: naming the field path (e.g. ``evaluations[2].value``) or
            the YAML line and column of the first problem.
    """
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise InvalidInputError(
            f"{source} is not valid YAML or JSON{where}", source=source
        ) from None
    if not isinstance(data, dict):
        raise InvalidInputError(
            f"{source} must be a mapping with sections {', '.join(SECTIONS)}", source=source
        )
    try:
        return ProfileDocument.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        path = _error_path(tuple(first["loc"]))
        message = first["msg"].removeprefix("Value error, ")
        raise InvalidInputError(
            f"{source}: {path}: {message}",
            source=source,
            field=path,
            problems=[
                {"field": _error_path(tuple(e["loc"])), "message": e["msg"]} for e in exc.errors()
            ],
        ) from None


def entries_from_metrics(text: str, *, source: str = "metrics") -> ProfileDocument:
    """Turn a flat ``{name: value}`` metrics file from a pipeline into evaluations.

    Values between 0 and 1 are read as ratios; others as scores. The direction is
    guessed from the name (loss, error, latency, leakage… are lower-is-better).

    Raises:
        InvalidInputError: when the file is not a flat mapping of names to numbers.
    """
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        raise InvalidInputError(f"{source} is not valid YAML or JSON", source=source) from None
    if not isinstance(data, dict) or not data:
        raise InvalidInputError(f"{source} must be a non-empty mapping of metric names to numbers")
    evaluations = []
    for name, value in data.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidInputError(f"{source}: {name}: must be a number", field=str(name))
        unit = "ratio" if 0 <= value <= 1 else "score"
        evaluations.append({"name": str(name).lower(), "value": value, "unit": unit,
                            "provenance": {"source": "pipeline"}})  # fmt: skip
    return parse_document(yaml.safe_dump({"evaluations": evaluations}), source=source)
