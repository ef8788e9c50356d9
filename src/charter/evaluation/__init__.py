"""Evaluations: evaluators, detectors, probe packs and targets, discovered as plugins."""

from charter.evaluation.base import EvaluationContext, EvaluationOutcome, Evaluator, ProgressFn

__all__ = ["EvaluationContext", "EvaluationOutcome", "Evaluator", "ProgressFn"]
