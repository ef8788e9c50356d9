"""The evaluator interface: what an evaluation gets, and what it must return.

An evaluator measures one version and returns profile entries plus everything
needed to reproduce the measurement (resolved configuration, dataset digests,
probe-pack digest, target). The registry records the result as an
*evaluation run* and its entries as baseline entries (draft) or an amendment
(published), with provenance ``evaluator:<name>@<version>``.

A third-party evaluator is one small class::

    class LatencyEvaluator(Evaluator):
        name = "latency"
        version = "1.0"
        description = "Median prediction latency on a sample."

        def evaluate(self, context: EvaluationContext) -> EvaluationOutcome:
            seconds = ...  # measure with context.artifact_dir and context.options
            doc = ProfileDocument(evaluations=[EvaluationEntry(
                name="latency_p50", value=seconds, unit="seconds")])
            return EvaluationOutcome(document=doc, config=dict(context.options))

registered through the ``charter.evaluators`` entry-point group (see
:mod:`charter.evaluation.plugins`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from charter.domain.entities import Model, Version
from charter.domain.folding import EffectiveProfile
from charter.domain.profile import ProfileDocument

__all__ = ["EvaluationContext", "EvaluationOutcome", "Evaluator", "ProgressFn"]

ProgressFn = Callable[[int, int], None]
"""Called with (done, total) while an evaluation runs."""


@dataclass(frozen=True)
class EvaluationContext:
    """What an evaluator gets.

    Attributes:
        model: the model line.
        version: the version under evaluation.
        artifact_dir: a verified local copy of the version's files.
        profile: its effective profile (e.g. declared ``constraints``).
        options: evaluator-specific options (validate them; raise InvalidInputError).
        progress: optional progress callback.
    """

    model: Model
    version: Version
    artifact_dir: Path
    profile: EffectiveProfile
    options: Mapping[str, Any] = field(default_factory=dict)
    progress: ProgressFn | None = None


@dataclass(frozen=True)
class EvaluationOutcome:
    """What an evaluator returns.

    Attributes:
        document: the profile entries measured (provenance is filled by the registry).
        config: the resolved configuration, enough to re-run the evaluation.
        datasets: ``{"name", "digest"}`` of every dataset read.
        probe_pack: ``{"name", "version", "digest"}`` of the probe pack, if any.
        target: a description of the target (never secrets).
        summary: a few headline numbers for people.
    """

    document: ProfileDocument
    config: Mapping[str, Any] = field(default_factory=dict)
    datasets: tuple[Mapping[str, Any], ...] = ()
    probe_pack: Mapping[str, Any] | None = None
    target: str | None = None
    summary: Mapping[str, Any] = field(default_factory=dict)


class Evaluator(ABC):
    """Base class of evaluators (built-in and third-party alike)."""

    name: ClassVar[str]
    version: ClassVar[str]
    description: ClassVar[str] = ""
    #: Metric names this evaluator writes, so policies may name them before any
    #: profile holds them (`charter policy validate` checks against these).
    produces: ClassVar[tuple[str, ...]] = ()

    @abstractmethod
    def evaluate(self, context: EvaluationContext) -> EvaluationOutcome:
        """Measure ``context.version`` and return profile entries.

        Raises:
            InvalidInputError: bad options or unusable inputs (say which and why).
        """
