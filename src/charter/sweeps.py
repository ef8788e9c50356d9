"""Judging a red-team sweep: which versions its fresh evidence now fails.

A sweep (:meth:`EvaluationUseCases.redteam_sweep`) re-runs campaigns and amends
living profiles; this says what the new evidence means, the same way for a local
registry and a remote one: a version fails when its attack success rate is over
the threshold asked for, or, when the sweep covered a stage, when that stage's
gate now refuses it on evidence (``risk_findings``). Sign-off the amendment
restarts (approvals, a model card gone stale) is reported, never failed: it is
the reviewers' next step, not a finding against the model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from charter.domain.cards import CardRecord
from charter.domain.errors import InvalidInputError
from charter.domain.gate import GateDecision
from charter.domain.monitoring import risk_findings

__all__ = ["SweepVerdict", "check_max_asr", "judge_sweep"]


class _Judge(Protocol):
    def gate(self, *, model: str, version: str, stage: str) -> tuple[int, GateDecision]: ...

    def card_status(
        self, *, model: str | None = None, version: str | None = None
    ) -> list[CardRecord]: ...


@dataclass(frozen=True)
class SweepVerdict:
    """What a sweep's runs mean for the versions they ran on.

    Attributes:
        failing: ``{"ref", "run_id", "reasons"}`` per version the evidence now fails.
        stale_cards: ``{"ref", "formats"}`` per version whose model cards are stale.
    """

    failing: list[dict[str, Any]] = field(default_factory=list)
    stale_cards: list[dict[str, Any]] = field(default_factory=list)


def judge_sweep(
    host: _Judge,
    *,
    runs: list[dict[str, Any]],
    stage: str | None = None,
    max_asr: float | None = None,
) -> SweepVerdict:
    """Judge the runs of a sweep (see the module docstring).

    With ``stage``, each version is gated again for that stage: the decision is
    recorded, as every gate decision is.

    Raises:
        InvalidInputError: ``max_asr`` is not a rate between 0 and 1.
    """
    check_max_asr(max_asr)
    verdict = SweepVerdict()
    for run in runs:
        model, version = run["ref"].split("@")
        reasons = _over_asr(run, max_asr)
        if stage is not None:
            _, decision = host.gate(model=model, version=version, stage=stage)
            reasons += [finding.message for finding in risk_findings(decision)]
        if reasons:
            verdict.failing.append({"ref": run["ref"], "run_id": run["run_id"], "reasons": reasons})
        cards = host.card_status(model=model, version=version)
        stale = sorted(card.format for card in cards if card.stale)
        if stale:
            verdict.stale_cards.append({"ref": run["ref"], "formats": stale})
    return verdict


def check_max_asr(max_asr: float | None) -> None:
    """Refuse a threshold that is not a rate (before any campaign runs).

    Raises:
        InvalidInputError: ``max_asr`` is not between 0 and 1.
    """
    if max_asr is not None and not 0 <= max_asr <= 1:
        raise InvalidInputError("--max-asr is a rate between 0 and 1", field="max_asr")


def _over_asr(run: dict[str, Any], max_asr: float | None) -> list[str]:
    asr = run["summary"].get("attack_success_rate")
    if max_asr is None or asr is None or asr <= max_asr:
        return []
    return [f"attack success rate {asr:.3f} > {max_asr}"]
