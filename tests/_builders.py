"""Builders of domain objects for tests that need them without a registry."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from charter.domain.entities import Model, RiskTier, Version, VersionState
from charter.domain.folding import fold
from charter.evaluation.base import EvaluationContext

ZERO = "sha256:" + "0" * 64
# The smallest policy that gates something: staging needs accuracy >= 0.85
# (production keeps the built-in defaults for the tier).
STAGING_ACCURACY_POLICY = """
schema: charter.policy/v1
stages: [staging, production]
rules:
  staging:
    metrics: [{metric: accuracy, min: 0.85}]
"""


def model(name: str = "credit", risk_tier: RiskTier = RiskTier.HIGH) -> Model:
    """A model as the store would return it."""
    return Model(name=name, description="", owner="risk", risk_tier=risk_tier,
                 created_by="alice", created_at="2026-01-01T00:00:00.000000Z")  # fmt: skip


def version(model_name: str = "credit", number: str = "1.0.0") -> Version:
    """A draft version with placeholder fingerprints and manifest."""
    return Version(
        model=model_name, version=number, state=VersionState.DRAFT, parent=None,
        change_kind=None, fp_architecture=ZERO, fp_data=ZERO, fp_config=ZERO,
        architecture_method="sklearn", manifest_digest=ZERO, file_count=1, total_size=1,
        run_id=None, commit=None, params={}, datasets=(), created_by="alice",
        created_at="2026-01-01T00:00:00.000000Z",
    )  # fmt: skip


def evaluation_context(
    artifact_dir: Path, options: dict[str, Any], *, name: str = "credit"
) -> EvaluationContext:
    """What the registry hands an evaluator, for a draft with an empty profile."""
    v = version(name)
    return EvaluationContext(
        model=model(name), version=v, artifact_dir=artifact_dir,
        profile=fold(ref=v.ref, records=[], amendments=[]), options=options,
    )  # fmt: skip
